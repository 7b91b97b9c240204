//! Issue #14: every node reaches every cluster, not only its pods, and
//! ferry dns answers on port 53 at its own pod IP.
//!
//! - A node's own network namespace (what host-network pods, kubelet probes
//!   and a node shell use) pings a remote pod and connects to one by TCP,
//!   from a non-gateway node and from the gateway node, with each cable
//!   driver; the remote side sees the node's address inside this cluster's
//!   pod CIDR (its `ferry.dev/cni-iface-ip` annotation), never its node IP.
//! - The other way: a remote pod and a remote node's shell reach that
//!   address, by ping and by TCP to a host-network server on the node.
//! - After the active gateway is killed (-9), the non-gateway node, the
//!   old gateway and the new one all still cross.
//! - `dig @<ferry-dns pod IP>` on port 53 (UDP and TCP) answers a
//!   clusterset name, from a pod and from a node shell.
//!
//! Root only (skipped otherwise); each test builds and deletes its own
//! clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_e2e::nginx::{EXPORT, NAMESPACE, NGINX};
use ferry_e2e::{
    Broker, Cluster, Clusterset, ferry_bin, gateway_pid, holder, netns, ping, usable, wait_for,
};

const WAIT: Duration = Duration::from_secs(60);

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// The address node `k`'s host traffic leaves from, as its route agent
/// annotates the Node; checked to be the node's pod gateway address (the
/// first of its podCIDR), not its node IP.
fn node_source(c: &Cluster, k: usize) -> Ipv4Addr {
    let ip = wait_for(
        WAIT,
        &format!("{}'s cni-iface-ip annotation", c.node(k)),
        || {
            let out = c
                .kubectl(&[
                    "get",
                    "node",
                    &c.node(k),
                    "-o",
                    r"jsonpath={.metadata.annotations.ferry\.dev/cni-iface-ip}",
                ])
                .unwrap();
            out.trim().parse::<Ipv4Addr>().ok()
        },
    );
    let plan = c.plan().unwrap();
    assert_eq!(ip, plan.node_pod_gateway(k as u32), "{}", c.node(k));
    ip
}

/// The IPs of the example nginx pods once both run.
fn nginx_pods(c: &Cluster) -> Vec<String> {
    c.apply(NGINX).unwrap();
    wait_for(WAIT, "both nginx pods running", || {
        let out = c
            .kubectl(&[
                "-n",
                "nginx-test",
                "get",
                "pods",
                "-l",
                "app=nginx",
                "--field-selector",
                "status.phase=Running",
                "-o",
                "jsonpath={.items[*].status.podIP}",
            ])
            .unwrap();
        let ips: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        (ips.len() == 2).then_some(ips)
    })
}

/// `curl` from a network namespace until the http-echo answer names a
/// client; returns the address it saw.
fn seen_by(ns: &str, url: &str) -> String {
    wait_for(WAIT, &format!("HTTP {url} from {ns}"), || {
        let out = netns(ns, &["curl", "-s", "--max-time", "2", url]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let from = body.split(" from ").nth(1)?;
        Some(from.rsplit_once(':')?.0.to_string())
    })
}

/// Waits until one ping from `ns` to `ip` is answered, then pings five
/// times: all must come back.
fn pings(ns: &str, ip: &str, what: &str) {
    wait_for(WAIT, &format!("a first reply: {what}"), || {
        (ping(ns, ip, 1, "0.2").1 == 1).then_some(())
    });
    assert_eq!(ping(ns, ip, 5, "0.2"), (5, 5), "{what}");
}

/// `ferry tools http-echo` in a node's own network namespace, as a
/// host-network pod runs; stopped on drop.
struct HostServer(Child);

impl HostServer {
    fn start(ns: &str, port: u16) -> HostServer {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", "300"])
            .arg(ferry_bin())
            .args(["tools", "http-echo", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        HostServer(child)
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        // SIGTERM: `timeout` passes it on to the server.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Both directions between node shells, pods and host-network servers.
fn host_traffic(driver: &str, t: &str) {
    if !usable() {
        return;
    }
    let cs = Clusterset::new(
        &tag(t),
        &[2, 2],
        &[&[0], &[0]],
        driver,
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let (a0, a1) = (node_source(a, 0), node_source(a, 1));
    let b1 = node_source(b, 1);
    let (a_gw, a_node) = (a.node_netns(0).unwrap(), a.node_netns(1).unwrap());
    let b_node = b.node_netns(1).unwrap();
    let server = b.pod("server", 1).unwrap();
    let nginx = nginx_pods(b);
    let url = format!("http://{}:8080/", nginx[0]);

    // From a node shell, the non-gateway node and the gateway node.
    let ip = server.ip.to_string();
    pings(
        &a_node,
        &ip,
        &format!("{driver}: {} (host) → a pod of {}", a.node(1), b.name),
    );
    pings(
        &a_gw,
        &ip,
        &format!("{driver}: {} (host) → a pod of {}", a.node(0), b.name),
    );
    // TCP as a kubelet probe connects; the pod sees the node's pod-CIDR address.
    assert_eq!(
        seen_by(&a_node, &url),
        a1.to_string(),
        "{driver}: TCP from {}",
        a.node(1)
    );
    assert_eq!(
        seen_by(&a_gw, &url),
        a0.to_string(),
        "{driver}: TCP from {}",
        a.node(0)
    );

    // The other way: a remote pod and a remote node shell reach the node.
    let _host = HostServer::start(&a_node, 18080);
    pings(
        &server.netns,
        &a1.to_string(),
        &format!("{driver}: a pod of {} → {}", b.name, a.node(1)),
    );
    pings(
        &b_node,
        &a1.to_string(),
        &format!("{driver}: {} (host) → {}", b.node(1), a.node(1)),
    );
    let node_url = format!("http://{a1}:18080/");
    assert_eq!(
        seen_by(&server.netns, &node_url),
        server.ip.to_string(),
        "{driver}"
    );
    assert_eq!(seen_by(&b_node, &node_url), b1.to_string(), "{driver}");
}

#[test]
fn node_host_network_crosses_both_ways_over_wireguard() {
    host_traffic("wireguard", "e14w");
}

#[test]
fn node_host_network_crosses_both_ways_over_vxlan() {
    host_traffic("vxlan", "e14v");
}

/// Kills the active gateway of the first cluster (three nodes, node0 and
/// node1 gateways); every node's shell still crosses, from its own address.
fn host_traffic_after_failover(driver: &str, t: &str) {
    if !usable() {
        return;
    }
    let cs = Clusterset::new(
        &tag(t),
        &[3, 2],
        &[&[0, 1], &[0]],
        driver,
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    let sources: Vec<Ipv4Addr> = (0..3).map(|k| node_source(a, k)).collect();
    let nginx = nginx_pods(b);
    let url = format!("http://{}:8080/", nginx[0]);
    let worker = a.node_netns(2).unwrap();
    assert_eq!(
        seen_by(&worker, &url),
        sources[2].to_string(),
        "{driver}: before"
    );

    // Whichever gateway node won the election (node0 usually does).
    let active = wait_for(WAIT, "an active gateway", || {
        let h = holder(a);
        (!h.is_empty()).then_some(h)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gateway_pid(a, &active)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(WAIT, "the lease to move", || {
        let h = holder(a);
        (!h.is_empty() && h != active).then_some(())
    });
    // The failover ends when the killed gateway is back as a standby. kill
    // -9 leaves a vxlan cable's kernel device, table and rule on its node,
    // which steer that node's own traffic into the dead cable until the
    // restarted gateway removes them (before it reports itself passive);
    // the moment they go can cost that node a packet, so the five-of-five
    // pings below are counted after it.
    wait_for(WAIT, "the killed gateway back as a standby", || {
        let status = a
            .kubectl(&[
                "-n",
                "ferry-system",
                "get",
                "gateway",
                &active,
                "-o",
                "jsonpath={.status.haStatus}",
            ])
            .ok()?;
        (status.trim() == "passive").then_some(())
    });
    for (k, source) in sources.iter().enumerate() {
        let ns = a.node_netns(k).unwrap();
        let what = format!("{driver}: {} (host) after the failover", a.node(k));
        pings(&ns, &nginx[1], &what);
        assert_eq!(seen_by(&ns, &url), source.to_string(), "{what}");
    }
}

#[test]
fn node_host_network_survives_gateway_failover_over_wireguard() {
    host_traffic_after_failover("wireguard", "e14fw");
}

#[test]
fn node_host_network_survives_gateway_failover_over_vxlan() {
    host_traffic_after_failover("vxlan", "e14fv");
}

/// `dig @<ferry-dns pod IP>` (port 53, UDP and TCP) from a pod and a node
/// shell answers the exported service's name.
#[test]
fn dig_at_the_ferry_dns_pod_ip_on_port_53() {
    if !usable() {
        return;
    }
    let cs = Clusterset::new(
        &tag("e14d"),
        &[2, 2],
        &[&[0], &[0]],
        "vxlan",
        Broker::FirstCluster,
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    // A cluster imports a service into a namespace it has.
    a.apply(NAMESPACE).unwrap();
    b.apply(NGINX).unwrap();
    b.apply(EXPORT).unwrap();
    let cip = b.service_ip("nginx-test", "nginx").unwrap();
    // As the seed finds it: the DNS pod's own IP, inside the pod CIDR.
    let dns_ip = ferry_e2e::ferry_dns_pod_ip(a);
    let plan = a.plan().unwrap();
    assert!(plan.pod_cidr.contains(dns_ip), "ferry-dns runs at {dns_ip}");
    let client = a.pod("digger", 1).unwrap();
    let name = "nginx.nginx-test.svc.clusterset.local";
    let at = format!("@{dns_ip}");
    for (ns, who) in [
        (client.netns.clone(), "a pod"),
        (a.node_netns(1).unwrap(), "a node shell"),
    ] {
        for transport in ["+notcp", "+tcp"] {
            let what = format!("dig {transport} +short {name} {at} -p 53 from {who}");
            wait_for(WAIT, &what, || {
                let out = netns(
                    &ns,
                    &[
                        "dig", transport, "+short", "+time=1", "+tries=1", name, &at, "-p", "53",
                    ],
                );
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.lines().any(|l| l.trim() == cip).then_some(())
            });
        }
    }
}
