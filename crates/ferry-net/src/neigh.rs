//! Static forwarding-database (VXLAN remote VTEP) and neighbour entries.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use crate::link::parse_json;
use crate::mac::{Mac, format_mac, parse_mac};
use crate::{Result, bridge, ip};

/// A forwarding-database entry of a VXLAN device: frames to `mac` go to the
/// VTEP at `dst`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    /// Destination MAC (all zeroes: the default for unknown MACs).
    pub mac: Mac,
    /// Remote VTEP address.
    pub dst: IpAddr,
}

/// `bridge fdb replace MAC dev DEV dst DST self permanent`: frames for `mac`
/// leave `dev` towards the VTEP at `dst`. Idempotent; replaces the `dst` of
/// an existing entry for `mac`.
pub fn ensure_fdb(netns: Option<&str>, dev: &str, mac: &Mac, dst: IpAddr) -> Result<()> {
    bridge(
        netns,
        &[
            "fdb",
            "replace",
            &format_mac(mac),
            "dev",
            dev,
            "dst",
            &dst.to_string(),
            "self",
            "permanent",
        ],
    )
    .map(|_| ())
}

/// Removes an fdb entry; `Ok(false)` if there was none.
pub fn delete_fdb(netns: Option<&str>, dev: &str, mac: &Mac, dst: IpAddr) -> Result<bool> {
    let dst = dst.to_string();
    let mac = format_mac(mac);
    match bridge(
        netns,
        &["fdb", "del", &mac, "dev", dev, "dst", &dst, "self"],
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.stderr_contains("No such file") || e.stderr_contains("not found") => Ok(false),
        Err(e) => Err(e),
    }
}

fn parse_fdb(v: &Value) -> Vec<FdbEntry> {
    let Some(list) = v.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(FdbEntry {
                mac: parse_mac(e["mac"].as_str()?)?,
                dst: e["dst"].as_str()?.parse().ok()?,
            })
        })
        .collect()
}

/// The fdb entries of `dev` that point at a remote VTEP (entries without a
/// `dst` are skipped).
pub fn list_fdb(netns: Option<&str>, dev: &str) -> Result<Vec<FdbEntry>> {
    let out = bridge(netns, &["-j", "fdb", "show", "dev", dev])?;
    let v = parse_json(&out, || format!("bridge -j fdb show dev {dev}"))?;
    Ok(parse_fdb(&v))
}

/// An IPv4 neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighEntry {
    /// The neighbour's address.
    pub ip: Ipv4Addr,
    /// Its link-layer address, when known.
    pub mac: Option<Mac>,
    /// Whether the entry is `nud permanent` (static).
    pub permanent: bool,
}

/// `ip neigh replace IP lladdr MAC dev DEV nud permanent`: a static entry, so
/// the kernel never ARPs for `ip` on `dev`.
pub fn ensure_neigh(netns: Option<&str>, dev: &str, addr: Ipv4Addr, mac: &Mac) -> Result<()> {
    ip(
        netns,
        &[
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            &format_mac(mac),
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )
    .map(|_| ())
}

/// Removes a neighbour entry; `Ok(false)` if there was none.
pub fn delete_neigh(netns: Option<&str>, dev: &str, addr: Ipv4Addr) -> Result<bool> {
    match ip(netns, &["neigh", "del", &addr.to_string(), "dev", dev]) {
        Ok(_) => Ok(true),
        Err(e) if e.stderr_contains("No such file") || e.stderr_contains("not found") => Ok(false),
        Err(e) => Err(e),
    }
}

fn parse_neigh(v: &Value) -> Vec<NeighEntry> {
    let Some(list) = v.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let state = e["state"].as_array();
            Some(NeighEntry {
                ip: e["dst"].as_str()?.parse().ok()?,
                mac: e["lladdr"].as_str().and_then(parse_mac),
                permanent: state.is_some_and(|s| s.iter().any(|x| x == "PERMANENT")),
            })
        })
        .collect()
}

/// The IPv4 neighbour entries of `dev`.
pub fn list_neigh(netns: Option<&str>, dev: &str) -> Result<Vec<NeighEntry>> {
    let out = ip(netns, &["-4", "-j", "neigh", "show", "dev", dev])?;
    let v = parse_json(&out, || format!("ip -4 -j neigh show dev {dev}"))?;
    Ok(parse_neigh(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fdb_entries_with_a_destination_are_listed() {
        let v = json!([
            {"mac": "02:fe:c6:12:00:09", "dst": "198.18.0.9", "flags": ["self"], "state": "permanent"},
            {"mac": "00:00:00:00:00:00", "dst": "198.18.0.8", "flags": ["self"], "state": "permanent"},
            {"mac": "33:33:00:00:00:01", "flags": ["self"], "state": "permanent"},
        ]);
        assert_eq!(
            parse_fdb(&v),
            vec![
                FdbEntry {
                    mac: [0x02, 0xfe, 0xc6, 0x12, 0, 9],
                    dst: "198.18.0.9"
                        .parse()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                },
                FdbEntry {
                    mac: [0; 6],
                    dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 8)),
                },
            ]
        );
    }

    #[test]
    fn neighbours_parse_with_state() {
        let v = json!([
            {"dst": "198.18.0.9", "lladdr": "02:fe:c6:12:00:09", "state": ["PERMANENT"]},
            {"dst": "198.18.0.7", "state": ["FAILED"]},
        ]);
        assert_eq!(
            parse_neigh(&v),
            vec![
                NeighEntry {
                    ip: Ipv4Addr::new(198, 18, 0, 9),
                    mac: Some([0x02, 0xfe, 0xc6, 0x12, 0, 9]),
                    permanent: true,
                },
                NeighEntry {
                    ip: Ipv4Addr::new(198, 18, 0, 7),
                    mac: None,
                    permanent: false,
                },
            ]
        );
    }
}
