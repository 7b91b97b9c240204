//! Interoperability with strongSwan: a ferry-ipsec device in one network namespace and
//! strongSwan's `charon` with its user-space `kernel-libipsec` ESP in another, on a
//! veth. Each test establishes IKE and child SAs (ferry as initiator or responder),
//! carries ping and TCP (iperf3) both ways, and lives through rekeys forced by short
//! lifetimes without losing a ping.
//!
//! Needs root and strongSwan (`scripts/setup.sh` installs it). Without root the tests
//! skip; without strongSwan they skip too, unless `FERRY_REQUIRE_STRONGSWAN=1`
//! (`scripts/test.sh` sets it), when they fail.
//!
//! Addresses: underlay 198.18.<n>.0/24, tunnel subnets 100.64.<n>.0/24 (ferry) and
//! 100.65.<n>.0/24 (strongSwan). No namespace has a default route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferry_ipsec::{
    Device, DeviceConfig, Identity, PeerConfig, Psk, Status, Timers, TrafficSelector,
};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CHARON: &str = "/usr/lib/ipsec/charon";
const SWANCTL: &str = "/usr/sbin/swanctl";
const PSK: &str = "ferry-interop-test-preshared-key-0123456789";

static SUBNET: AtomicU32 = AtomicU32::new(0);

/// Root and strongSwan present; otherwise skip (or fail when required).
fn ready() -> bool {
    if !ferry_net::testing::is_root() || !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: needs root and /dev/net/tun");
        return false;
    }
    ferry_net::testing::sweep();
    if Path::new(CHARON).exists() && Path::new(SWANCTL).exists() {
        return true;
    }
    let required = std::env::var("FERRY_REQUIRE_STRONGSWAN").as_deref() == Ok("1");
    assert!(
        !required,
        "strongSwan ({CHARON}, {SWANCTL}) is missing: run scripts/setup.sh"
    );
    eprintln!("skipped: strongSwan is missing (scripts/setup.sh installs it)");
    false
}

fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Ns(ferry_net::testing::Netns);

impl Ns {
    fn new(role: &str) -> Self {
        Self(ferry_net::testing::Netns::new(role).unwrap())
    }
    fn name(&self) -> &str {
        &self.0.name
    }
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name(), prog]);
        c
    }
    fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(self.name()).args(args));
    }
    /// Run `f` on a thread inside this namespace (threads it starts stay there).
    fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name());
        std::thread::spawn(move || {
            let f_ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(f_ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
    /// `count` pings 0.2 s apart; the number of replies.
    fn pings(&self, src: &str, dst: &str, count: u32) -> u32 {
        let out = self
            .cmd("ping")
            .args([
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                "-I",
                src,
                dst,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" received")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
    /// Ping until a reply comes back or `deadline` passes.
    fn ping_until(&self, src: &str, dst: &str, deadline: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < deadline {
            if self.pings(src, dst, 1) == 1 {
                return true;
            }
        }
        false
    }
}

/// The two namespaces, their veth, and the tunnel subnets.
struct Net {
    ferry: Ns,
    swan: Ns,
    n: u32,
}

impl Net {
    fn new() -> Self {
        let ferry = Ns::new("fi");
        let swan = Ns::new("si");
        let n = 200 + SUBNET.fetch_add(1, Ordering::Relaxed) % 50;
        let t = ferry_net::testing::tag();
        let (va, vb) = (format!("fia{t}"), format!("fib{t}"));
        run_ok(Command::new("ip").args([
            "link",
            "add",
            &va,
            "netns",
            ferry.name(),
            "type",
            "veth",
            "peer",
            "name",
            &vb,
            "netns",
            swan.name(),
        ]));
        ferry.ip(&["addr", "add", &format!("198.18.{n}.1/24"), "dev", &va]);
        swan.ip(&["addr", "add", &format!("198.18.{n}.2/24"), "dev", &vb]);
        ferry.ip(&["link", "set", &va, "up"]);
        swan.ip(&["link", "set", &vb, "up"]);
        // strongSwan's side of the tunnel: an address inside its subnet.
        swan.ip(&["addr", "add", &format!("100.65.{n}.1/32"), "dev", "lo"]);
        Self { ferry, swan, n }
    }
    fn ferry_ip(&self) -> String {
        format!("198.18.{}.1", self.n)
    }
    fn swan_ip(&self) -> String {
        format!("198.18.{}.2", self.n)
    }
    fn ferry_inner(&self) -> String {
        format!("100.64.{}.1", self.n)
    }
    fn swan_inner(&self) -> String {
        format!("100.65.{}.1", self.n)
    }
}

/// What differs between tests.
struct Case {
    ike: &'static str,
    esp: &'static str,
    ferry_initiates: bool,
    /// Lifetimes of the side that should rekey (the other keeps long ones).
    ferry_rekeys: bool,
    psk_on_swan: &'static str,
}

/// A charon with kernel-libipsec in `ns`, killed on drop.
struct Charon {
    child: Child,
    dir: tempfile::TempDir,
    ns: String,
}

impl Charon {
    fn start(net: &Net, case: &Case) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let conf = format!(
            "charon {{
  load = random nonce kdf aes sha1 sha2 hmac gcm x509 pubkey pem pkcs1 openssl kernel-libipsec kernel-netlink socket-default vici updown
  retransmit_timeout = 1
  retransmit_tries = 3
  plugins {{
    vici {{
      socket = unix://{d}/charon.vici
    }}
    kernel-libipsec {{
      allow_peer_ts = yes
    }}
  }}
  filelog {{
    log {{
      path = {d}/charon.log
      flush_line = yes
      default = 1
      ike = 2
      cfg = 2
      esp = 2
    }}
  }}
}}
"
        );
        std::fs::write(dir.path().join("strongswan.conf"), conf).unwrap();
        let (ike_rekey, child_rekey) = if case.ferry_rekeys {
            ("1h", "1h")
        } else {
            ("24s", "10s")
        };
        let start = if case.ferry_initiates {
            "none"
        } else {
            "start"
        };
        // Whoever starts the tunnel starts it again when the peer was lost.
        let dpd_action = if case.ferry_initiates {
            "clear"
        } else {
            "restart"
        };
        let swanctl = format!(
            "connections {{
  c {{
    version = 2
    local_addrs = {sip}
    remote_addrs = {fip}
    local_port = 4500
    remote_port = 4500
    encap = yes
    proposals = {ike}
    rekey_time = {ike_rekey}
    dpd_delay = 5s
    local {{
      auth = psk
      id = {sip}
    }}
    remote {{
      auth = psk
      id = {fip}
    }}
    children {{
      net {{
        local_ts = 100.65.{n}.0/24
        remote_ts = 100.64.{n}.0/24
        esp_proposals = {esp}
        rekey_time = {child_rekey}
        start_action = {start}
        dpd_action = {dpd_action}
      }}
    }}
  }}
}}
secrets {{
  ike-1 {{
    id-a = {sip}
    id-b = {fip}
    secret = \"{psk}\"
  }}
}}
",
            sip = net.swan_ip(),
            fip = net.ferry_ip(),
            n = net.n,
            ike = case.ike,
            esp = case.esp,
            psk = case.psk_on_swan,
            dpd_action = dpd_action,
        );
        std::fs::write(dir.path().join("swanctl.conf"), swanctl).unwrap();
        // charon's pid file is fixed at /var/run/charon.pid: each gets its own /run,
        // so tests (and the system's charon) do not collide.
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let child = net
            .swan
            .cmd("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /run && exec {CHARON}",
                run.display()
            ))
            .env("STRONGSWAN_CONF", dir.path().join("strongswan.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = Self {
            child,
            ns: net.swan.name().to_string(),
            dir,
        };
        let vici = me.dir.path().join("charon.vici");
        let t = Instant::now();
        while !vici.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "charon did not start:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        run_ok(
            net.swan
                .cmd(SWANCTL)
                .env("STRONGSWAN_CONF", me.dir.path().join("strongswan.conf"))
                .args(["--load-all", "--file"])
                .arg(me.dir.path().join("swanctl.conf"))
                .arg("--uri")
                .arg(format!("unix://{}", vici.display())),
        );
        me
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("charon.log")).unwrap_or_default()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.ns;
    }
}

fn ferry_device(net: &Net, case: &Case) -> Device {
    let sock = |ip: String| SocketAddr::new(ip.parse().unwrap(), 4500);
    let ts = |s: String| TrafficSelector::subnet(s.parse::<IpAddr>().unwrap(), 24).unwrap();
    let mut timers = Timers {
        dpd: Duration::from_secs(10),
        retransmit_base: Duration::from_secs(1),
        retransmit_tries: 3,
        retry: Duration::from_secs(2),
        ..Timers::default()
    };
    if case.ferry_rekeys {
        timers.ike_rekey = Duration::from_secs(24);
        timers.child_rekey = Duration::from_secs(10);
    }
    let peer = PeerConfig {
        psk: Psk::new(PSK.as_bytes().to_vec()),
        local_id: Identity::ip(net.ferry_ip().parse().unwrap()),
        remote_id: Identity::ip(net.swan_ip().parse().unwrap()),
        local_addr: sock(net.ferry_ip()),
        remote_addr: sock(net.swan_ip()),
        ike_suites: vec![case.ike.parse().unwrap()],
        esp_suites: vec![case.esp.parse().unwrap()],
        local_ts: vec![ts(format!("100.64.{}.0", net.n))],
        remote_ts: vec![ts(format!("100.65.{}.0", net.n))],
        initiate: case.ferry_initiates,
        force_encap: true,
        timers,
    };
    let cfg = DeviceConfig {
        name: format!("fips{}", net.n),
        mtu: ferry_ipsec::DEFAULT_MTU,
        address: Some((net.ferry_inner().parse().unwrap(), 24)),
        port: 4500,
        peers: vec![peer],
    };
    let dev = net.ferry.enter(move || Device::start(cfg).unwrap());
    net.ferry.ip(&[
        "route",
        "add",
        &format!("100.65.{}.0/24", net.n),
        "dev",
        dev.name(),
    ]);
    dev
}

fn wait_established(dev: &Device, charon: &Charon) {
    let t = Instant::now();
    while dev.peers()[0].status != Status::Established {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no SA: {:?}\ncharon log:\n{}",
            dev.peers(),
            charon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// iperf3 through the tunnel from `client` to `server_ip` (-R: the other way).
fn tcp(server: &Ns, client: &Ns, server_ip: &str, reverse: bool) {
    let mut s = server
        .cmd("iperf3")
        .args(["-s", "-1", "-B", server_ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut c = client.cmd("iperf3");
    c.args(["-c", server_ip, "-n", "4M", "-J"]);
    if reverse {
        c.arg("-R");
    }
    let out = c.output().unwrap();
    let _ = s.kill();
    let _ = s.wait();
    assert!(
        out.status.success(),
        "iperf3 failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Garbage, truncated and unknown-SPI datagrams to ferry's port: dropped and counted,
/// the tunnel keeps working.
fn garbage(net: &Net, dev: &Device) {
    let before = dev.drops();
    let dst = SocketAddr::new(net.ferry_ip().parse().unwrap(), 4500);
    net.swan.enter(move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let mut ike = vec![0u8; 4];
        ike.extend_from_slice(&[0x11; 40]);
        for d in [
            &[1u8, 2, 3][..],
            &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1][..],
            &[0x55; 300][..],
            &ike[..],
            &[0, 0, 0, 0][..],
        ] {
            s.send_to(d, dst).unwrap();
        }
    });
    let t = Instant::now();
    loop {
        let d = dev.drops();
        if d.rx_invalid >= before.rx_invalid + 2
            && d.rx_unknown_spi > before.rx_unknown_spi
            && d.ike_dropped >= before.ike_dropped + 2
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "garbage not counted: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(net.ferry.pings(&net.ferry_inner(), &net.swan_inner(), 3), 3);
}

fn interop(case: Case) {
    let net = Net::new();
    let dev = ferry_device(&net, &case);
    let charon = Charon::start(&net, &case);
    wait_established(&dev, &charon);
    let (fi, si) = (net.ferry_inner(), net.swan_inner());
    assert!(
        net.ferry.ping_until(&fi, &si, Duration::from_secs(10)),
        "ferry → strongSwan ping: {:?}\n{}",
        dev.peers(),
        charon.log()
    );
    assert!(
        net.swan.ping_until(&si, &fi, Duration::from_secs(10)),
        "strongSwan → ferry ping: {:?}\n{}",
        dev.peers(),
        charon.log()
    );
    tcp(&net.swan, &net.ferry, &si, false);
    tcp(&net.swan, &net.ferry, &si, true);
    garbage(&net, &dev);
    // 30 s of pings across at least two child rekeys and one IKE rekey: none lost.
    let got = net.ferry.pings(&fi, &si, 150);
    let p = &dev.peers()[0];
    assert_eq!(
        got,
        150,
        "pings lost across rekeys: {p:?}\n{}",
        charon.log()
    );
    assert!(
        p.child_rekeys >= 2 && p.ike_rekeys >= 1,
        "rekeys did not happen: {p:?}\n{}",
        charon.log()
    );
    assert_eq!(p.status, Status::Established);
    assert!(net.swan.ping_until(&si, &fi, Duration::from_secs(5)));
    tcp(&net.ferry, &net.swan, &fi, false);
    eprintln!("ferry: {p:?} drops {:?}", dev.drops());
}

#[test]
fn ferry_initiates_aes_gcm_and_strongswan_rekeys() {
    if !ready() {
        return;
    }
    interop(Case {
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        ferry_initiates: true,
        ferry_rekeys: false,
        psk_on_swan: PSK,
    });
}

#[test]
fn strongswan_initiates_chacha20_poly1305_and_ferry_rekeys() {
    if !ready() {
        return;
    }
    interop(Case {
        ike: "chacha20poly1305-prfsha256-ecp256",
        esp: "chacha20poly1305",
        ferry_initiates: false,
        ferry_rekeys: true,
        psk_on_swan: PSK,
    });
}

#[test]
fn wrong_psk_gives_no_sa_and_a_clear_status() {
    if !ready() {
        return;
    }
    let case = Case {
        ike: "aes128gcm16-prfsha256-x25519",
        esp: "aes128gcm16",
        ferry_initiates: true,
        ferry_rekeys: false,
        psk_on_swan: "another-preshared-key-of-enough-length-000",
    };
    let net = Net::new();
    let charon = Charon::start(&net, &case);
    let dev = ferry_device(&net, &case);
    let t = Instant::now();
    loop {
        let p = &dev.peers()[0];
        if let Status::Failed(why) = &p.status {
            assert!(why.contains("preshared key"), "{why}\n{}", charon.log());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no failure reported: {p:?}\n{}",
            charon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(dev.peers()[0].child_sas, 0);
}

#[test]
fn restarts_on_either_side_recover() {
    if !ready() {
        return;
    }
    let case = Case {
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        ferry_initiates: true,
        ferry_rekeys: true,
        psk_on_swan: PSK,
    };
    let net = Net::new();
    let dev = ferry_device(&net, &case);
    let charon = Charon::start(&net, &case);
    wait_established(&dev, &charon);
    let (fi, si) = (net.ferry_inner(), net.swan_inner());
    assert!(net.ferry.ping_until(&fi, &si, Duration::from_secs(10)));
    // ferry restarts: its new IKE SA (INITIAL_CONTACT) replaces the old one in charon.
    drop(dev);
    let dev = ferry_device(&net, &case);
    wait_established(&dev, &charon);
    assert!(
        net.ferry.ping_until(&fi, &si, Duration::from_secs(10)),
        "after ferry restart: {:?}\n{}",
        dev.peers(),
        charon.log()
    );
    // strongSwan restarts and waits: ferry's dead-peer detection notices and starts over.
    drop(charon);
    let charon = Charon::start(&net, &case);
    assert!(
        net.ferry.ping_until(&fi, &si, Duration::from_secs(60)),
        "after strongSwan restart: {:?}\n{}",
        dev.peers(),
        charon.log()
    );
    assert!(net.swan.ping_until(&si, &fi, Duration::from_secs(5)));
}
