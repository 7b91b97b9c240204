//! The server's certificate authority, its serving certificate, and the
//! admin kubeconfig.
//!
//! The CA key pair is generated on first start and kept in the data
//! directory (`ca.key` 0600, `ca.crt`); a fresh serving certificate is signed
//! at every start for the names the server is reached by, so adding a
//! `--tls-san` never needs a new CA.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

/// The CA certificate (PEM) and a rustls server config for our names.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ferry-apiserver-ca");
    dn.push(DnType::OrganizationName, "ferry");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.write_all(contents)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Loads (or creates) the CA in `dir` and signs a serving certificate for
/// `sans` (DNS names or IP addresses).
pub fn server_tls(dir: &Path, sans: &[String]) -> Result<ServerTls> {
    let key_path = dir.join("ca.key");
    let crt_path = dir.join("ca.crt");
    let (ca_key, ca_pem) = if key_path.exists() && crt_path.exists() {
        let key_pem = std::fs::read_to_string(&key_path)
            .map_err(|e| Error::io(format!("reading {}", key_path.display()), e))?;
        let crt = std::fs::read_to_string(&crt_path)
            .map_err(|e| Error::io(format!("reading {}", crt_path.display()), e))?;
        (KeyPair::from_pem(&key_pem).map_err(tls_err)?, crt)
    } else {
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = ca_params()?.self_signed(&key).map_err(tls_err)?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&crt_path, cert.pem())
            .map_err(|e| Error::io(format!("writing {}", crt_path.display()), e))?;
        (key, cert.pem())
    };
    // The issuer needs only the CA's name, key-id method and key; rebuilding
    // the same parameters with the stored key signs exactly as the original.
    let issuer = Issuer::new(ca_params()?, ca_key);

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ferry-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(sans.iter().cloned());
    names.sort();
    names.dedup();
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.clone().try_into().map_err(tls_err)?),
        };
        params.subject_alt_names.push(san);
    }
    let now = chrono::Utc::now();
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(chrono::Datelike::year(&now) + 10, 1, 1);
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.signed_by(&key, &issuer).map_err(tls_err)?;

    let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes())
        .next()
        .ok_or_else(|| Error::Tls("ca.crt holds no certificate".into()))?
        .map_err(tls_err)?;
    let chain = vec![CertificateDer::from(cert.der().to_vec()), ca_der];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        ca_pem,
        config: Arc::new(config),
    })
}

/// A kubeconfig for `server` (an https URL) with a bearer token.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ferry
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: ferry
  context:
    cluster: ferry
    user: {user}
    namespace: default
current-context: ferry
"
    )
}
