//! Root-only: `ferry dns` binds port 53 in a pod's network namespace as the
//! non-root user of its manifest (`ferry_deploy::dns_pod_spec`), through
//! either of the two ways the manifest offers — the pod's
//! `ip_unprivileged_port_start` sysctl, or `NET_BIND_SERVICE` where the
//! runtime grants it as an ambient capability — and answers `dig` there;
//! with neither, the same user is refused (so root is not what makes it
//! work).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_net::require_root;
use ferry_net::testing::Netns;
use serde_json::Value;

/// What the manifest asks for, read from the rendered pod spec.
struct Manifest {
    uid: String,
    listen: String,
    capabilities: Vec<String>,
    sysctls: Vec<(String, String)>,
}

fn manifest() -> Manifest {
    let pod = ferry_deploy::dns_pod_spec("ferry");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    Manifest {
        uid: c["securityContext"]["runAsUser"]
            .as_i64()
            .unwrap()
            .to_string(),
        listen: listen.to_string(),
        capabilities: strings(&c["securityContext"]["capabilities"]["add"]),
        sysctls: pod["securityContext"]["sysctls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["value"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    }
}

/// `ferry-dns` in `ns` as the manifest's user, with `ambient` capabilities
/// (`setpriv` names, e.g. `net_bind_service`) and a static, empty zone.
fn start_dns(ns: &Netns, m: &Manifest, ambient: &[String], zone: &std::path::Path) -> Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "setpriv", "--reuid", &m.uid])
        .args(["--regid", &m.uid, "--clear-groups"]);
    if !ambient.is_empty() {
        let caps: Vec<String> = ambient.iter().map(|c| format!("+{c}")).collect();
        let caps = caps.join(",");
        cmd.args(["--inh-caps", &caps, "--ambient-caps", &caps]);
    }
    // The manifest's binary (`ferry-dns`, the same flags as `ferry dns`).
    cmd.arg(env!("CARGO_BIN_EXE_ferry-dns"))
        .args(["--listen", &m.listen, "--metrics-listen", ""])
        .arg("--static-zone")
        .arg(zone)
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether `dig @127.0.0.1 -p PORT dns-version.clusterset.local TXT` in
/// `ns` gets an answer within 10 s (or the server exits first).
fn answers(ns: &Netns, port: &str, server: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &ns.name, "dig", "+short", "+time=1", "+tries=1",
            ])
            .args([
                "-p",
                port,
                "@127.0.0.1",
                "dns-version.clusterset.local",
                "TXT",
            ])
            .output()
            .unwrap();
        // An answer is the quoted version string; dig prints its errors
        // (";; connection refused …") on stdout too.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.lines().any(|l| l.starts_with('"')) {
            return true;
        }
        if server.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn stop(mut server: Child) {
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn dns_binds_port_53_as_its_non_root_user() {
    require_root!();
    let m = manifest();
    assert_ne!(m.uid, "0", "the manifest must not run ferry dns as root");
    let port = m.listen.rsplit(':').next().unwrap().to_string();
    assert_eq!(port, "53");
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("zone.json");
    std::fs::write(&zone, "{}").unwrap();
    // The non-root user must be able to read it.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status()
        .unwrap();
    let ambient: Vec<String> = m.capabilities.iter().map(|c| c.to_lowercase()).collect();
    assert_eq!(ambient, ["net_bind_service"]);

    let cases: [(&str, bool, &[String], bool); 3] = [
        ("the pod's sysctls, no capability", true, &[], true),
        ("the manifest's capability, ambient", false, &ambient, true),
        ("neither", false, &[], false),
    ];
    for (name, sysctls, caps, binds) in cases {
        let ns = Netns::new("dns").unwrap();
        ferry_net::ip(ns.ns(), &["link", "set", "lo", "up"]).unwrap();
        if sysctls {
            for (key, value) in &m.sysctls {
                ferry_net::sysctl_set(ns.ns(), key, value).unwrap();
            }
        }
        let mut server = start_dns(&ns, &m, caps, &zone);
        let answered = answers(&ns, &port, &mut server);
        stop(server);
        assert_eq!(answered, binds, "{name}");
    }
}
