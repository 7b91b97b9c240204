//! The applier: brings one namespace's kernel state to a [`Desired`] through
//! `ferry-net`, and removes all of it again ([`cleanup`]). Blocking.
//!
//! It remembers what it applied last, so an update (a failover, a new
//! remote CIDR) touches only what changed: the host source address on
//! `vx-ferry` and new fdb/neighbour entries first, then the routes (whose
//! `src` needs that address) in one `ip -batch`, then stale entries and
//! addresses. A `full` apply
//! (at start, on the periodic resync, after any error) compares with what
//! the kernel actually holds instead, repairing drift.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ferry_api::Cidr;
use ferry_net::{
    FdbEntry, Mac, NFT_TABLE, ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE, Route, VX_FERRY,
    VX_FERRY_HOST_ADDR,
};
use tracing::{info, warn};

use crate::plan::{Desired, NodeFacts};
use crate::{Result, nft};

/// Reads what the planner needs from the kernel: the interface holding the
/// node's underlay address, its MTU and the addresses of the node's other
/// interfaces; `pod_cidrs` are the Node's.
pub fn node_facts(
    netns: Option<&str>,
    name: &str,
    ip: Ipv4Addr,
    pod_cidrs: &[Cidr],
) -> Result<NodeFacts> {
    let dev = ferry_net::interface_of(netns, IpAddr::V4(ip))?;
    let underlay_mtu = ferry_net::link_mtu(netns, &dev)?;
    let addresses = ferry_net::list_addrs(netns, None)?
        .into_iter()
        .filter(|a| a.dev != VX_FERRY)
        .collect();
    Ok(NodeFacts {
        name: name.to_string(),
        ip,
        underlay_dev: dev,
        underlay_mtu,
        pod_cidrs: pod_cidrs.iter().copied().filter(Cidr::is_ipv4).collect(),
        addresses,
    })
}

/// The host source address `want` puts on `vx-ferry`, if any.
fn source_addr(want: &Desired) -> Option<Ipv4Addr> {
    want.host_source.as_ref().ok().map(|h| h.ip)
}

/// What one apply changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `vx-ferry` was created or recreated.
    pub vxlan_created: bool,
    /// Routes installed or replaced.
    pub routes_replaced: usize,
    /// Routes removed.
    pub routes_deleted: usize,
    /// fdb + neighbour entries added or removed.
    pub entries_changed: usize,
    /// Addresses added to or removed from `vx-ferry` (the host source).
    pub addresses_changed: usize,
    /// The nftables table was (re)written.
    pub nft_written: bool,
    /// How long it took.
    pub took: Duration,
}

impl Changes {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.vxlan_created
            || self.routes_replaced > 0
            || self.routes_deleted > 0
            || self.entries_changed > 0
            || self.addresses_changed > 0
            || self.nft_written
    }
}

/// Applies [`Desired`] states to one namespace, remembering the last one.
#[derive(Debug)]
pub struct Applier {
    netns: Option<String>,
    last: Option<Desired>,
    last_nft: Option<String>,
}

impl Applier {
    /// An applier for `netns` (`None`: the current namespace).
    pub fn new(netns: Option<String>) -> Self {
        Self {
            netns,
            last: None,
            last_nft: None,
        }
    }

    /// The namespace it works in.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Brings the kernel to `want`. With `full`, or when nothing was applied
    /// yet, the kernel's state is read and compared; otherwise only what
    /// differs from the last apply is done. On error the memory is dropped,
    /// so the next call is a full one.
    pub fn apply(&mut self, want: &Desired, full: bool) -> Result<Changes> {
        let result = self.apply_inner(want, full);
        match &result {
            Ok(_) => self.last = Some(want.clone()),
            Err(_) => {
                self.last = None;
                self.last_nft = None;
            }
        }
        result
    }

    fn apply_inner(&mut self, want: &Desired, full: bool) -> Result<Changes> {
        let start = Instant::now();
        let ns = self.netns.as_deref();
        let last = if full { None } else { self.last.take() };
        let mut ch = Changes::default();

        // 1. vx-ferry and the sysctls that go with it.
        if last.as_ref().is_none_or(|l| l.vxlan != want.vxlan) {
            ch.vxlan_created = ferry_net::ensure_vxlan(ns, &want.vxlan)?;
        }
        if last.as_ref().is_none_or(|l| l.sysctls != want.sysctls) || ch.vxlan_created {
            for (key, value) in &want.sysctls {
                ferry_net::sysctl_set(ns, key, value)?;
            }
        }
        if last
            .as_ref()
            .is_none_or(|l| l.loose_rp_filter != want.loose_rp_filter)
        {
            for dev in &want.loose_rp_filter {
                loosen_rp_filter(ns, dev)?;
            }
        }
        // A recreated link lost its entries: compare with the kernel.
        let known = if ch.vxlan_created {
            None
        } else {
            last.as_ref()
        };

        // The host source address on vx-ferry before routes name it as `src`.
        let cur_addrs: Vec<Ipv4Addr> = match known {
            Some(l) => source_addr(l).into_iter().collect(),
            None => ferry_net::list_addrs(ns, Some(VX_FERRY))?
                .into_iter()
                .map(|a| a.ip)
                .filter(|ip| *ip != VX_FERRY_HOST_ADDR)
                .collect(),
        };
        let want_addr = source_addr(want);
        if let Some(ip) = want_addr.filter(|ip| !cur_addrs.contains(ip)) {
            ferry_net::add_addr(ns, VX_FERRY, IpAddr::V4(ip), 32)?;
            ch.addresses_changed += 1;
        }

        // 2. New fdb and neighbour entries before routes use them.
        let cur_fdb: Vec<FdbEntry> = match known {
            Some(l) => l.fdb.clone(),
            None => ferry_net::list_fdb(ns, VX_FERRY)?,
        };
        let cur_neigh: Vec<(Ipv4Addr, Mac)> = match known {
            Some(l) => l.neigh.clone(),
            None => ferry_net::list_neigh(ns, VX_FERRY)?
                .into_iter()
                .filter(|n| n.permanent)
                .filter_map(|n| Some((n.ip, n.mac?)))
                .collect(),
        };
        for e in want.fdb.iter().filter(|e| !cur_fdb.contains(e)) {
            ferry_net::ensure_fdb(ns, VX_FERRY, &e.mac, e.dst)?;
            ch.entries_changed += 1;
        }
        for (ip, mac) in want.neigh.iter().filter(|n| !cur_neigh.contains(n)) {
            ferry_net::ensure_neigh(ns, VX_FERRY, *ip, mac)?;
            ch.entries_changed += 1;
        }

        // 3. Routes: replace what differs, delete what is no longer wanted.
        let cur_routes: Vec<Route> = match known {
            Some(l) => l.routes.clone(),
            None => ferry_net::list_routes(ns, ROUTE_AGENT_TABLE)?,
        };
        let replace: Vec<Route> = want
            .routes
            .iter()
            .filter(|r| !cur_routes.contains(r))
            .cloned()
            .collect();
        let wanted: BTreeSet<Cidr> = want.routes.iter().map(|r| r.dst).collect();
        let delete: Vec<Cidr> = cur_routes
            .iter()
            .map(|r| r.dst)
            .filter(|d| !wanted.contains(d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ferry_net::route_batch(ns, ROUTE_AGENT_TABLE, &replace, &delete)?;
        ch.routes_replaced = replace.len();
        ch.routes_deleted = delete.len();
        if last.is_none() {
            ferry_net::ensure_rule(ns, ROUTE_AGENT_RULE_PRIORITY, ROUTE_AGENT_TABLE)?;
        }

        // 4. Stale entries (the previous gateway's) once no route uses them.
        for e in cur_fdb.iter().filter(|e| !want.fdb.contains(e)) {
            // A MAC re-pointed by `replace` above is already gone.
            if !want.fdb.iter().any(|w| w.mac == e.mac) {
                ferry_net::delete_fdb(ns, VX_FERRY, &e.mac, e.dst)?;
                ch.entries_changed += 1;
            }
        }
        for (ip, _) in cur_neigh.iter().filter(|n| !want.neigh.contains(n)) {
            if !want.neigh.iter().any(|(w, _)| w == ip) {
                ferry_net::delete_neigh(ns, VX_FERRY, *ip)?;
                ch.entries_changed += 1;
            }
        }

        // An address no route names any more.
        for ip in cur_addrs.iter().filter(|ip| Some(**ip) != want_addr) {
            ferry_net::delete_addr(ns, VX_FERRY, IpAddr::V4(*ip), 32)?;
            ch.addresses_changed += 1;
        }

        // 5. nftables, when the text changed (or on a full apply).
        let script = nft::apply_script(&want.nft);
        if full || self.last_nft.as_deref() != Some(script.as_str()) {
            ferry_net::nft_apply(ns, &script)?;
            self.last_nft = Some(script);
            ch.nft_written = true;
        }
        ch.took = start.elapsed();
        Ok(ch)
    }
}

/// Sets `rp_filter=2` on `dev` if the effective setting (the maximum of
/// `all` and the device's) is strict (1); loose (2) and off (0) are left alone.
fn loosen_rp_filter(ns: Option<&str>, dev: &str) -> Result<()> {
    let read =
        |key: &str| -> Result<u8> { Ok(ferry_net::sysctl_get(ns, key)?.parse().unwrap_or(0)) };
    let key = format!("net/ipv4/conf/{dev}/rp_filter");
    let effective = read("net.ipv4.conf.all.rp_filter")?.max(read(&key)?);
    if effective == 1 {
        info!(%dev, "loosening strict rp_filter to 2: replies from remote clusters arrive here while routes to them use vx-ferry");
        ferry_net::sysctl_set(ns, &key, "2")?;
    }
    Ok(())
}

/// What [`cleanup`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Routes that were in the route agent's table.
    pub routes: usize,
    /// Rules at the route agent's priority.
    pub rules: usize,
    /// Whether `vx-ferry` existed.
    pub vxlan: bool,
}

/// Removes everything the route agent installs: the nftables table, the
/// routes of its table, its rule and `vx-ferry` (with its fdb and neighbour
/// entries). Sysctls are left as they are. Every step is tried; the first
/// error is returned after all of them ran.
pub fn cleanup(netns: Option<&str>) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut first_err = None;
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            warn!("cleanup: {e}");
            first_err.get_or_insert(e);
        }
    };
    keep(ferry_net::nft_apply(netns, &nft::delete_script()).map_err(Into::into));
    keep(
        ferry_net::list_routes(netns, ROUTE_AGENT_TABLE)
            .and_then(|r| {
                removed.routes = r.len();
                ferry_net::flush_table(netns, ROUTE_AGENT_TABLE)
            })
            .map_err(Into::into),
    );
    keep(
        ferry_net::delete_rule(netns, ROUTE_AGENT_RULE_PRIORITY)
            .map(|n| removed.rules = n)
            .map_err(Into::into),
    );
    keep(
        ferry_net::delete_link(netns, VX_FERRY)
            .map(|existed| removed.vxlan = existed)
            .map_err(Into::into),
    );
    match first_err {
        Some(e) => Err(e),
        None => {
            info!(
                routes = removed.routes,
                rules = removed.rules,
                vxlan = removed.vxlan,
                "removed vx-ferry, table {ROUTE_AGENT_TABLE}, rule {ROUTE_AGENT_RULE_PRIORITY} and nft table {NFT_TABLE}"
            );
            Ok(removed)
        }
    }
}
