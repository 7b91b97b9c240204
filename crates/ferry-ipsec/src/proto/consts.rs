//! IANA numbers of IKEv2 (RFC 7296 §3 and the IKEv2 parameter registry) that this crate
//! speaks. Only what is used is named; anything else is carried as a plain number.

/// IKE major version 2, minor 0.
pub const IKE_VERSION: u8 = 0x20;
/// Header flag: sent by the original initiator of the IKE SA.
pub const FLAG_INITIATOR: u8 = 0x08;
/// Header flag: this message is a response.
pub const FLAG_RESPONSE: u8 = 0x20;

/// Exchange types.
pub mod exchange {
    pub const IKE_SA_INIT: u8 = 34;
    pub const IKE_AUTH: u8 = 35;
    pub const CREATE_CHILD_SA: u8 = 36;
    pub const INFORMATIONAL: u8 = 37;
}

/// Payload types.
pub mod payload {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 33;
    pub const KE: u8 = 34;
    pub const IDI: u8 = 35;
    pub const IDR: u8 = 36;
    pub const AUTH: u8 = 39;
    pub const NONCE: u8 = 40;
    pub const NOTIFY: u8 = 41;
    pub const DELETE: u8 = 42;
    pub const VENDOR_ID: u8 = 43;
    pub const TSI: u8 = 44;
    pub const TSR: u8 = 45;
    pub const SK: u8 = 46;
}

/// Security protocol identifiers (proposals, notifies, deletes).
pub mod protocol {
    pub const IKE: u8 = 1;
    pub const ESP: u8 = 3;
}

/// Transform types and the transform ids we implement.
pub mod transform {
    pub const ENCR: u8 = 1;
    pub const PRF: u8 = 2;
    pub const INTEG: u8 = 3;
    pub const DH: u8 = 4;
    pub const ESN: u8 = 5;

    pub const ENCR_AES_GCM_16: u16 = 20;
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    pub const DH_ECP_256: u16 = 19;
    pub const DH_CURVE25519: u16 = 31;
    pub const ESN_NO: u16 = 0;
    pub const ESN_YES: u16 = 1;

    /// Transform attribute "Key Length" in TV format (high bit set).
    pub const ATTR_KEY_LENGTH: u16 = 0x800e;
}

/// Notify message types.
pub mod notify {
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    pub const INVALID_SYNTAX: u16 = 7;
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    pub const AUTHENTICATION_FAILED: u16 = 24;
    pub const TS_UNACCEPTABLE: u16 = 38;
    pub const TEMPORARY_FAILURE: u16 = 43;
    pub const CHILD_SA_NOT_FOUND: u16 = 44;
    /// Types below this are errors.
    pub const LAST_ERROR: u16 = 16383;
    pub const INITIAL_CONTACT: u16 = 16384;
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    pub const COOKIE: u16 = 16390;
    pub const REKEY_SA: u16 = 16393;
}

/// Identification types.
pub mod id {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const IPV6_ADDR: u8 = 5;
    pub const KEY_ID: u8 = 11;
}

/// AUTH method: shared key message integrity code.
pub const AUTH_SHARED_KEY_MIC: u8 = 2;

/// Traffic selector types.
pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;
