//! Shared test helpers: a server over the fixture zone, and `dig`.
#![allow(dead_code)]

use std::sync::Arc;

use ferry_dns::metrics::Metrics;
use ferry_dns::model::StaticZone;
use ferry_dns::{Answerer, AnswererConfig, DnsServer, Policy, ServerConfig};

pub const FIXTURE: &str = include_str!("../fixtures/zone.json");

pub struct TestServer {
    pub server: DnsServer,
    pub answerer: Arc<Answerer>,
    pub metrics: Arc<Metrics>,
    pub port: u16,
}

pub async fn start(zones: &[&str], policy: Policy) -> TestServer {
    let answerer = Arc::new(
        Answerer::new(AnswererConfig {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            ttl: 5,
            policy,
        })
        .unwrap(),
    );
    answerer.set_data(
        StaticZone::from_json(FIXTURE)
            .unwrap()
            .to_zone_data()
            .unwrap(),
    );
    let metrics = Arc::new(Metrics::new());
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.udp_workers = 2;
    let server = DnsServer::start(config, answerer.clone(), metrics.clone())
        .await
        .unwrap();
    let port = server.local_addr().port();
    TestServer {
        server,
        answerer,
        metrics,
        port,
    }
}

/// Runs `dig` against the server and returns its output with the message id
/// normalised (TTLs are fixed at 5 s by the configuration).
pub async fn dig(port: u16, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args([
            "+norec",
            "+nocookie",
            "+tries=1",
            "+time=10",
            "+nocmd",
            "+nostats",
        ])
        .args(args)
        .output()
        .await
        .expect("dig (install dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    normalize(&text)
}

fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(i) = line.find("id: ") {
            let (head, tail) = line.split_at(i + 4);
            let digits = tail.chars().take_while(char::is_ascii_digit).count();
            out.push_str(head);
            out.push_str("ID");
            out.push_str(&tail[digits..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}
