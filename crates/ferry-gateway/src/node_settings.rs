//! Per-node gateway settings from the Node's annotations, as Submariner's
//! `gateway.submariner.io/…` ones: [`PUBLIC_IP_ANNOTATION`] (how to find the
//! address other clusters reach this gateway at) and [`UDP_PORT_ANNOTATION`]
//! (this node's cable port). Parsing is pure; [`resolve_public_ip`] does the
//! DNS and HTTPS lookups the annotation asks for.
//!
//! A value that does not parse, or whose every lookup fails, is an
//! [`AnnotationError`] naming the annotation, its value and the cause; the
//! gateway reports it in its `Gateway` status instead of guessing an address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use ferry_api::labels::{PUBLIC_IP_ANNOTATION, UDP_PORT_ANNOTATION};

/// How long one `dns:` or `api:` lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One way to learn the public IP, as the annotation lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicIpSource {
    /// `ipv4:ADDRESS`: this address.
    Ipv4(Ipv4Addr),
    /// `dns:NAME`: the first IPv4 address NAME resolves to.
    Dns(String),
    /// `api:HOST[/PATH]`: what `https://HOST/PATH` answers (a what-is-my-IP
    /// service); an explicit `http://` or `https://` URL is used as is.
    Api(String),
}

/// A per-node annotation ferry cannot use, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node annotation {annotation}={value:?}: {reason}")]
pub struct AnnotationError {
    /// The annotation key.
    pub annotation: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(annotation: &'static str, value: &str, reason: impl Into<String>) -> AnnotationError {
    AnnotationError {
        annotation,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses [`PUBLIC_IP_ANNOTATION`]: a comma-separated list of
/// `ipv4:ADDRESS`, `dns:NAME` or `api:HOST[/PATH]`, tried in order.
pub fn parse_public_ip(value: &str) -> Result<Vec<PublicIpSource>, AnnotationError> {
    let err = |reason: String| bad(PUBLIC_IP_ANNOTATION, value, reason);
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((kind, arg)) = entry.split_once(':') else {
            return Err(err(format!(
                "{entry:?} has no kind; expected ipv4:ADDRESS, dns:NAME or api:HOST"
            )));
        };
        let arg = arg.trim();
        if arg.is_empty() {
            return Err(err(format!("{entry:?} has nothing after {kind}:")));
        }
        out.push(match kind.trim() {
            "ipv4" => PublicIpSource::Ipv4(
                arg.parse()
                    .map_err(|_| err(format!("{arg:?} is not an IPv4 address")))?,
            ),
            "dns" => PublicIpSource::Dns(arg.to_string()),
            "api" => PublicIpSource::Api(arg.to_string()),
            "lb" => {
                return Err(err(
                    "lb: needs the gateway behind a LoadBalancer Service (subctl join \
                     --load-balancer), which ferry does not support; use ipv4: or dns:"
                        .into(),
                ));
            }
            other => {
                return Err(err(format!(
                    "unknown kind {other:?}; expected ipv4:, dns: or api:"
                )));
            }
        });
    }
    if out.is_empty() {
        return Err(err(
            "empty; expected ipv4:ADDRESS, dns:NAME or api:HOST".into()
        ));
    }
    Ok(out)
}

/// Parses [`UDP_PORT_ANNOTATION`]: a UDP port, 1–65535.
pub fn parse_udp_port(value: &str) -> Result<u16, AnnotationError> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad(UDP_PORT_ANNOTATION, value, "not a UDP port (1-65535)")),
    }
}

/// The public IP from the annotation's sources, the first that answers.
/// With `air_gapped`, `api:` sources are skipped (no outside service is
/// asked). Every source failing is an error listing each cause.
pub async fn resolve_public_ip(
    value: &str,
    sources: &[PublicIpSource],
    air_gapped: bool,
) -> Result<Ipv4Addr, AnnotationError> {
    let mut failures = Vec::new();
    for source in sources {
        let result = match source {
            PublicIpSource::Ipv4(ip) => Ok(*ip),
            PublicIpSource::Dns(name) => lookup_dns(name).await,
            PublicIpSource::Api(_) if air_gapped => {
                Err("skipped: the gateway runs --air-gapped".to_string())
            }
            PublicIpSource::Api(target) => lookup_api(target).await,
        };
        match result {
            Ok(ip) => return Ok(ip),
            Err(e) => failures.push(format!("{}: {e}", describe(source))),
        }
    }
    Err(bad(PUBLIC_IP_ANNOTATION, value, failures.join("; ")))
}

fn describe(source: &PublicIpSource) -> String {
    match source {
        PublicIpSource::Ipv4(ip) => format!("ipv4:{ip}"),
        PublicIpSource::Dns(n) => format!("dns:{n}"),
        PublicIpSource::Api(t) => format!("api:{t}"),
    }
}

async fn lookup_dns(name: &str) -> Result<Ipv4Addr, String> {
    let lookup = tokio::net::lookup_host((name, 0));
    let addrs = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .map_err(|_| format!("no answer in {}s", LOOKUP_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    addrs
        .map(|a| a.ip())
        .find_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| "resolves to no IPv4 address".to_string())
}

/// The URL an `api:` source asks.
pub fn api_url(target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("https://{target}")
    }
}

async fn lookup_api(target: &str) -> Result<Ipv4Addr, String> {
    let url = api_url(target);
    let client = reqwest::Client::builder()
        .timeout(LOOKUP_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let text = body.trim();
    text.parse()
        .map_err(|_| format!("GET {url} answered {text:?}, not an IPv4 address"))
}

#[cfg(test)]
mod tests;
