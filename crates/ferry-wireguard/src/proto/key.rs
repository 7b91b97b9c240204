//! WireGuard keys: Curve25519 private and public keys and preshared keys, in base64
//! (config files, `wg`) or hex (UAPI). Private and preshared keys never print
//! themselves through `Debug`.

use crate::Error;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use boringtun::x25519;
use std::fmt;
use std::str::FromStr;

fn decode32(s: &str) -> Result<[u8; 32], Error> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|_| Error::InvalidKey("bad hex".into()))?
    } else {
        STANDARD
            .decode(s)
            .map_err(|_| Error::InvalidKey("not base64".into()))?
    };
    bytes
        .try_into()
        .map_err(|_| Error::InvalidKey("a key is 32 bytes".into()))
}

/// A Curve25519 private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// A fresh random key (from the OS-seeded CSPRNG), clamped like `wg genkey`.
    pub fn generate() -> Self {
        let mut k: [u8; 32] = rand::random();
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        Self(k)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// From raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519::PublicKey::from(&self.secret()).to_bytes())
    }
    pub(crate) fn secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }
    /// Base64, as `wg genkey` prints it. Only call this to write a key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    /// Hex, for the UAPI protocol.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl FromStr for PrivateKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        decode32(s).map(Self)
    }
}

/// A Curve25519 public key: a peer's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub(crate) [u8; 32]);

impl PublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// From raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    /// Hex, for the UAPI protocol.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// A short form for logs: the first 8 base64 characters.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
    pub(crate) fn x25519(&self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        decode32(s).map(Self)
    }
}

/// A symmetric preshared key mixed into the handshake (post-quantum hedge).
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey(pub(crate) [u8; 32]);

impl PresharedKey {
    /// A fresh random key, as `wg genpsk` makes.
    pub fn generate() -> Self {
        Self(rand::random())
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    /// Hex, for the UAPI protocol.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

impl FromStr for PresharedKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        decode32(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_known_vector() {
        // RFC 7748 section 6.1 (Alice).
        let sk = PrivateKey::from_bytes(
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            sk.public_key().to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let b64 = sk.to_base64();
        assert_eq!(b64.parse::<PrivateKey>().unwrap(), sk);
        assert_eq!(sk.to_hex().parse::<PrivateKey>().unwrap(), sk);
        assert!(!format!("{sk:?}").contains(&b64));
    }

    #[test]
    fn rejects_bad_keys() {
        assert!("abc".parse::<PublicKey>().is_err());
        assert!("".parse::<PublicKey>().is_err());
        assert!("AAAA".parse::<PublicKey>().is_err());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(PrivateKey::generate(), PrivateKey::generate());
    }
}
