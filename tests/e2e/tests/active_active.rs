//! Active-active gateways (issue #19): two clusters joined with
//! `--gateway-mode active-active`, two gateway nodes each. UDP flows from
//! a pod in one cluster to a pod in the other spread over both gateways of
//! each side (every flow's burst moves exactly one gateway's cable counters
//! each way, and both gateways get flows); gateway 0 of the first cluster
//! is killed (-9) under the flows and kept dead (every restart the sandbox
//! makes is killed too) for the rest of the run: the flows that ran through
//! neither it nor its partner keep their echoes, and the others resume
//! through gateway 1 within [`RESUME_BUDGET`] — the surviving gateway's
//! peer probes find gateway 0 gone and withdraw its Endpoint, so the route
//! agents and the other cluster stop sending through it. Without that they
//! would stall until gateway 0 is back (the whole run). Then gateway 0 may
//! restart and every flow is echoed again. With the wireguard cable and
//! with the vxlan cable. Before the kill, `ferry show gateways` must show both
//! gateways' shares. With wireguard, last: an Endpoint for node 2, where no
//! gateway runs (a gateway that published and died before anyone heard
//! it), is withdrawn by the live gateways after the never-answered grace.
//! Root only (skipped otherwise); the test builds and deletes its own clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferry_e2e::{Broker, Cluster, Clusterset, Extra, flows, gateway_pid, netns, usable, wait_for};
use ferry_sandbox::harness;

/// Enough flows that both gateways carry some and some avoid gateway 0
/// in both directions (each does with probability 1/4).
const FLOWS: usize = 32;

/// A burst: datagrams of [`BURST_SIZE`] bytes (fits the socket buffers).
const BURST: usize = 40;
const BURST_SIZE: usize = 1000;
/// Cable bytes that show a gateway carried a burst (half of it; health
/// checks add a few hundred bytes a second).
const CARRIED: u64 = (BURST * BURST_SIZE / 2) as u64;

/// How long the flows run, and when gateway 0 is killed into it.
const RUN: Duration = Duration::from_secs(14);
const KILL_AT: Duration = Duration::from_secs(2);

/// How long gateway 0's flows may stall after the kill: generous for a
/// loaded box (measured well under a second), and far below the
/// `RUN − KILL_AT` they stall while gateway 0 is kept dead without the
/// peer probes' withdrawal.
const RESUME_BUDGET: Duration = Duration::from_secs(6);

fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id() % 10_000)
}

/// Bytes sent into and received from the cable device of node `k`
/// (`ferry-wg`'s or `ferry-vxc`'s counters; zero while it is not there).
fn cable_bytes(c: &Cluster, dev: &str, k: usize) -> (u64, u64) {
    let ns = c.node_netns(k).unwrap();
    let out = netns(&ns, &["ip", "-j", "-s", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let stats = &v[0]["stats64"];
    (
        stats["tx"]["bytes"].as_u64().unwrap_or(0),
        stats["rx"]["bytes"].as_u64().unwrap_or(0),
    )
}

/// Node `k`'s route agent table and multipath hash policy, for failures.
fn routes(c: &Cluster, k: usize) -> String {
    let ns = c.node_netns(k).unwrap();
    let table = netns(&ns, &["ip", "route", "show", "table", "7100"]);
    let policy = netns(&ns, &["sysctl", "net.ipv4.fib_multipath_hash_policy"]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&table.stdout),
        String::from_utf8_lossy(&policy.stdout)
    )
}

/// Waits until `want` gateways of `c` report `remote` connected.
fn wait_gateways_connected(c: &Cluster, remote: &str, want: usize) {
    wait_for(
        Duration::from_secs(120),
        &format!("{want} gateways of {} connected to {remote}", c.name),
        || {
            let out = c
                .kubectl(&["-n", "ferry-system", "get", "gateways", "-o", "json"])
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            let connected = v["items"]
                .as_array()?
                .iter()
                .filter(|g| {
                    g["status"]["connections"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|x| x["clusterId"] == remote && x["status"] == "connected")
                    })
                })
                .count();
            (connected >= want).then_some(())
        },
    );
}

/// Which gateway of `a` carries `flow` each way: (out through gateway 0,
/// back through gateway 0), from one burst's cable counters. Exactly one
/// gateway must carry each direction.
fn path_of(a: &Cluster, dev: &str, flow: &flows::Flow) -> (bool, bool) {
    wait_for(
        Duration::from_secs(30),
        &format!("a burst on flow {} to be echoed", flow.port()),
        || {
            let before = [cable_bytes(a, dev, 0), cable_bytes(a, dev, 1)];
            let got = flow.burst(BURST, BURST_SIZE, Duration::from_secs(3));
            let after = [cable_bytes(a, dev, 0), cable_bytes(a, dev, 1)];
            if got < BURST / 2 {
                return None;
            }
            let out: Vec<bool> = (0..2)
                .map(|k| after[k].0.saturating_sub(before[k].0) >= CARRIED)
                .collect();
            let back: Vec<bool> = (0..2)
                .map(|k| after[k].1.saturating_sub(before[k].1) >= CARRIED)
                .collect();
            assert!(
                out[0] != out[1] && back[0] != back[1],
                "flow {}: one gateway should carry each direction: out {out:?}, back {back:?} \
                 (cable bytes before {before:?}, after {after:?})",
                flow.port()
            );
            Some((out[0], back[0]))
        },
    )
}

/// `ferry show gateways -o json` of `a` shows a share for both gateways,
/// and each one's cable bytes include what the bursts of [`path_of`] put
/// through it (so the figures count the data, not only health checks).
/// The gateways sample their cable at their 30 s status refresh.
fn shares_are_shown(a: &Cluster, paths: &[(bool, bool)]) {
    let carried = |k: usize| -> u64 {
        let through = |via0: bool| via0 == (k == 0);
        paths
            .iter()
            .map(|&(out0, back0)| u64::from(through(out0)) + u64::from(through(back0)))
            .sum::<u64>()
            * CARRIED
    };
    let kubeconfig = a.kubeconfig.to_string_lossy().to_string();
    let mut last = String::new();
    let shown = harness::wait_for(
        "both gateways' shares in `ferry show gateways`",
        Duration::from_secs(150),
        Duration::from_secs(1),
        || {
            last = a
                .ferry(&[
                    "show",
                    "gateways",
                    "-o",
                    "json",
                    "--kubeconfig",
                    &kubeconfig,
                ])
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&last).ok()?;
            let rows = v["clusters"][0]["gateways"].as_array()?.clone();
            (0..2)
                .all(|k| {
                    rows.iter().any(|r| {
                        let t = &r["traffic"];
                        let bytes =
                            t["txBytes"].as_u64().unwrap_or(0) + t["rxBytes"].as_u64().unwrap_or(0);
                        r["node"] == a.node(k).as_str()
                            && r["sharePercent"].as_f64().is_some_and(|p| p > 0.0)
                            && bytes >= carried(k)
                    })
                })
                .then_some(())
        },
    );
    assert!(
        shown.is_ok(),
        "both gateways should show a share and at least the bytes their flows carried \
         ({} and {} bytes): {last}",
        carried(0),
        carried(1)
    );
    let table = a
        .ferry(&["show", "gateways", "--kubeconfig", &kubeconfig])
        .unwrap();
    eprintln!("{table}");
}

#[test]
fn active_active_wireguard_gateways_share_flows_and_a_killed_ones_flows_move_to_the_other() {
    share_and_kill("wireguard", "ferry-wg", "e19a");
}

/// The same with the vxlan cable: its kernel device outlives the killed
/// process (until a restart cleans it up), so only the path check after
/// the run tells that gateway 0's flows moved.
#[test]
fn active_active_vxlan_gateways_share_flows_and_a_killed_ones_flows_move_to_the_other() {
    share_and_kill("vxlan", "ferry-vxc", "e19v");
}

fn share_and_kill(driver: &str, dev: &str, t: &str) {
    if !usable() {
        return;
    }
    let aa: &[&str] = &["--gateway-mode=active-active"];
    let cs = Clusterset::with_options(
        &tag(t),
        &[3, 3],
        &[&[0], &[0]],
        driver,
        Broker::FirstCluster,
        Extra {
            join_args: &[aa, aa],
            ..Extra::default()
        },
    );
    let (a, b) = (&cs.clusters[0], &cs.clusters[1]);
    for c in [a, b] {
        c.kubectl(&["label", "node", &c.node(1), "ferry.dev/gateway=true"])
            .unwrap();
    }
    wait_gateways_connected(a, &b.name, 2);
    wait_gateways_connected(b, &a.name, 2);

    let client = a.pod("client", 2).unwrap();
    let server = b.pod("server", 2).unwrap();
    let echo = flows::Echo::start(&server.netns, server.ip);
    let flows = flows::open(&client.netns, client.ip, echo.addr, FLOWS);
    // The route agents may still be adding the second gateway's next hop.
    wait_for(
        Duration::from_secs(60),
        "every flow echoed through both clusters' gateways",
        || {
            flows
                .iter()
                .all(|f| f.burst(5, 64, Duration::from_secs(1)) >= 3)
                .then_some(())
        },
    );
    let paths: Vec<(bool, bool)> = flows.iter().map(|f| path_of(a, dev, f)).collect();
    let out0 = paths.iter().filter(|p| p.0).count();
    let back0 = paths.iter().filter(|p| p.1).count();
    eprintln!(
        "{FLOWS} flows: out through gateway 0 of {}: {out0}, back through it: {back0}",
        a.name
    );
    assert!(
        (1..FLOWS).contains(&out0) && (1..FLOWS).contains(&back0),
        "both gateways should carry flows each way: out through gateway 0 {out0}, back {back0} of {FLOWS}\n\
         {}'s routes: {}\n{}",
        a.node(2),
        routes(a, 2),
        a.gateway_report(40)
    );
    let spared: Vec<bool> = paths.iter().map(|&(o, b)| !o && !b).collect();
    assert!(
        spared.contains(&true),
        "no flow avoided gateway 0 both ways: {paths:?}"
    );

    shares_are_shown(a, &paths);

    let pid = gateway_pid(a, &a.node(0));
    let keeper = KeepDead::new(&a.node_netns(0).unwrap());
    let results = flows::run(&flows, Duration::from_millis(20), RUN, || {
        // The flows run before the kill.
        std::thread::sleep(KILL_AT);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        keeper.start();
    });
    for (r, spared) in results.iter().zip(&spared) {
        eprintln!(
            "flow {}: {} echoes, longest gap {:?}{}",
            r.port,
            r.replies,
            r.gap,
            if *spared { "" } else { " (through gateway 0)" }
        );
    }
    for (r, _) in results.iter().zip(&spared).filter(|(_, s)| **s) {
        assert!(
            r.gap < Duration::from_millis(1500) && r.replies > 100,
            "flow {} avoided the killed gateway but stalled: {} echoes, gap {:?}\n{}",
            r.port,
            r.replies,
            r.gap,
            a.gateway_report(40)
        );
    }
    for (r, _) in results.iter().zip(&spared).filter(|(_, s)| !**s) {
        assert!(
            r.gap < RESUME_BUDGET,
            "flow {} ran through the killed gateway and did not resume within {RESUME_BUDGET:?}: \
             {} echoes, gap {:?}\n{}\n{}'s routes: {}",
            r.port,
            r.replies,
            r.gap,
            a.gateway_report(40),
            a.node(2),
            routes(a, 2),
        );
    }
    let worst = results
        .iter()
        .zip(&spared)
        .filter(|(_, s)| !**s)
        .map(|(r, _)| r.gap)
        .max();
    eprintln!("longest gap of gateway 0's flows: {worst:?} (budget {RESUME_BUDGET:?})");
    // Gateway 0 is still kept dead: every flow now runs through gateway 1
    // both ways.
    for f in &flows {
        assert_eq!(
            path_of(a, dev, f),
            (false, false),
            "flow {} still runs through the dead gateway 0\n{}",
            f.port(),
            a.gateway_report(40)
        );
    }
    eprintln!("gateway 0 was killed {} times", keeper.stop());
    // The killed gateway is restarted and takes its flows back.
    wait_for(
        Duration::from_secs(120),
        "the killed gateway's flows to come back",
        || {
            flows
                .iter()
                .all(|f| f.burst(5, 64, Duration::from_secs(1)) >= 3)
                .then_some(())
        },
    );
    drop(echo);
    if driver == "wireguard" {
        a_gateway_never_heard_is_withdrawn(a);
    }
}

/// Every Endpoint stored in `c` (name → object).
fn all_endpoints(c: &Cluster) -> serde_json::Map<String, serde_json::Value> {
    let out = c
        .kubectl(&[
            "-n",
            "ferry-system",
            "get",
            "endpoints.ferry.dev",
            "-o",
            "json",
        ])
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["metadata"]["name"].as_str().unwrap().to_string(),
                e.clone(),
            )
        })
        .collect()
}

/// The Endpoints of cluster `id` stored in `c` (name → object).
fn endpoints_of(c: &Cluster, id: &str) -> serde_json::Map<String, serde_json::Value> {
    all_endpoints(c)
        .into_iter()
        .filter(|(_, e)| e["spec"]["clusterId"] == id)
        .collect()
}

/// Publishes an Endpoint for node 2 (no gateway runs there: as if one had
/// published and been killed before any peer heard it) and waits for the
/// live gateways to withdraw it — not before most of the grace has
/// passed, and leaving theirs alone.
fn a_gateway_never_heard_is_withdrawn(a: &Cluster) {
    let gw1 = all_endpoints(a)
        .into_values()
        .find(|e| e["spec"]["hostname"] == a.node(1).as_str())
        .unwrap_or_else(|| panic!("no Endpoint of {}", a.node(1)));
    let id = gw1["spec"]["clusterId"].as_str().unwrap().to_string();
    let name1 = gw1["metadata"]["name"].as_str().unwrap().to_string();
    let own_endpoints = |c: &Cluster| endpoints_of(c, &id);
    let real = own_endpoints(a);
    let fake_name = name1.replace(&a.node(1), &a.node(2));
    let mut fake = serde_json::json!({
        "apiVersion": gw1["apiVersion"],
        "kind": "Endpoint",
        "metadata": {
            "name": fake_name,
            "namespace": "ferry-system",
            "labels": gw1["metadata"]["labels"],
        },
        "spec": gw1["spec"],
    });
    let plan = a.plan().unwrap();
    let moved = [
        (plan.node_ip(1).to_string(), plan.node_ip(2).to_string()),
        (
            plan.node_wan_ip(1).to_string(),
            plan.node_wan_ip(2).to_string(),
        ),
    ];
    let spec = fake["spec"].as_object_mut().unwrap();
    spec.insert("hostname".into(), a.node(2).into());
    spec.remove("healthCheckIp");
    for v in spec.values_mut() {
        if let Some((_, to)) = moved.iter().find(|(from, _)| v.as_str() == Some(from)) {
            *v = to.clone().into();
        }
    }
    let backend = spec["backendConfig"].as_object_mut().unwrap();
    backend.remove("gatewaySlot");
    // Its own WireGuard key (bytes 1..=32), not gateway 1's.
    backend.insert(
        "publicKey".into(),
        "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".into(),
    );
    a.apply(&fake.to_string()).unwrap();
    let published = std::time::Instant::now();
    assert!(
        own_endpoints(a).contains_key(&fake_name),
        "the fake Endpoint was not stored"
    );
    wait_for(
        Duration::from_secs(60),
        "the never-answering gateway's Endpoint to be withdrawn",
        || (!own_endpoints(a).contains_key(&fake_name)).then_some(()),
    );
    let took = published.elapsed();
    eprintln!("Endpoint of a gateway never heard withdrawn after {took:?}");
    assert!(
        took >= Duration::from_secs(5),
        "withdrawn after {took:?}: sooner than the never-answered grace (10 s) allows\n{}",
        a.gateway_report(40)
    );
    for name in real.keys() {
        assert!(
            own_endpoints(a).contains_key(name),
            "a live gateway's Endpoint {name} went too\n{}",
            a.gateway_report(40)
        );
    }
}

/// Keeps the ferry gateway of one node dead: once started, a thread kills
/// every gateway process the sandbox restarts in that node's network
/// namespace (found through /proc, cheap enough to poll) until stopped.
struct KeepDead {
    netns_inode: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::cell::RefCell<Option<std::thread::JoinHandle<usize>>>,
}

impl KeepDead {
    fn new(netns: &str) -> Self {
        use std::os::unix::fs::MetadataExt;
        let netns_inode = std::fs::metadata(format!("/run/netns/{netns}"))
            .unwrap()
            .ino();
        Self {
            netns_inode,
            stop: Default::default(),
            thread: Default::default(),
        }
    }

    fn start(&self) {
        let (inode, stop) = (self.netns_inode, self.stop.clone());
        *self.thread.borrow_mut() = Some(std::thread::spawn(move || {
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for pid in gateway_pids_in(inode) {
                    let pid = nix::unistd::Pid::from_raw(pid);
                    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                        kills += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            kills
        }));
    }

    /// Stops killing; how many restarts it killed.
    fn stop(&self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .borrow_mut()
            .take()
            .map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for KeepDead {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The ferry gateway processes (`ferry gateway` or `ferry-gateway`) in the
/// network namespace with inode `netns_inode`.
fn gateway_pids_in(netns_inode: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let argv: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let base = |a: &[u8]| a.rsplit(|b| *b == b'/').next().unwrap_or(a).to_vec();
            let is_gateway = match argv.as_slice() {
                [first, ..] if base(first) == b"ferry-gateway" => true,
                [first, second, ..] => base(first) == b"ferry" && *second == b"gateway",
                _ => false,
            };
            is_gateway
                && std::fs::read_link(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|l| l.to_string_lossy() == format!("net:[{netns_inode}]"))
        })
        .collect()
}
