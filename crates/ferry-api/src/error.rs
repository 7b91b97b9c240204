//! The crate's single error type.

/// Everything that can go wrong in `ferry-api`: validating names and CIDRs,
/// decoding `broker-info.ferry`, and rendering CRD YAML.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cluster id is not an RFC 1123 label (lowercase alphanumerics and
    /// `-`, starting and ending alphanumeric, at most 63 characters).
    #[error("invalid cluster id {id:?}: {reason}")]
    InvalidClusterId {
        /// The rejected id.
        id: String,
        /// What rule it breaks.
        reason: String,
    },

    /// A string is not a CIDR of the form `ADDRESS/PREFIX` with no host bits set.
    #[error("invalid CIDR {input:?}: {reason}")]
    InvalidCidr {
        /// The rejected text.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Two CIDRs share addresses.
    #[error("CIDR {first} overlaps CIDR {second}")]
    CidrOverlap {
        /// The first CIDR (usually the one being added).
        first: crate::Cidr,
        /// The second CIDR (usually one already in use).
        second: crate::Cidr,
    },

    /// A cable driver name is not one ferry knows.
    #[error("unknown cable driver {0:?} (expected wireguard, vxlan or ipsec)")]
    InvalidCableDriver(String),

    /// A CNI name is not one ferry knows.
    #[error("unknown network plugin {0:?} (expected generic, kube-ovn, calico or flannel)")]
    UnknownNetworkPlugin(String),

    /// A `--components` entry is not one ferry knows (or the list is empty).
    #[error("unknown component {0:?} (expected service-discovery and/or connectivity)")]
    InvalidComponent(String),

    /// `broker-info.ferry` is empty (or only whitespace).
    #[error("broker info is empty")]
    BrokerInfoEmpty,

    /// `broker-info.ferry` is not valid base64.
    #[error("broker info is not base64: {0}")]
    BrokerInfoNotBase64(#[source] base64::DecodeError),

    /// `broker-info.ferry` decodes from base64 but the result is not JSON
    /// (the message is serde's, with line and column).
    #[error("broker info is not valid JSON after base64 decoding: {0}")]
    BrokerInfoNotJson(#[source] serde_json::Error),

    /// `broker-info.ferry` is JSON but not an object.
    #[error("broker info must be a JSON object, found {found}")]
    BrokerInfoNotObject {
        /// The JSON type found instead (`array`, `string`, …).
        found: &'static str,
    },

    /// A required `broker-info.ferry` field is absent.
    #[error("broker info is missing field `{0}`")]
    BrokerInfoMissingField(&'static str),

    /// A `broker-info.ferry` field is present but its value is wrong.
    #[error("broker info field `{field}` is invalid: {reason}")]
    BrokerInfoInvalidField {
        /// The JSON name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A NAT discovery datagram (UDP 4490) is not one ferry understands.
    #[error("malformed NAT discovery datagram: {0}")]
    NatDiscoveryMalformed(&'static str),

    /// Rendering a CRD or a `broker-info.ferry` document failed (a bug, not
    /// bad input).
    #[error("cannot serialize {what}: {reason}")]
    Serialize {
        /// What was being serialized.
        what: String,
        /// The serializer's message.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
