//! Links and addresses: the VXLAN interface, link facts, addresses.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use crate::mac::{Mac, format_mac, parse_mac, vtep_mac};
use crate::{
    Error, Result, VX_FERRY, VX_FERRY_HOST_ADDR, VX_FERRY_PORT, VX_FERRY_VNI, VXLAN_OVERHEAD, ip,
    ip_batch,
};

/// Runs `ip -j ARGS…` and parses its JSON.
pub(crate) fn ip_json(netns: Option<&str>, args: &[&str]) -> Result<Value> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = ip(netns, &full)?;
    parse_json(&out, || format!("ip -j {}", args.join(" ")))
}

pub(crate) fn parse_json(out: &str, command: impl Fn() -> String) -> Result<Value> {
    // Some iproute2 versions print nothing at all for an empty list.
    if out.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(out).map_err(|e| Error::Parse {
        command: command(),
        message: e.to_string(),
    })
}

/// A VXLAN interface as ferry uses it: unicast to VTEPs given by static fdb
/// entries, no learning, a fixed MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vxlan {
    /// Interface name, e.g. [`VX_FERRY`].
    pub name: String,
    /// VXLAN network identifier.
    pub vni: u32,
    /// UDP destination (and listening) port.
    pub port: u16,
    /// Local VTEP address: the node's underlay IPv4 address.
    pub local: Ipv4Addr,
    /// Underlay device that holds `local`.
    pub dev: String,
    /// MTU of the VXLAN interface.
    pub mtu: u32,
    /// MAC address of the VXLAN interface.
    pub mac: Mac,
    /// A host-scoped /32 address to put on the interface (see
    /// [`VX_FERRY_HOST_ADDR`] for why), or none.
    pub host_addr: Option<Ipv4Addr>,
}

impl Vxlan {
    /// `vx-ferry` on a node: VNI [`VX_FERRY_VNI`], port [`VX_FERRY_PORT`], MAC
    /// [`vtep_mac`] of `local`, MTU = `underlay_mtu` − [`VXLAN_OVERHEAD`],
    /// host address [`VX_FERRY_HOST_ADDR`].
    pub fn vx_ferry(local: Ipv4Addr, dev: &str, underlay_mtu: u32) -> Self {
        Self {
            name: VX_FERRY.to_string(),
            vni: VX_FERRY_VNI,
            port: VX_FERRY_PORT,
            local,
            dev: dev.to_string(),
            mtu: underlay_mtu.saturating_sub(VXLAN_OVERHEAD),
            mac: vtep_mac(local),
            host_addr: Some(VX_FERRY_HOST_ADDR),
        }
    }

    fn create_command(&self) -> String {
        format!(
            "link add {} address {} mtu {} type vxlan id {} dstport {} local {} dev {} nolearning",
            self.name,
            format_mac(&self.mac),
            self.mtu,
            self.vni,
            self.port,
            self.local,
            self.dev
        )
    }
}

/// What `ensure_vxlan` must do with an existing link.
#[derive(Debug, PartialEq, Eq)]
enum VxlanFix {
    Nothing,
    /// Only MTU and/or MAC differ: change them in place.
    Modify,
    /// Missing.
    Create,
    /// Another kind of link, or other VXLAN parameters: delete and recreate.
    Recreate,
}

fn vxlan_fix(want: &Vxlan, links: &Value) -> VxlanFix {
    let Some(link) = links.as_array().and_then(|a| a.first()) else {
        return VxlanFix::Create;
    };
    let info = &link["linkinfo"];
    let data = &info["info_data"];
    let same_tunnel = info["info_kind"] == "vxlan"
        && data["id"].as_u64() == Some(u64::from(want.vni))
        && data["port"].as_u64() == Some(u64::from(want.port))
        && data["local"].as_str() == Some(&want.local.to_string())
        && data["link"].as_str() == Some(want.dev.as_str())
        && data["learning"].as_bool() == Some(false);
    if !same_tunnel {
        return VxlanFix::Recreate;
    }
    let same_mtu = link["mtu"].as_u64() == Some(u64::from(want.mtu));
    let same_mac = link["address"].as_str().and_then(parse_mac) == Some(want.mac);
    if same_mtu && same_mac {
        VxlanFix::Nothing
    } else {
        VxlanFix::Modify
    }
}

/// Makes the VXLAN interface exist with exactly these parameters and be up:
/// creates it if missing, changes MTU/MAC in place, and deletes and recreates
/// it when the tunnel parameters (kind, VNI, port, local address, underlay
/// device, learning) differ. Returns `true` when the link was (re)created —
/// its fdb and neighbour entries are then gone and must be added again.
pub fn ensure_vxlan(netns: Option<&str>, want: &Vxlan) -> Result<bool> {
    let current = match ip_json(netns, &["-d", "link", "show", "dev", &want.name]) {
        Ok(v) => v,
        Err(e) if e.stderr_contains("does not exist") => Value::Null,
        Err(e) => return Err(e),
    };
    let fix = vxlan_fix(want, &current);
    let mut lines = Vec::new();
    match fix {
        VxlanFix::Nothing => {}
        VxlanFix::Modify => lines.push(format!(
            "link set dev {} mtu {} address {}",
            want.name,
            want.mtu,
            format_mac(&want.mac)
        )),
        VxlanFix::Create | VxlanFix::Recreate => {
            if fix == VxlanFix::Recreate {
                lines.push(format!("link del dev {}", want.name));
            }
            lines.push(want.create_command());
        }
    }
    if let Some(addr) = want.host_addr {
        lines.push(format!(
            "addr replace {addr}/32 dev {} scope host",
            want.name
        ));
    }
    lines.push(format!("link set dev {} up", want.name));
    ip_batch(netns, &lines)?;
    Ok(matches!(fix, VxlanFix::Create | VxlanFix::Recreate))
}

/// Whether a link of this name exists in the namespace.
pub fn link_exists(netns: Option<&str>, name: &str) -> Result<bool> {
    match ip(netns, &["-j", "link", "show", "dev", name]) {
        Ok(_) => Ok(true),
        Err(e) if e.stderr_contains("does not exist") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes a link; `Ok(false)` if there was none.
pub fn delete_link(netns: Option<&str>, name: &str) -> Result<bool> {
    if !link_exists(netns, name)? {
        return Ok(false);
    }
    match ip(netns, &["link", "del", "dev", name]) {
        Ok(_) => Ok(true),
        // Gone in between.
        Err(e) if e.stderr_contains("Cannot find device") => Ok(false),
        Err(e) => Err(e),
    }
}

/// `ip link set dev DEV up`.
pub fn link_up(netns: Option<&str>, dev: &str) -> Result<()> {
    ip(netns, &["link", "set", "dev", dev, "up"]).map(|_| ())
}

/// The MTU of a link.
pub fn link_mtu(netns: Option<&str>, dev: &str) -> Result<u32> {
    let links = ip_json(netns, &["link", "show", "dev", dev])?;
    links
        .as_array()
        .and_then(|a| a.first())
        .and_then(|l| l["mtu"].as_u64())
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| Error::Parse {
            command: format!("ip -j link show dev {dev}"),
            message: "no mtu".into(),
        })
}

fn interface_in(addrs: &Value, wanted: IpAddr) -> Option<String> {
    addrs.as_array()?.iter().find_map(|link| {
        let holds = link["addr_info"].as_array()?.iter().any(|a| {
            a["local"]
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .is_some_and(|ip| ip == wanted)
        });
        holds.then(|| link["ifname"].as_str().map(str::to_string))?
    })
}

/// The IPv4 networks directly attached to the namespace's interfaces
/// (`addr/prefix` reduced to the network; host addresses attach none).
pub fn attached_networks(netns: Option<&str>) -> Result<Vec<ferry_api::Cidr>> {
    let addrs = ip_json(netns, &["-4", "addr", "show"])?;
    let mut nets = Vec::new();
    for link in addrs.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let (Some(ip), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
                continue;
            };
            let (Ok(ip), Ok(len)) = (ip.parse::<std::net::Ipv4Addr>(), u8::try_from(len)) else {
                continue;
            };
            if len == 0 || len >= 32 {
                continue;
            }
            let net = u32::from(ip) & (u32::MAX << (32 - u32::from(len)));
            if let Ok(c) = ferry_api::Cidr::new(IpAddr::V4(net.into()), len) {
                nets.push(c);
            }
        }
    }
    Ok(nets)
}

/// Every IPv4 address on the namespace's interfaces.
pub fn local_ipv4_addresses(netns: Option<&str>) -> Result<Vec<std::net::Ipv4Addr>> {
    let addrs = ip_json(netns, &["-4", "addr", "show"])?;
    Ok(addrs
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().into_iter().flatten())
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect())
}

/// Name of the interface holding `addr` (the underlay device of a node IP).
pub fn interface_of(netns: Option<&str>, addr: IpAddr) -> Result<String> {
    let addrs = ip_json(netns, &["addr", "show"])?;
    interface_in(&addrs, addr).ok_or(Error::NoInterface(addr))
}

/// One IPv4 address on an interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IfAddr {
    /// The interface holding it.
    pub dev: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

fn parse_addrs(addrs: &Value) -> Vec<IfAddr> {
    let mut out = Vec::new();
    for link in addrs.as_array().into_iter().flatten() {
        let Some(dev) = link["ifname"].as_str() else {
            continue;
        };
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let ip = a["local"].as_str().and_then(|s| s.parse::<Ipv4Addr>().ok());
            let prefix = a["prefixlen"].as_u64().and_then(|p| u8::try_from(p).ok());
            if let (Some(ip), Some(prefix)) = (ip, prefix) {
                out.push(IfAddr {
                    dev: dev.to_string(),
                    ip,
                    prefix,
                });
            }
        }
    }
    out
}

/// The IPv4 addresses of every interface in the namespace (`dev: None`), or
/// of one interface (an absent one has none).
pub fn list_addrs(netns: Option<&str>, dev: Option<&str>) -> Result<Vec<IfAddr>> {
    let mut args = vec!["-4", "addr", "show"];
    if let Some(d) = dev {
        args.extend(["dev", d]);
    }
    match ip_json(netns, &args) {
        Ok(v) => Ok(parse_addrs(&v)),
        Err(e) if dev.is_some() && e.stderr_contains("does not exist") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes `addr/prefix` from `dev`; `Ok(false)` if it was not there.
pub fn delete_addr(netns: Option<&str>, dev: &str, addr: IpAddr, prefix: u8) -> Result<bool> {
    match ip(
        netns,
        &["addr", "del", &format!("{addr}/{prefix}"), "dev", dev],
    ) {
        Ok(_) => Ok(true),
        Err(e)
            if e.stderr_contains("Cannot assign requested address")
                || e.stderr_contains("does not exist") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Adds `addr/prefix` to `dev` (`ip addr replace`, so repeating it is harmless).
pub fn add_addr(netns: Option<&str>, dev: &str, addr: IpAddr, prefix: u8) -> Result<()> {
    ip(
        netns,
        &["addr", "replace", &format!("{addr}/{prefix}"), "dev", dev],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn want() -> Vxlan {
        Vxlan::vx_ferry(Ipv4Addr::new(198, 18, 0, 10), "eth0", 1500)
    }

    fn shown(mtu: u64, mac: &str, kind: &str, id: u64, learning: bool) -> Value {
        json!([{
            "ifname": "vx-ferry", "mtu": mtu, "address": mac,
            "linkinfo": {"info_kind": kind, "info_data": {
                "id": id, "local": "198.18.0.10", "link": "eth0",
                "port": 4799, "learning": learning
            }}
        }])
    }

    #[test]
    fn vx_ferry_defaults() {
        let v = want();
        assert_eq!(v.mtu, 1450);
        assert_eq!(v.vni, 7100);
        assert_eq!(v.port, 4799);
        assert_eq!(format_mac(&v.mac), "02:fe:c6:12:00:0a");
        assert_eq!(
            v.create_command(),
            "link add vx-ferry address 02:fe:c6:12:00:0a mtu 1450 type vxlan id 7100 \
             dstport 4799 local 198.18.0.10 dev eth0 nolearning"
        );
    }

    #[test]
    fn vxlan_fix_decides_between_nothing_modify_and_recreate() {
        let mac = "02:fe:c6:12:00:0a";
        let cases = [
            (Value::Null, VxlanFix::Create),
            (json!([]), VxlanFix::Create),
            (shown(1450, mac, "vxlan", 7100, false), VxlanFix::Nothing),
            (
                shown(1450, "02:FE:C6:12:00:0A", "vxlan", 7100, false),
                VxlanFix::Nothing,
            ),
            (shown(1400, mac, "vxlan", 7100, false), VxlanFix::Modify),
            (
                shown(1450, "02:fe:00:00:00:01", "vxlan", 7100, false),
                VxlanFix::Modify,
            ),
            (shown(1450, mac, "vxlan", 100, false), VxlanFix::Recreate),
            (shown(1450, mac, "vxlan", 7100, true), VxlanFix::Recreate),
            (shown(1450, mac, "veth", 7100, false), VxlanFix::Recreate),
        ];
        for (links, fix) in cases {
            assert_eq!(vxlan_fix(&want(), &links), fix, "{links}");
        }
        let mut other_dev = shown(1450, mac, "vxlan", 7100, false);
        other_dev[0]["linkinfo"]["info_data"]["link"] = json!("eth1");
        assert_eq!(vxlan_fix(&want(), &other_dev), VxlanFix::Recreate);
        let mut other_local = shown(1450, mac, "vxlan", 7100, false);
        other_local[0]["linkinfo"]["info_data"]["local"] = json!("198.18.0.11");
        assert_eq!(vxlan_fix(&want(), &other_local), VxlanFix::Recreate);
    }

    #[test]
    fn interface_of_finds_the_holder() {
        let addrs = json!([
            {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"}]},
            {"ifname": "eth0", "addr_info": [
                {"family": "inet6", "local": "fe80::1"},
                {"family": "inet", "local": "198.18.0.10"}
            ]},
            {"ifname": "wan0", "addr_info": []}
        ]);
        assert_eq!(
            interface_in(&addrs, "198.18.0.10".parse().unwrap()).as_deref(),
            Some("eth0")
        );
        assert_eq!(interface_in(&addrs, "198.18.0.11".parse().unwrap()), None);
    }

    #[test]
    fn addresses_are_listed_per_interface_ipv4_only() {
        let addrs = json!([
            {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
            {"ifname": "vp3", "addr_info": [
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
                {"family": "inet", "local": "100.64.1.1", "prefixlen": 32}
            ]},
            {"ifname": "wan0", "addr_info": []}
        ]);
        let got = parse_addrs(&addrs);
        assert_eq!(
            got,
            vec![
                IfAddr {
                    dev: "lo".into(),
                    ip: Ipv4Addr::new(127, 0, 0, 1),
                    prefix: 8
                },
                IfAddr {
                    dev: "vp3".into(),
                    ip: Ipv4Addr::new(100, 64, 1, 1),
                    prefix: 32
                },
            ]
        );
    }

    #[test]
    fn empty_output_is_an_empty_list() {
        assert_eq!(parse_json("", String::new).unwrap(), json!([]));
        assert!(matches!(
            parse_json("{", || "ip -j x".into()),
            Err(Error::Parse { .. })
        ));
    }
}
