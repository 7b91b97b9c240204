//! Key derivation (RFC 7296 §2.14, §2.17, §2.18) and PSK authentication (§2.15).

use crate::Error;
use crate::proto::crypto::{AeadKey, PRF_LEN, prf, prf_plus, prf_verify};
use crate::proto::esp::{EspInbound, EspOutbound};
use crate::proto::proposal::{EspSuite, IkeSuite};

/// A preshared key. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(Vec<u8>);

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Psk(<{} bytes>)", self.0.len())
    }
}

/// Shortest PSK accepted: a PSK is as strong as its guessability.
pub const MIN_PSK_LEN: usize = 32;

impl Psk {
    /// A key from its bytes (checked by [`Psk::validate`]).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Refuse keys shorter than [`MIN_PSK_LEN`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.0.len() < MIN_PSK_LEN {
            return Err(Error::Config(format!(
                "preshared key is {} bytes; at least {MIN_PSK_LEN} are required",
                self.0.len()
            )));
        }
        Ok(())
    }
}

/// The keys of an established IKE SA.
pub(crate) struct IkeKeys {
    pub sk_d: Vec<u8>,
    /// Protects what the original initiator sends.
    pub sk_ei: AeadKey,
    /// Protects what the original responder sends.
    pub sk_er: AeadKey,
    pub sk_pi: Vec<u8>,
    pub sk_pr: Vec<u8>,
}

impl std::fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeKeys").finish_non_exhaustive()
    }
}

impl IkeKeys {
    /// Derive the keys from SKEYSEED (§2.14): prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
    pub fn derive(
        suite: &IkeSuite,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, Error> {
        let e = suite.encr.keymat_len();
        let total = PRF_LEN + 2 * e + 2 * PRF_LEN; // SK_d, SK_ei, SK_er, SK_pi, SK_pr (no SK_a with AEAD)
        let mut seed = Vec::with_capacity(ni.len() + nr.len() + 16);
        seed.extend_from_slice(ni);
        seed.extend_from_slice(nr);
        seed.extend_from_slice(&spi_i.to_be_bytes());
        seed.extend_from_slice(&spi_r.to_be_bytes());
        let km = prf_plus(skeyseed, &seed, total)?;
        let (sk_d, rest) = km.split_at(PRF_LEN);
        let (sk_ei, rest) = rest.split_at(e);
        let (sk_er, rest) = rest.split_at(e);
        let (sk_pi, sk_pr) = rest.split_at(PRF_LEN);
        Ok(Self {
            sk_d: sk_d.to_vec(),
            sk_ei: AeadKey::new(suite.encr, sk_ei)?,
            sk_er: AeadKey::new(suite.encr, sk_er)?,
            sk_pi: sk_pi.to_vec(),
            sk_pr: sk_pr.to_vec(),
        })
    }

    /// Keys of a new IKE SA from IKE_SA_INIT: SKEYSEED = prf(Ni | Nr, g^ir).
    pub fn initial(
        suite: &IkeSuite,
        shared: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, Error> {
        let mut nonces = ni.to_vec();
        nonces.extend_from_slice(nr);
        let skeyseed = prf(&nonces, &[shared]);
        Self::derive(suite, &skeyseed, ni, nr, spi_i, spi_r)
    }

    /// Keys of the IKE SA that replaces this one (§2.18):
    /// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr).
    pub fn rekeyed(
        &self,
        suite: &IkeSuite,
        shared: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, Error> {
        let skeyseed = prf(&self.sk_d, &[shared, ni, nr]);
        Self::derive(suite, &skeyseed, ni, nr, spi_i, spi_r)
    }

    /// Child SA keys (§2.17): KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr); the
    /// initiator-to-responder key comes first. Returns (inbound, outbound) for the
    /// side that `we_initiated` this exchange, or not.
    #[allow(clippy::too_many_arguments)]
    pub fn child(
        &self,
        suite: &EspSuite,
        shared: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        we_initiated: bool,
        spi_in: u32,
        spi_out: u32,
    ) -> Result<(EspInbound, EspOutbound), Error> {
        let e = suite.encr.keymat_len();
        let mut seed = Vec::new();
        if let Some(s) = shared {
            seed.extend_from_slice(s);
        }
        seed.extend_from_slice(ni);
        seed.extend_from_slice(nr);
        let km = prf_plus(&self.sk_d, &seed, 2 * e)?;
        let (i2r, r2i) = km.split_at(e);
        let (inb, outb) = if we_initiated { (r2i, i2r) } else { (i2r, r2i) };
        Ok((
            EspInbound::new(spi_in, AeadKey::new(suite.encr, inb)?, suite.esn),
            EspOutbound::new(spi_out, AeadKey::new(suite.encr, outb)?, suite.esn),
        ))
    }
}

/// The AUTH value for a PSK (§2.15):
/// prf(prf(PSK, "Key Pad for IKEv2"), RealMessage | Nonce | prf(SK_p, IDbody)).
pub(crate) fn psk_auth(
    psk: &Psk,
    message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> [u8; PRF_LEN] {
    let maced_id = prf(sk_p, &[id_body]);
    let key = prf(psk.as_bytes(), &[b"Key Pad for IKEv2"]);
    prf(&key, &[message, nonce, &maced_id])
}

/// Check a received PSK AUTH value.
pub(crate) fn verify_psk_auth(
    psk: &Psk,
    message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    got: &[u8],
) -> bool {
    let maced_id = prf(sk_p, &[id_body]);
    let key = prf(psk.as_bytes(), &[b"Key Pad for IKEv2"]);
    prf_verify(&key, &[message, nonce, &maced_id], got)
}
