//! Where a sync's writes go: each API server's write requests by verb and
//! resource, read from its `/metrics` (`ferry_apiserver_requests_total`)
//! before and after, so a change in writes per service can be traced to
//! the objects that cause it.

use std::collections::BTreeMap;

use kube::Client;

/// Successful write requests by `(verb, resource)`.
pub type WriteCounts = BTreeMap<(String, String), u64>;

/// Each server's successful write requests so far.
pub async fn read(clients: &[Client]) -> anyhow::Result<Vec<WriteCounts>> {
    let mut out = Vec::new();
    for c in clients {
        let text = c
            .request_text(http::Request::get("/metrics").body(Vec::new())?)
            .await?;
        out.push(parse(&text));
    }
    Ok(out)
}

/// The write samples of `ferry_apiserver_requests_total` in Prometheus text.
fn parse(text: &str) -> WriteCounts {
    let mut counts = WriteCounts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ferry_apiserver_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|kv| {
                kv.strip_prefix(name)
                    .and_then(|v| v.strip_prefix("=\""))
                    .and_then(|v| v.strip_suffix('"'))
            })
        };
        let (Some(verb), Some(resource), Some(code)) =
            (label("verb"), label("resource"), label("code"))
        else {
            continue;
        };
        let write = matches!(verb, "create" | "update" | "patch" | "delete");
        if write && code.starts_with('2') {
            let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            *counts
                .entry((verb.to_string(), resource.to_string()))
                .or_default() += n;
        }
    }
    counts
}

/// `after - before` per server, as lines `server: verb resource N (x.y per service)`.
pub fn report(names: &[&str], before: &[WriteCounts], after: &[WriteCounts], n: usize) -> String {
    let mut out = String::new();
    for ((name, b), a) in names.iter().zip(before).zip(after) {
        for (key, count) in a {
            let d = count - b.get(key).copied().unwrap_or(0);
            if d > 0 {
                out.push_str(&format!(
                    "  {name}: {} {} {d} ({:.2} per service)\n",
                    key.0,
                    key.1,
                    d as f64 / n.max(1) as f64
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_writes_count() {
        let text = "ferry_apiserver_requests_total{verb=\"create\",resource=\"services\",code=\"201\"} 3\n\
                    ferry_apiserver_requests_total{verb=\"create\",resource=\"services\",code=\"409\"} 2\n\
                    ferry_apiserver_requests_total{verb=\"get\",resource=\"services\",code=\"200\"} 9\n";
        let c = parse(text);
        assert_eq!(c.len(), 1);
        assert_eq!(c[&("create".to_string(), "services".to_string())], 3);
    }
}
