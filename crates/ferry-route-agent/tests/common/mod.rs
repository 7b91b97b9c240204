#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! A small lab for the root-only tests: three "nodes" of one cluster on a
//! bridge (inside a switch namespace, never the host's), a pod behind node
//! n1, and a "remote cluster" namespace on the same underlay holding the
//! remote pod address. Whichever node is the active gateway carries the
//! "cable" route to the remote (table 7101, rule 7099), as `ferry gateway`
//! would. Addresses: underlay 198.18.252.0/24, local pods 100.64.0.0/16,
//! remote 100.127.0.0/16. Everything is deleted on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};

use ferry_api::{CableDriver, ClusterSpec, EndpointSpec};
use ferry_net::testing::Netns;
use ferry_net::{GATEWAY_RULE_PRIORITY, GATEWAY_TABLE, Route, ip, netns_exec, nft_apply};

pub const NODE_IPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 18, 252, 1),
    Ipv4Addr::new(198, 18, 252, 2),
    Ipv4Addr::new(198, 18, 252, 3),
];
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 252, 9);
/// The "remote pod".
pub const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(100, 127, 1, 1);
/// The pod behind n1.
pub const POD: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 2);
pub const POD_GW: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 1);

pub fn local_cluster() -> ClusterSpec {
    ClusterSpec {
        cluster_id: "c0".into(),
        cluster_cidrs: vec!["100.64.0.0/16".parse().unwrap()],
        service_cidrs: vec!["100.65.0.0/16".parse().unwrap()],
        global_cidrs: vec![],
        network_plugin: None,
    }
}

pub fn remote_cluster() -> ClusterSpec {
    ClusterSpec {
        cluster_id: "c1".into(),
        cluster_cidrs: vec!["100.127.1.0/24".parse().unwrap()],
        service_cidrs: vec!["100.127.2.0/24".parse().unwrap()],
        global_cidrs: vec![],
        network_plugin: None,
    }
}

pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// Node `i`'s podCIDR (n1's holds the pod).
pub fn node_pod_cidr(i: usize) -> ferry_api::Cidr {
    format!("100.64.{i}.0/24").parse().unwrap()
}

/// Node `i`'s host source address: the first of its podCIDR (on n1 the
/// pod's gateway, which its veth holds).
pub fn host_source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, i as u8, 1)
}

/// Cluster c0's Endpoint with node `gateway` as its gateway.
pub fn endpoint_spec(gateway: usize) -> EndpointSpec {
    EndpointSpec {
        cluster_id: "c0".into(),
        hostname: node_name(gateway),
        cable_driver: CableDriver::Wireguard,
        public_ip: None,
        private_ip: IpAddr::V4(NODE_IPS[gateway]),
        subnets: vec![],
        backend_config: Default::default(),
        health_check_ip: None,
    }
}

pub struct Lab {
    pub nodes: Vec<Netns>,
    pub remote: Netns,
    pub pod: Netns,
    // Dropped last: its bridge holds the other ends.
    pub switch: Netns,
}

fn ok(ns: &Netns, lines: &[&str]) {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    ferry_net::ip_batch(ns.ns(), &lines).unwrap();
}

fn sysctl(ns: &Netns, kv: &str) {
    netns_exec(ns.ns(), &["sysctl", "-qw", kv], None).unwrap();
}

impl Lab {
    pub fn new() -> Lab {
        let switch = Netns::new("sw").unwrap();
        ok(&switch, &["link add br0 type bridge", "link set br0 up"]);
        let mut nodes = Vec::new();
        for (i, node_ip) in NODE_IPS.iter().enumerate() {
            let ns = Netns::new(&format!("n{i}")).unwrap();
            attach(&switch, &ns, &format!("p{i}"), *node_ip);
            // Forwarding off (the route agent must turn it on where needed)
            // and strict reverse-path filtering, as on many distributions.
            sysctl(&ns, "net.ipv4.ip_forward=0");
            sysctl(&ns, "net.ipv4.conf.all.rp_filter=1");
            nodes.push(ns);
        }
        // n1 is a worker: it forwards its pod's traffic. Every node routes
        // the other nodes' pod CIDRs to them (what a CNI does); a gateway's
        // loose rp_filter needs that route back to a node's host source.
        sysctl(&nodes[1], "net.ipv4.ip_forward=1");
        for (i, node) in nodes.iter().enumerate() {
            for (j, via) in NODE_IPS.iter().enumerate().filter(|(j, _)| *j != i) {
                ok(
                    node,
                    &[&format!("route add {} via {via}", node_pod_cidr(j))],
                );
            }
        }

        let remote = Netns::new("rm").unwrap();
        attach(&switch, &remote, "p9", REMOTE_IP);
        ok(&remote, &[&format!("addr add {REMOTE_POD}/32 dev lo")]);
        // Replies to a node's pod CIDR (its pods, its host source address)
        // go straight to that node.
        for (i, node_ip) in NODE_IPS.iter().enumerate() {
            ok(
                &remote,
                &[&format!("route add {} via {node_ip}", node_pod_cidr(i))],
            );
        }

        let pod = Netns::new("pd").unwrap();
        ip(
            nodes[1].ns(),
            &[
                "link", "add", "vp1", "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
            ],
        )
        .unwrap();
        ok(
            &nodes[1],
            &[
                &format!("addr add {POD_GW}/32 dev vp1"),
                "link set vp1 up",
                &format!("route add {POD}/32 dev vp1 src {POD_GW}"),
            ],
        );
        ok(
            &pod,
            &[
                &format!("addr add {POD}/32 dev eth0"),
                "link set eth0 up",
                &format!("route add {POD_GW}/32 dev eth0"),
                &format!("route add 100.127.0.0/16 via {POD_GW} src {POD}"),
            ],
        );
        // A CNI-style masquerade for pod traffic leaving the pod network:
        // the route agent must keep cross-cluster traffic out of it.
        nft_apply(
            nodes[1].ns(),
            "table ip cni {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  ip saddr 100.64.0.0/16 ip daddr != 100.64.0.0/16 masquerade\n }\n}\n",
        )
        .unwrap();
        // Count what reaches the remote, by source: the pod and each
        // node's host source address.
        let mut rules = format!("  ip saddr {POD} counter\n");
        for i in 0..NODE_IPS.len() {
            rules.push_str(&format!("  ip saddr {} counter\n", host_source(i)));
        }
        nft_apply(
            remote.ns(),
            &format!(
                "table ip count {{\n chain in {{\n  type filter hook input priority 0; policy accept;\n{rules} }}\n}}\n"
            ),
        )
        .unwrap();
        Lab {
            nodes,
            remote,
            pod,
            switch,
        }
    }

    pub fn node(&self, i: usize) -> Option<&str> {
        self.nodes[i].ns()
    }

    /// Packets the remote received from the pod's own address.
    pub fn remote_saw_pod(&self) -> u64 {
        self.remote_saw(POD)
    }

    /// Packets the remote received from `src` (the pod or a node's host
    /// source address).
    pub fn remote_saw(&self, src: Ipv4Addr) -> u64 {
        let out =
            ferry_net::nft(self.remote.ns(), &["list", "chain", "ip", "count", "in"]).unwrap();
        let line = out
            .lines()
            .find(|l| l.contains(&format!("ip saddr {src} ")))
            .unwrap_or_else(|| panic!("no counter for {src}:\n{out}"));
        let after = line.split("packets ").nth(1).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Makes node `i` carry the "cable": remote CIDRs to the remote
    /// namespace in the gateway's table, as `ferry gateway` would.
    pub fn cable_up(&self, i: usize) {
        let route = Route {
            via: Some(IpAddr::V4(REMOTE_IP)),
            dev: Some("eth0".into()),
            ..Route::to("100.127.0.0/16".parse().unwrap())
        };
        ferry_net::replace_route(self.node(i), GATEWAY_TABLE, &route).unwrap();
        ferry_net::ensure_rule(self.node(i), GATEWAY_RULE_PRIORITY, GATEWAY_TABLE).unwrap();
    }

    pub fn cable_down(&self, i: usize) {
        ferry_net::flush_table(self.node(i), GATEWAY_TABLE).unwrap();
        ferry_net::delete_rule(self.node(i), GATEWAY_RULE_PRIORITY).unwrap();
    }
}

fn attach(switch: &Netns, ns: &Netns, port: &str, addr: Ipv4Addr) {
    ip(
        switch.ns(),
        &[
            "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ],
    )
    .unwrap();
    ok(switch, &[&format!("link set {port} master br0 up")]);
    ok(
        ns,
        &[&format!("addr add {addr}/24 dev eth0"), "link set eth0 up"],
    );
}

pub fn ping(ns: Option<&str>, dst: Ipv4Addr) -> bool {
    netns_exec(
        ns,
        &["ping", "-c", "1", "-W", "1", "-q", &dst.to_string()],
        None,
    )
    .is_ok()
}

pub fn counter(ns: Option<&str>, dev: &str, which: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{which}");
    netns_exec(ns, &["cat", &path], None)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A one-shot TCP server in the remote namespace on REMOTE_POD:8080 that
/// prints the MSS of the connection it accepts.
pub fn mss_server(lab: &Lab) -> Child {
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{REMOTE_POD}', 8080))\n\
         s.listen(1)\n\
         print('listening', flush=True)\n\
         c, _ = s.accept()\n\
         print(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), flush=True)\n\
         c.close()\n"
    );
    Command::new("ip")
        .args(["netns", "exec", &lab.remote.name, "python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Connects from the pod to the MSS server.
pub fn tcp_connect_from_pod(lab: &Lab) -> bool {
    let script = format!(
        "import socket\n\
         c = socket.create_connection(('{REMOTE_POD}', 8080), timeout=2)\n\
         c.close()\n"
    );
    netns_exec(lab.pod.ns(), &["python3", "-c", &script], None).is_ok()
}
