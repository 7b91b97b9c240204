//! The anchors, placed between the same two gateway node namespaces as
//! ferry's cable, next to it:
//! - `wireguard-go` (Debian's) with `wg set`, MTU 1420 like ferry's cable;
//! - a bare kernel VXLAN device, MTU 1450 like ferry's, the remote's
//!   subnets routed through it via a static (permanent) neighbour.
//!
//! Both run while ferry's gateways keep running, and policy rules choose
//! which tunnel a packet takes: TCP to or from port [`PORT`] (the anchor's
//! iperf3) and packets with TOS [`TOS`] (the anchor's pings; an echo reply
//! keeps the request's TOS) look up table [`TABLE`] (the anchor's routes) at
//! priority 7000/7001, ahead of ferry's tables. So the same pods measure
//! both paths back to back, with no reconfiguration between runs. Device
//! counters check that each run took the path it should.
//! Everything is removed on drop.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::sys::{self, wait_for};

/// Routing table of the anchors' routes.
pub const TABLE: &str = "7299";
/// Priorities of the rules that look it up (ferry's gateway uses 7099).
const RULE_PRIORITIES: [&str; 2] = ["7000", "7001"];
/// TCP port of the anchor's iperf3 server.
pub const PORT: &str = "5300";
/// TOS of the anchor's pings (inside the bits routing rules compare, 0x1c).
pub const TOS: &str = "0x10";
/// UDP port of the wireguard-go anchor.
const WG_PORT: &str = "51899";
/// VNI and UDP port of the VXLAN anchor (ferry's cable: 7101 / 4800).
const VXLAN_VNI: &str = "7299";
const VXLAN_PORT: &str = "4799";
const VXLAN_DEV: &str = "bdvx";

/// One end of the anchor tunnel: a gateway node namespace.
#[derive(Clone, Debug)]
pub struct End {
    pub netns: String,
    /// Its address on the shared WAN bridge (`wan0`).
    pub wan: Ipv4Addr,
    /// Its address inside its cluster (`eth0`), the VXLAN next hop.
    pub private: Ipv4Addr,
    /// The subnets behind it (pod and service CIDR).
    pub subnets: Vec<String>,
}

impl End {
    pub fn of(netns: &str, subnets: Vec<String>) -> Result<End> {
        Ok(End {
            netns: netns.to_string(),
            wan: sys::addr_of(netns, "wan0")?,
            private: sys::addr_of(netns, "eth0")?,
            subnets,
        })
    }
}

/// Which anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    WireguardGo,
    Vxlan,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::WireguardGo => "wireguard-go",
            Kind::Vxlan => "kernel VXLAN",
        }
    }
}

/// A running anchor between two ends; torn down on drop.
pub struct Anchor {
    ends: [End; 2],
    devs: [String; 2],
    children: Vec<Child>,
    _keys: Option<tempfile::TempDir>,
}

impl Anchor {
    /// Brings the anchor up between `ends`; `tag` makes device names unique
    /// on the host (wireguard-go's UAPI sockets are host-wide).
    pub fn up(kind: Kind, ends: [End; 2], tag: &str) -> Result<Anchor> {
        let devs = match kind {
            Kind::WireguardGo => [format!("bdg{tag}a"), format!("bdg{tag}b")],
            Kind::Vxlan => [VXLAN_DEV.to_string(), VXLAN_DEV.to_string()],
        };
        let mut anchor = Anchor {
            ends,
            devs,
            children: Vec::new(),
            _keys: None,
        };
        match kind {
            Kind::WireguardGo => anchor.wireguard_go()?,
            Kind::Vxlan => anchor.vxlan()?,
        }
        for i in 0..2 {
            let (me, peer) = (&anchor.ends[i], &anchor.ends[1 - i]);
            for subnet in &peer.subnets {
                let mut args = vec![
                    "-n",
                    &me.netns,
                    "route",
                    "replace",
                    subnet,
                    "dev",
                    &anchor.devs[i],
                ];
                let hop = peer.private.to_string();
                if kind == Kind::Vxlan {
                    args.extend(["via", &hop, "onlink"]);
                }
                args.extend(["table", TABLE]);
                sys::run("ip", &args)?;
            }
            // End 0 is the iperf3 client's side, end 1 the server's.
            let port_dir = if i == 0 { "dport" } else { "sport" };
            let ns = me.netns.as_str();
            sys::run(
                "ip",
                &[
                    "-n",
                    ns,
                    "rule",
                    "add",
                    "pref",
                    RULE_PRIORITIES[0],
                    "ipproto",
                    "tcp",
                    port_dir,
                    PORT,
                    "lookup",
                    TABLE,
                ],
            )?;
            sys::run(
                "ip",
                &[
                    "-n",
                    ns,
                    "rule",
                    "add",
                    "pref",
                    RULE_PRIORITIES[1],
                    "tos",
                    TOS,
                    "lookup",
                    TABLE,
                ],
            )?;
            // Replies arrive on the anchor while the route back to their
            // source is ferry's cable: loose mode, as ferry sets on its own.
            sys::ns_run(
                ns,
                "sysctl",
                &[
                    "-q",
                    "-w",
                    &format!("net.ipv4.conf.{}.rp_filter=2", anchor.devs[i]),
                ],
            )?;
        }
        Ok(anchor)
    }

    /// The anchor's device on end `i`.
    pub fn dev(&self, i: usize) -> &str {
        &self.devs[i]
    }

    fn wireguard_go(&mut self) -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut keys = Vec::new();
        for end in 0..2 {
            let private = sys::run("wg", &["genkey"])?.trim().to_string();
            let public = sys::run_with_stdin("wg", &["pubkey"], Some(&private))?
                .trim()
                .to_string();
            let path = dir.path().join(format!("key{end}"));
            write_private(&path, &private)?;
            keys.push((path, public));
        }
        for i in 0..2 {
            let child = sys::ns_spawn(
                &self.ends[i].netns,
                &[("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")],
                "wireguard-go",
                &["-f", &self.devs[i]],
            )?;
            self.children.push(child);
        }
        for i in 0..2 {
            let sock = socket_path(&self.devs[i]);
            wait_for(
                "wireguard-go's UAPI socket",
                Duration::from_secs(10),
                Duration::from_millis(20),
                || sock.exists().then_some(()),
            )?;
        }
        for i in 0..2 {
            let (me, peer) = (&self.ends[i], &self.ends[1 - i]);
            let endpoint = format!("{}:{WG_PORT}", peer.wan);
            let allowed = peer.subnets.join(",");
            sys::ns_run(
                &me.netns,
                "wg",
                &[
                    "set",
                    &self.devs[i],
                    "listen-port",
                    WG_PORT,
                    "private-key",
                    &keys[i].0.to_string_lossy(),
                    "peer",
                    &keys[1 - i].1,
                    "endpoint",
                    &endpoint,
                    "allowed-ips",
                    &allowed,
                ],
            )?;
            sys::run(
                "ip",
                &[
                    "-n",
                    &me.netns,
                    "link",
                    "set",
                    &self.devs[i],
                    "mtu",
                    "1420",
                    "up",
                ],
            )?;
        }
        self._keys = Some(dir);
        Ok(())
    }

    fn vxlan(&mut self) -> Result<()> {
        let macs = ["02:bd:72:99:00:01", "02:bd:72:99:00:02"];
        for i in 0..2 {
            let (me, peer) = (&self.ends[i], &self.ends[1 - i]);
            let (local, remote) = (me.wan.to_string(), peer.wan.to_string());
            sys::run(
                "ip",
                &[
                    "-n", &me.netns, "link", "add", VXLAN_DEV, "address", macs[i], "type", "vxlan",
                    "id", VXLAN_VNI, "local", &local, "remote", &remote, "dstport", VXLAN_PORT,
                    "dev", "wan0",
                ],
            )?;
            sys::run(
                "ip",
                &[
                    "-n", &me.netns, "link", "set", VXLAN_DEV, "mtu", "1450", "up",
                ],
            )?;
            sys::run(
                "ip",
                &[
                    "-n",
                    &me.netns,
                    "neigh",
                    "replace",
                    &peer.private.to_string(),
                    "lladdr",
                    macs[1 - i],
                    "dev",
                    VXLAN_DEV,
                    "nud",
                    "permanent",
                ],
            )?;
        }
        Ok(())
    }
}

fn socket_path(dev: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/wireguard/{dev}.sock"))
}

fn write_private(path: &std::path::Path, key: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    Ok(())
}

impl Drop for Anchor {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (end, dev) in self.ends.iter().zip(&self.devs) {
            let ns = end.netns.as_str();
            for pref in RULE_PRIORITIES {
                let _ = sys::run("ip", &["-n", ns, "rule", "del", "pref", pref]);
            }
            let _ = sys::run("ip", &["-n", ns, "route", "flush", "table", TABLE]);
            if sys::link_exists(ns, dev) {
                let _ = sys::run("ip", &["-n", ns, "link", "del", dev]);
            }
            let _ = std::fs::remove_file(socket_path(dev));
        }
    }
}
