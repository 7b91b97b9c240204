//! Device configuration: the library struct the gateway fills in, and a parser for
//! the wg-quick style INI format used by `ferry tools wg up --config FILE`.
//!
//! ```ini
//! [Interface]
//! Name = wg-ferry          # ferry extension; default "ferry0"
//! PrivateKey = <base64>    # or PrivateKeyFile = /path (must be mode 0600)
//! ListenPort = 51820
//! Address = 100.64.0.1/24  # optional, first IPv4 address is applied
//! MTU = 1420
//!
//! [Peer]
//! PublicKey = <base64>
//! PresharedKey = <base64>  # optional
//! Endpoint = 198.18.0.2:51820
//! AllowedIPs = 100.64.0.2/32, 100.65.0.0/16
//! PersistentKeepalive = 25
//! ```

use crate::Error;
use crate::proto::key::{PresharedKey, PrivateKey};
pub use crate::proto::peer::PeerConfig;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Default MTU: 1500 minus IPv6 + UDP + WireGuard overhead, like wg-quick.
pub const DEFAULT_MTU: u16 = 1420;

/// Everything needed to bring up one device.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// This device's private key.
    pub private_key: PrivateKey,
    /// UDP port to listen on; `None` or 0 picks a free one.
    pub listen_port: Option<u16>,
    /// TUN MTU.
    pub mtu: u16,
    /// Interface addresses with prefix length (only the first IPv4 one is applied by
    /// the library; the rest are for the caller).
    pub addresses: Vec<(IpAddr, u8)>,
    /// Peers.
    pub peers: Vec<PeerConfig>,
    /// Serve the UAPI control socket `/var/run/wireguard/<name>.sock` (so `wg show`
    /// and `wg set` work).
    pub uapi: bool,
    /// Testing knob: start a new handshake when the current session is this old,
    /// instead of the protocol's 120 s. `None` in production.
    pub rekey_after: Option<Duration>,
}

impl DeviceConfig {
    /// A device with defaults and no peers.
    pub fn new(name: impl Into<String>, private_key: PrivateKey) -> Self {
        Self {
            name: name.into(),
            private_key,
            listen_port: None,
            mtu: DEFAULT_MTU,
            addresses: Vec::new(),
            peers: Vec::new(),
            uapi: true,
            rekey_after: None,
        }
    }

    /// Read a config file; `PrivateKeyFile` paths are resolved relative to it.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)?;
        parse(&text, path.parent())
    }
}

impl FromStr for DeviceConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s, None)
    }
}

/// Read a key file, refusing one that others may read.
pub fn read_private_key_file(path: &Path) -> Result<PrivateKey, Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Config(format!(
            "private key file {} is readable by group or others; chmod 600 it",
            path.display()
        )));
    }
    std::fs::read_to_string(path)?.trim().parse()
}

fn parse(text: &str, base: Option<&Path>) -> Result<DeviceConfig, Error> {
    #[derive(PartialEq)]
    enum Sec {
        None,
        Interface,
        Peer,
    }
    let mut sec = Sec::None;
    let mut name = None;
    let mut private_key = None;
    let mut cfg = DeviceConfig::new("ferry0", PrivateKey::from_bytes([0; 32]));
    for (no, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| Error::Config(format!("line {}: {m}", no + 1));
        if line.eq_ignore_ascii_case("[interface]") {
            sec = Sec::Interface;
            continue;
        }
        if line.eq_ignore_ascii_case("[peer]") {
            sec = Sec::Peer;
            cfg.peers
                .push(PeerConfig::new(crate::PublicKey::from_bytes([0; 32])));
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
            .ok_or_else(|| err("expected Key = Value".into()))?;
        match sec {
            Sec::None => return Err(err("key outside a section".into())),
            Sec::Interface => match k.as_str() {
                "name" => name = Some(v.to_string()),
                "privatekey" => private_key = Some(v.parse::<PrivateKey>()?),
                "privatekeyfile" => {
                    let p = Path::new(v);
                    let p = match base {
                        Some(b) if p.is_relative() => b.join(p),
                        _ => p.to_path_buf(),
                    };
                    private_key = Some(read_private_key_file(&p)?);
                }
                "listenport" => {
                    cfg.listen_port = Some(v.parse().map_err(|_| err("bad ListenPort".into()))?)
                }
                "mtu" => cfg.mtu = v.parse().map_err(|_| err("bad MTU".into()))?,
                "address" => {
                    for a in v.split(',') {
                        let a = a.trim();
                        let (ip, p) = a.split_once('/').unwrap_or((a, ""));
                        let ip: IpAddr = ip.parse().map_err(|_| err(format!("bad address {a}")))?;
                        let p = if p.is_empty() {
                            if ip.is_ipv4() { 32 } else { 128 }
                        } else {
                            p.parse().map_err(|_| err(format!("bad address {a}")))?
                        };
                        cfg.addresses.push((ip, p));
                    }
                }
                "ferryrekeyafter" => {
                    cfg.rekey_after = Some(Duration::from_secs(
                        v.parse().map_err(|_| err("bad FerryRekeyAfter".into()))?,
                    ))
                }
                // wg-quick keys that are not ours to act on.
                "dns" | "table" | "preup" | "postup" | "predown" | "postdown" | "saveconfig"
                | "fwmark" => {}
                _ => return Err(err(format!("unknown [Interface] key {k}"))),
            },
            Sec::Peer => {
                let Some(peer) = cfg.peers.last_mut() else {
                    return Err(err("no [Peer]".into()));
                };
                match k.as_str() {
                    "publickey" => peer.public_key = v.parse()?,
                    "presharedkey" => peer.preshared_key = Some(v.parse::<PresharedKey>()?),
                    "endpoint" => {
                        let addr: SocketAddr = match v.parse() {
                            Ok(a) => a,
                            Err(_) => v
                                .to_socket_addrs()
                                .map_err(|e| err(format!("endpoint {v}: {e}")))?
                                .next()
                                .ok_or_else(|| err(format!("endpoint {v} did not resolve")))?,
                        };
                        peer.endpoint = Some(addr);
                    }
                    "allowedips" => {
                        for a in v.split(',').filter(|a| !a.trim().is_empty()) {
                            peer.allowed_ips.push(a.parse()?);
                        }
                    }
                    "persistentkeepalive" => {
                        let ka = if v == "off" {
                            0
                        } else {
                            v.parse()
                                .map_err(|_| err("bad PersistentKeepalive".into()))?
                        };
                        peer.persistent_keepalive = (ka > 0).then_some(ka);
                    }
                    _ => return Err(err(format!("unknown [Peer] key {k}"))),
                }
            }
        }
    }
    cfg.private_key = private_key.ok_or_else(|| Error::Config("no PrivateKey".into()))?;
    if let Some(n) = name {
        cfg.name = n;
    }
    for p in &cfg.peers {
        if p.public_key.as_bytes() == &[0; 32] {
            return Err(Error::Config("a [Peer] has no PublicKey".into()));
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wg_quick_style() {
        let sk = PrivateKey::generate();
        let pk = PrivateKey::generate().public_key();
        let text = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = 51820\nAddress = 100.64.0.1/24\n\
             MTU = 1400\n# comment\n\n[Peer]\nPublicKey = {pk}\n\
             Endpoint = 198.18.0.2:51820\nAllowedIPs = 100.64.0.2/32, 100.65.0.0/16\n\
             PersistentKeepalive = 25\n",
            sk.to_base64()
        );
        let c: DeviceConfig = text.parse().unwrap();
        assert_eq!(c.private_key, sk);
        assert_eq!(c.listen_port, Some(51820));
        assert_eq!(c.mtu, 1400);
        assert_eq!(c.addresses, vec![("100.64.0.1".parse().unwrap(), 24)]);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].public_key, pk);
        assert_eq!(c.peers[0].allowed_ips.len(), 2);
        assert_eq!(c.peers[0].persistent_keepalive, Some(25));
        assert_eq!(c.name, "ferry0");
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(
            "[Interface]\nListenPort = 1\n"
                .parse::<DeviceConfig>()
                .is_err()
        );
        assert!("PrivateKey = x\n".parse::<DeviceConfig>().is_err());
        let sk = PrivateKey::generate().to_base64();
        assert!(
            format!("[Interface]\nPrivateKey = {sk}\n[Peer]\nAllowedIPs = 1.2.3.4/32\n")
                .parse::<DeviceConfig>()
                .is_err()
        );
        assert!(
            format!("[Interface]\nPrivateKey = {sk}\nBogus = 1\n")
                .parse::<DeviceConfig>()
                .is_err()
        );
    }

    #[test]
    fn key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, PrivateKey::generate().to_base64()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_private_key_file(&p).is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_private_key_file(&p).is_ok());
        let cfg = "[Interface]\nPrivateKeyFile = k\n";
        std::fs::write(dir.path().join("c.conf"), cfg).unwrap();
        assert!(DeviceConfig::from_file(&dir.path().join("c.conf")).is_ok());
    }
}
