//! Network plumbing by running `ip` and `nft`: cluster bridges, node and pod
//! namespaces, veths, addresses and routes, and the sweeper that removes
//! whatever carries our prefix. Everything here is blocking; async callers
//! use `spawn_blocking`.

use std::net::Ipv4Addr;

use crate::plan::{NODE_SPACE, POD_SPACE, PREFIX, Plan, SandboxCni, WAN_BRIDGE};
use crate::{Error, Result};

pub use crate::cmd::{ip, ip_batch, netns_exec, nft_apply, run};

/// Names of all network namespaces.
pub fn netns_list() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Names of all links in the host namespace.
pub fn host_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn write_resolv_conf(netns: &str, content: &str) -> Result<()> {
    let dir = std::path::Path::new("/etc/netns").join(netns);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let f = dir.join("resolv.conf");
    std::fs::write(&f, content).map_err(|e| Error::io("writing", &f, e))
}

/// Creates the cluster bridge, the WAN bridge if missing, and every node
/// namespace with its interfaces, addresses and routes: on the WAN itself,
/// or, behind a NAT router ([`crate::nat`]), routed to the WAN through it.
pub fn create_cluster_network(plan: &Plan) -> Result<()> {
    let br = plan.bridge();
    let mut host = vec![
        format!("link add {br} type bridge"),
        format!("link set {br} up"),
        format!("addr add {}/24 dev {br}", plan.host_ip()),
    ];
    if !link_exists(WAN_BRIDGE) {
        // Another create may race us to it; tolerate "exists" below.
        let _ = ip(&["link", "add", WAN_BRIDGE, "type", "bridge"]);
        let _ = ip(&["link", "set", WAN_BRIDGE, "up"]);
    }
    if plan.cni == SandboxCni::KubeOvn {
        let jb = plan.join_bridge();
        host.push(format!("link add {jb} type bridge"));
        host.push(format!("link set {jb} up"));
    }
    for k in 0..plan.nodes {
        let ns = plan.node_netns(k);
        ip(&["netns", "add", &ns])?;
        write_resolv_conf(&ns, &plan.resolv_conf(None))?;
        let (nv, wv) = (plan.node_veth(k), plan.wan_veth(k));
        host.push(format!("link add {nv} type veth peer name eth0 netns {ns}"));
        host.push(format!("link set {nv} master {br} up"));
        if plan.nat.is_none() {
            host.push(format!("link add {wv} type veth peer name wan0 netns {ns}"));
            host.push(format!("link set {wv} master {WAN_BRIDGE} up"));
        }
        if plan.cni == SandboxCni::KubeOvn {
            let ov = plan.join_veth(k);
            host.push(format!("link add {ov} type veth peer name ovn0 netns {ns}"));
            host.push(format!("link set {ov} master {} up", plan.join_bridge()));
        }
    }
    ip_batch(None, &host)?;
    if let Some(mode) = plan.nat {
        crate::nat::create(plan, mode)?;
    }
    for k in 0..plan.nodes {
        let ns = plan.node_netns(k);
        let mut lines = vec![
            "link set lo up".to_string(),
            format!("addr add {}/24 dev eth0", plan.node_ip(k)),
            "link set eth0 up".to_string(),
        ];
        match plan.nat {
            None => {
                lines.push(format!("addr add {}/16 dev wan0", plan.node_wan_ip(k)));
                lines.push("link set wan0 up".to_string());
            }
            Some(_) => lines.push(format!(
                "route add {} via {}",
                plan.wan_cidr(),
                plan.router_lan_ip()
            )),
        }
        // Locally generated traffic to ClusterIPs needs a route to be
        // DNATed at all; without endpoints it stays on the cluster bridge.
        lines.push(format!("route add {} dev eth0", plan.service_cidr));
        for api in plan.other_host_ips() {
            lines.push(format!("route add {api}/32 via {}", plan.host_ip()));
        }
        if plan.cni == SandboxCni::KubeOvn {
            let join = plan.join_cidr();
            lines.push(format!(
                "addr add {}/{} dev ovn0",
                plan.node_join_ip(k),
                join.prefix
            ));
            lines.push("link set ovn0 up".to_string());
        }
        for j in 0..plan.nodes {
            if j != k {
                lines.push(format!(
                    "route add {} via {}",
                    plan.node_pod_cidr(j),
                    plan.node_pod_next_hop(j)
                ));
            }
        }
        ip_batch(Some(&ns), &lines)?;
        if plan.cni == SandboxCni::KubeOvn {
            nft_apply(&ns, &kube_ovn_nat_rules(plan))?;
        }
        // Forwarding only inside our own node namespace.
        netns_exec(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
    }
    Ok(())
}

/// kube-ovn's `natOutgoing` for `ovn-default`, as its `OVN-POSTROUTING`
/// chain does it (iptables' nat table, priority srcnat): pod traffic leaving
/// the cluster's pod CIDR is masqueraded to the node's address. ferry's
/// route agent must keep cross-cluster traffic out of it.
pub fn kube_ovn_nat_rules(plan: &Plan) -> String {
    format!(
        "table ip kube-ovn-sbx {{\n\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr {} ip daddr != {} masquerade\n\t}}\n}}\n",
        plan.ovn_default_cidr(),
        plan.pod_cidr
    )
}

/// Creates a pod namespace behind a veth `vp{seq}` in its node, with `ip`,
/// routes to our two address spaces only, and its resolv.conf.
pub fn create_pod_network(
    plan: &Plan,
    node: u32,
    seq: u64,
    ip_addr: Ipv4Addr,
    k8s_ns: &str,
) -> Result<String> {
    let pod_ns = plan.pod_netns(node, seq);
    let node_ns = plan.node_netns(node);
    let gw = plan.node_pod_gateway(node);
    let veth = format!("vp{seq}");
    write_resolv_conf(&pod_ns, &plan.resolv_conf(Some(k8s_ns)))?;
    ip(&["netns", "add", &pod_ns])?;
    ip_batch(
        Some(&node_ns),
        &[
            format!("link add {veth} type veth peer name eth0 netns {pod_ns}"),
            format!("addr add {gw}/32 dev {veth}"),
            format!("link set {veth} up"),
            format!("route add {ip_addr}/32 dev {veth} src {gw}"),
        ],
    )?;
    ip_batch(
        Some(&pod_ns),
        &[
            "link set lo up".to_string(),
            format!("addr add {ip_addr}/32 dev eth0"),
            "link set eth0 up".to_string(),
            format!("route add {gw} dev eth0"),
            format!("route add {POD_SPACE} via {gw} src {ip_addr}"),
            format!("route add {NODE_SPACE} via {gw} src {ip_addr}"),
        ],
    )?;
    Ok(pod_ns)
}

/// Kills every process in a namespace, then deletes it (its veths go too).
pub fn delete_netns(netns: &str) -> Result<()> {
    kill_netns_pids(netns);
    let r = ip(&["netns", "del", netns]);
    let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(netns));
    match r {
        Err(Error::Command { message, .. }) if message.contains("No such file") => Ok(()),
        other => other.map(|_| ()),
    }
}

fn kill_netns_pids(netns: &str) {
    if let Ok(out) = ip(&["netns", "pids", netns]) {
        for pid in out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Removes every namespace, link and /etc/netns directory of one cluster.
pub fn delete_cluster_network(plan: &Plan) -> Vec<Error> {
    let prefix = plan.netns_prefix();
    remove_matching(|n| n.starts_with(&prefix), |l| plan.owns_link(l))
}

/// Removes everything with our prefix: namespaces, links (the WAN bridge
/// included) and /etc/netns directories. Used by `delete --all`.
pub fn sweep_all() -> Vec<Error> {
    let ours = |n: &str| {
        n.strip_prefix(PREFIX)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()) || r == "wan")
    };
    remove_matching(ours, ours)
}

/// Removes the namespaces and /etc/netns directories whose names
/// `ns_ours` accepts, then the host links `link_ours` accepts.
fn remove_matching(ns_ours: impl Fn(&str) -> bool, link_ours: impl Fn(&str) -> bool) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut spaces: Vec<String> = netns_list().into_iter().filter(|n| ns_ours(n)).collect();
    // Pods first, so their processes die before the node's.
    spaces.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for ns in spaces {
        if let Err(e) = delete_netns(&ns) {
            errors.push(e);
        }
    }
    for d in std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if ns_ours(&d.file_name().to_string_lossy()) {
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
    for link in host_links().into_iter().filter(|l| link_ours(l)) {
        if let Err(e) = ip(&["link", "del", &link])
            && link_exists(&link)
        {
            errors.push(e);
        }
    }
    errors
}

/// Deletes the WAN bridge once no cluster is left on it.
pub fn remove_wan_if_unused() {
    let in_use = host_links().iter().any(|l| {
        l.strip_prefix(PREFIX)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    });
    if !in_use && link_exists(WAN_BRIDGE) {
        let _ = ip(&["link", "del", WAN_BRIDGE]);
    }
}
