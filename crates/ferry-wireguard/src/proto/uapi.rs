//! The WireGuard cross-platform UAPI text protocol (`get=1` / `set=1`), as spoken by
//! `wg` over `/var/run/wireguard/<iface>.sock`. Parsing and formatting only.

use super::allowed_ips::IpNet;
use super::key::{PresharedKey, PrivateKey, PublicKey};
use crate::Error;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// A change to one peer, from a `set` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// Which peer.
    pub public_key: PublicKey,
    /// `remove=true`.
    pub remove: bool,
    /// `update_only=true`: do not create.
    pub update_only: bool,
    /// `preshared_key=`: `Some(None)` clears it.
    pub preshared_key: Option<Option<PresharedKey>>,
    /// `endpoint=`.
    pub endpoint: Option<SocketAddr>,
    /// `persistent_keepalive_interval=`.
    pub persistent_keepalive: Option<u16>,
    /// `replace_allowed_ips=true`.
    pub replace_allowed_ips: bool,
    /// `allowed_ip=` lines, added.
    pub allowed_ips: Vec<IpNet>,
}

impl PeerUpdate {
    fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// A parsed `set=1` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// `private_key=`: `Some(None)` for the all-zero key (clears it).
    pub private_key: Option<Option<PrivateKey>>,
    /// `listen_port=`.
    pub listen_port: Option<u16>,
    /// `replace_peers=true`.
    pub replace_peers: bool,
    /// Peer sections, in order.
    pub peers: Vec<PeerUpdate>,
}

fn bool_val(k: &str, v: &str) -> Result<bool, Error> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::Config(format!("{k}: expected true|false"))),
    }
}

/// Parse the body of a `set=1` request (the lines after `set=1`, up to the blank line).
pub fn parse_set<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<SetRequest, Error> {
    let mut req = SetRequest::default();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("bad UAPI line {line:?}")))?;
        let bad = |what: &str| Error::Config(format!("bad {what} in UAPI"));
        if k == "public_key" {
            req.peers.push(PeerUpdate::new(v.parse()?));
            continue;
        }
        match (req.peers.last_mut(), k) {
            (None, "private_key") => {
                let key: PrivateKey = v.parse()?;
                req.private_key = Some((key.as_bytes() != &[0; 32]).then_some(key));
            }
            (None, "listen_port") => req.listen_port = Some(v.parse().map_err(|_| bad(k))?),
            (None, "fwmark") => {}
            (None, "replace_peers") => req.replace_peers = bool_val(k, v)?,
            (Some(p), "remove") => p.remove = bool_val(k, v)?,
            (Some(p), "update_only") => p.update_only = bool_val(k, v)?,
            (Some(p), "preshared_key") => {
                let key: PresharedKey = v.parse()?;
                p.preshared_key = Some((key.as_bytes() != &[0; 32]).then_some(key));
            }
            (Some(p), "endpoint") => p.endpoint = Some(v.parse().map_err(|_| bad(k))?),
            (Some(p), "persistent_keepalive_interval") => {
                p.persistent_keepalive = Some(v.parse().map_err(|_| bad(k))?)
            }
            (Some(p), "replace_allowed_ips") => p.replace_allowed_ips = bool_val(k, v)?,
            (Some(p), "allowed_ip") => p.allowed_ips.push(v.parse()?),
            (Some(_), "protocol_version") => {
                if v != "1" {
                    return Err(bad(k));
                }
            }
            _ => return Err(Error::Config(format!("unknown UAPI key {k:?}"))),
        }
    }
    Ok(req)
}

/// The state of one peer for a `get=1` answer.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// Identity.
    pub public_key: PublicKey,
    /// Preshared key, if any.
    pub preshared_key: Option<PresharedKey>,
    /// Current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Keepalive interval, 0 = off.
    pub persistent_keepalive: u16,
    /// Allowed IPs.
    pub allowed_ips: Vec<IpNet>,
    /// Time of the last handshake since the Unix epoch.
    pub last_handshake: Option<Duration>,
    /// Inner bytes received.
    pub rx_bytes: u64,
    /// Inner bytes sent.
    pub tx_bytes: u64,
}

/// Format a `get=1` answer, including the final `errno=0` and blank line.
pub fn format_get(private_key: &PrivateKey, listen_port: u16, peers: &[PeerState]) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(s, "private_key={}", private_key.to_hex());
    let _ = writeln!(s, "listen_port={listen_port}");
    for p in peers {
        let _ = writeln!(s, "public_key={}", p.public_key.to_hex());
        if let Some(k) = &p.preshared_key {
            let _ = writeln!(s, "preshared_key={}", k.to_hex());
        }
        let _ = writeln!(s, "protocol_version=1");
        if let Some(e) = p.endpoint {
            let _ = writeln!(s, "endpoint={e}");
        }
        let hs = p.last_handshake.unwrap_or_default();
        let _ = writeln!(s, "last_handshake_time_sec={}", hs.as_secs());
        let _ = writeln!(s, "last_handshake_time_nsec={}", hs.subsec_nanos());
        let _ = writeln!(s, "tx_bytes={}", p.tx_bytes);
        let _ = writeln!(s, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(
            s,
            "persistent_keepalive_interval={}",
            p.persistent_keepalive
        );
        for a in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={a}");
        }
    }
    s.push_str("errno=0\n\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_wg_set_request() {
        let pk = PrivateKey::generate();
        let peer = PrivateKey::generate().public_key();
        let body = format!(
            "private_key={}\nlisten_port=51820\nreplace_peers=true\npublic_key={}\n\
             endpoint=198.18.0.2:51820\npersistent_keepalive_interval=25\n\
             replace_allowed_ips=true\nallowed_ip=100.64.2.0/24\nallowed_ip=100.64.3.0/24\n\n",
            pk.to_hex(),
            peer.to_hex()
        );
        let r = parse_set(body.lines()).unwrap();
        assert_eq!(r.private_key, Some(Some(pk)));
        assert_eq!(r.listen_port, Some(51820));
        assert!(r.replace_peers);
        assert_eq!(r.peers.len(), 1);
        let p = &r.peers[0];
        assert_eq!(p.public_key, peer);
        assert_eq!(p.endpoint, Some("198.18.0.2:51820".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        assert_eq!(p.allowed_ips.len(), 2);
        assert!(p.replace_allowed_ips);
    }

    #[test]
    fn parse_remove_and_errors() {
        let peer = PrivateKey::generate().public_key();
        let r = parse_set(vec![
            &*format!("public_key={}", peer.to_hex()),
            "remove=true",
        ])
        .unwrap();
        assert!(r.peers[0].remove);
        assert!(parse_set(["bogus"]).is_err());
        assert!(parse_set(["endpoint=1.2.3.4:5"]).is_err());
        assert!(parse_set(["listen_port=x"]).is_err());
    }

    #[test]
    fn format_get_answer() {
        let pk = PrivateKey::generate();
        let peer = PeerState {
            public_key: pk.public_key(),
            preshared_key: None,
            endpoint: Some("198.18.0.2:51820".parse().unwrap()),
            persistent_keepalive: 0,
            allowed_ips: vec!["100.64.2.0/24".parse().unwrap()],
            last_handshake: Some(Duration::from_secs(5)),
            rx_bytes: 1,
            tx_bytes: 2,
        };
        let s = format_get(&pk, 51820, &[peer]);
        assert!(s.starts_with(&format!("private_key={}\nlisten_port=51820\n", pk.to_hex())));
        assert!(s.contains("endpoint=198.18.0.2:51820\n"));
        assert!(s.contains("last_handshake_time_sec=5\n"));
        assert!(s.contains("allowed_ip=100.64.2.0/24\n"));
        assert!(s.ends_with("errno=0\n\n"));
    }
}
