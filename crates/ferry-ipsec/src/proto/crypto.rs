//! The cryptographic primitives, all from `ring`: AEAD ciphers with the 4-byte salt and
//! 8-byte explicit IV that IKE (RFC 5282, RFC 7634) and ESP (RFC 4106, RFC 7634) share,
//! HMAC-SHA2-256 as the PRF with prf+ (RFC 7296 §2.13), ephemeral X25519 and P-256 key
//! agreement, SHA-1 for NAT detection, and the system random generator. Nothing
//! cryptographic is implemented here, only wired up.

use super::proposal::{DhGroup, Encr};
use crate::Error;
use ring::aead::{self, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::net::{IpAddr, SocketAddr};

/// Length of the AEAD tag (ICV) of every cipher used here.
pub const TAG_LEN: usize = 16;
/// Length of the explicit IV.
pub const IV_LEN: usize = 8;

/// An AEAD key with its salt.
pub struct AeadKey {
    key: LessSafeKey,
    salt: [u8; 4],
    /// Which cipher (for diagnostics).
    pub encr: Encr,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeadKey")
            .field("encr", &self.encr)
            .finish_non_exhaustive()
    }
}

impl AeadKey {
    /// A key from `keymat` (`encr.keymat_len()` bytes: key, then salt).
    pub fn new(encr: Encr, keymat: &[u8]) -> Result<Self, Error> {
        if keymat.len() != encr.keymat_len() {
            return Err(Error::Crypto("AEAD key material length"));
        }
        let alg = match encr {
            Encr::AesGcm128 => &aead::AES_128_GCM,
            Encr::AesGcm256 => &aead::AES_256_GCM,
            Encr::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let (k, s) = keymat.split_at(keymat.len() - 4);
        let key = UnboundKey::new(alg, k).map_err(|_| Error::Crypto("AEAD key"))?;
        let mut salt = [0u8; 4];
        salt.copy_from_slice(s);
        Ok(Self {
            key: LessSafeKey::new(key),
            salt,
            encr,
        })
    }

    fn nonce(&self, iv: &[u8; IV_LEN]) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypt `in_out` in place; returns the tag.
    pub fn seal(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(iv), Aad::from(aad), in_out)
            .map_err(|_| Error::Crypto("seal"))?;
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag.as_ref());
        Ok(t)
    }

    /// Decrypt `in_out` in place after checking `tag`.
    pub fn open(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Integrity)?;
        self.key
            .open_in_place_separate_tag(self.nonce(iv), Aad::from(aad), Tag::from(tag), in_out, 0..)
            .map(|_| ())
            .map_err(|_| Error::Integrity)
    }
}

/// Output length of the PRF (HMAC-SHA2-256).
pub const PRF_LEN: usize = 32;

/// prf(key, data...) with HMAC-SHA2-256.
pub fn prf(key: &[u8], data: &[&[u8]]) -> [u8; PRF_LEN] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    for d in data {
        ctx.update(d);
    }
    let mut out = [0u8; PRF_LEN];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// prf+(key, seed) truncated to `len` bytes (RFC 7296 §2.13).
pub fn prf_plus(key: &[u8], seed: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    if len > 255 * PRF_LEN {
        return Err(Error::Crypto("prf+ output too long"));
    }
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out = Vec::with_capacity(len + PRF_LEN);
    let mut t: Vec<u8> = Vec::new();
    let mut n = 1u8;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&k);
        ctx.update(&t);
        ctx.update(seed);
        ctx.update(&[n]);
        t = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&t);
        n = n.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// An ephemeral Diffie-Hellman private key and its public value in IKE's encoding.
pub struct DhKey {
    /// The group.
    pub group: DhGroup,
    key: EphemeralPrivateKey,
    public: Vec<u8>,
}

impl std::fmt::Debug for DhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhKey")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl DhKey {
    /// A fresh key pair.
    pub fn generate(group: DhGroup) -> Result<Self, Error> {
        let alg = algorithm(group);
        let key = EphemeralPrivateKey::generate(alg, &SystemRandom::new())
            .map_err(|_| Error::Crypto("DH key generation"))?;
        let pk = key
            .compute_public_key()
            .map_err(|_| Error::Crypto("DH public key"))?;
        let public = match group {
            DhGroup::Curve25519 => pk.as_ref().to_vec(),
            // ring: 0x04 || X || Y; IKE (RFC 5903 §7): X || Y.
            DhGroup::Ecp256 => pk.as_ref()[1..].to_vec(),
        };
        Ok(Self { group, key, public })
    }

    /// The public value for the KE payload.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret with the peer's public value (consumes the key).
    pub fn agree(self, peer: &[u8]) -> Result<Vec<u8>, Error> {
        let bytes = match self.group {
            DhGroup::Curve25519 if peer.len() == 32 => peer.to_vec(),
            DhGroup::Ecp256 if peer.len() == 64 => {
                let mut b = Vec::with_capacity(65);
                b.push(4);
                b.extend_from_slice(peer);
                b
            }
            _ => return Err(Error::Malformed("KE payload length for its group")),
        };
        let peer = UnparsedPublicKey::new(algorithm(self.group), bytes);
        agreement::agree_ephemeral(self.key, &peer, |s| s.to_vec())
            .map_err(|_| Error::Crypto("DH key agreement (invalid peer public value)"))
    }
}

fn algorithm(g: DhGroup) -> &'static agreement::Algorithm {
    match g {
        DhGroup::Curve25519 => &agreement::X25519,
        DhGroup::Ecp256 => &agreement::ECDH_P256,
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut v = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut v)
        .map_err(|_| Error::Crypto("random"))?;
    Ok(v)
}

/// A random non-zero 64-bit IKE SPI.
pub fn random_ike_spi() -> Result<u64, Error> {
    loop {
        let mut b = [0u8; 8];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| Error::Crypto("random"))?;
        let v = u64::from_be_bytes(b);
        if v != 0 {
            return Ok(v);
        }
    }
}

/// A random ESP SPI outside the reserved range 0..=255.
pub fn random_esp_spi() -> Result<u32, Error> {
    loop {
        let mut b = [0u8; 4];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| Error::Crypto("random"))?;
        let v = u32::from_be_bytes(b);
        if v > 255 {
            return Ok(v);
        }
    }
}

/// NAT detection hash (RFC 7296 §2.23): SHA-1(SPIi | SPIr | IP | port).
pub fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// Check `tag` = prf(key, data...) in constant time.
pub fn prf_verify(key: &[u8], data: &[&[u8]], tag: &[u8]) -> bool {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let joined: Vec<u8> = data.concat();
    hmac::verify(&k, &joined, tag).is_ok()
}
