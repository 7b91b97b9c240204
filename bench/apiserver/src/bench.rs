//! The measurements: durable creates, watch delivery, bulk fills for list
//! latency and RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::access::FerryAccess;
use crate::clients::{Etcd, Ferry, configmap};

/// Which server a measurement talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ferry,
    Etcd,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Ferry => "ferry",
            Target::Etcd => "etcd",
        }
    }
}

/// One client of either server, with its own connection.
#[derive(Debug, Clone)]
enum Client {
    Ferry(Ferry),
    Etcd(Etcd),
}

/// Where the servers are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub ferry: FerryAccess,
    pub etcd_url: String,
}

impl Endpoints {
    fn client(&self, target: Target) -> Result<Client> {
        Ok(match target {
            Target::Ferry => Client::Ferry(Ferry::new(&self.ferry)?),
            Target::Etcd => Client::Etcd(Etcd::new(&self.etcd_url)?),
        })
    }
}

impl Client {
    /// Durably creates the ConfigMap `name` in `namespace` (for etcd: puts the
    /// same JSON under the key kube-apiserver would use).
    async fn create(&self, namespace: &str, name: &str, value: &str) -> Result<()> {
        let body = configmap(name, value);
        match self {
            Client::Ferry(f) => f.create_configmap(namespace, body).await,
            Client::Etcd(e) => {
                e.put(&format!("/registry/configmaps/{namespace}/{name}"), &body)
                    .await
            }
        }
    }
}

/// The outcome of one timed create run.
#[derive(Debug)]
pub struct CreateRun {
    /// Creates acknowledged inside the timed window (and just after it, for
    /// requests already in flight at the deadline).
    pub ops: u64,
    pub elapsed: Duration,
    /// Latency of every create, sorted.
    pub latencies: Vec<Duration>,
}

impl CreateRun {
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `clients` concurrent clients, each on its own connection, creating small
/// objects one at a time (each waits for the durable ack) for `duration`.
pub async fn creates(
    ep: &Endpoints,
    target: Target,
    namespace: &str,
    clients: usize,
    duration: Duration,
    tag: &str,
    value: &str,
) -> Result<CreateRun> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut set = JoinSet::new();
    for w in 0..clients {
        let client = ep.client(target)?;
        let barrier = barrier.clone();
        let (ns, tag, value) = (namespace.to_string(), tag.to_string(), value.to_string());
        set.spawn(async move {
            // Warm up: connect (TLS handshake, HTTP/2 settings) outside the window.
            let warm = client
                .create(&ns, &format!("{tag}-w{w}-warm"), &value)
                .await;
            barrier.wait().await;
            warm?;
            let deadline = Instant::now() + duration;
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                client
                    .create(&ns, &format!("{tag}-w{w}-{i}"), &value)
                    .await?;
                latencies.push(t0.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    while let Some(joined) = set.join_next().await {
        latencies.extend(joined.context("a create worker panicked")??);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let ops = latencies.len() as u64;
    Ok(CreateRun {
        ops,
        elapsed,
        latencies,
    })
}

/// Creates the objects `{prefix}-{i}` for every `i` in `range` with `workers` concurrent clients; returns the time it took.
pub async fn fill(
    ep: &Endpoints,
    target: Target,
    namespace: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
    workers: usize,
    value: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let client = ep.client(target)?;
        let next = next.clone();
        let end = range.end;
        let (ns, prefix, value) = (namespace.to_string(), prefix.to_string(), value.to_string());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return anyhow::Ok(());
                }
                client.create(&ns, &format!("{prefix}-{i}"), &value).await?;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a fill worker panicked")??;
    }
    Ok(start.elapsed())
}

/// Watch delivery latencies over all deliveries, sorted.
#[derive(Debug)]
pub struct WatchRun {
    pub watchers: usize,
    pub writes: usize,
    pub delivered: usize,
    /// From the writer receiving the create's response to a watcher reading
    /// the event (0 when the event arrived before the response).
    pub from_ack: Vec<Duration>,
    /// From just before the writer sent the create to a watcher reading it.
    pub from_send: Vec<Duration>,
    /// Create latency as the writer saw it, sorted.
    pub write_latency: Vec<Duration>,
}

/// Parses the object names out of complete lines in `buf`, leaving any
/// partial last line in place.
fn take_names(buf: &mut Vec<u8>) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        object: Object,
    }
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        name: String,
    }
    let mut names = Vec::new();
    let mut consumed = 0;
    while let Some(nl) = buf[consumed..].iter().position(|&b| b == b'\n') {
        let line = &buf[consumed..consumed + nl];
        consumed += nl + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let ev: Event = serde_json::from_slice(line)
            .with_context(|| format!("parsing a watch event: {}", String::from_utf8_lossy(line)))?;
        match ev.kind.as_str() {
            "ADDED" | "MODIFIED" => names.push(ev.object.metadata.name),
            "BOOKMARK" => {}
            other => bail!("unexpected watch event {other}"),
        }
    }
    buf.drain(..consumed);
    Ok(names)
}

/// `watchers` watch streams (each on its own connection) on one namespace
/// while one writer creates `writes` objects at `rate` per second.
pub async fn watch(
    ep: &Endpoints,
    namespace: &str,
    watchers: usize,
    writes: usize,
    rate: f64,
    value: &str,
) -> Result<WatchRun> {
    let writer = Ferry::new(&ep.ferry)?;
    writer.create_namespace(namespace).await?;
    let (_, rv) = crate::clients::parse_list(&writer.list_configmaps(namespace).await?)?;

    // Budget: the writes at `rate`, plus a generous margin; the watches end
    // on their own at this timeout even if the run is interrupted.
    let budget = Duration::from_secs_f64(writes as f64 / rate) + Duration::from_secs(60);
    let warmed = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..watchers {
        let client = Ferry::new(&ep.ferry)?;
        let ns = namespace.to_string();
        let warmed = warmed.clone();
        set.spawn(async move {
            let mut resp = client.watch_configmaps(&ns, rv, budget.as_secs()).await?;
            let deadline = tokio::time::Instant::now() + budget;
            let mut buf = Vec::new();
            let mut seen: Vec<(usize, Instant)> = Vec::with_capacity(writes);
            while seen.len() < writes {
                let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                    Err(_) => break,
                    Ok(c) => c.context("reading a watch stream")?,
                };
                let at = Instant::now();
                let Some(chunk) = chunk else { break };
                buf.extend_from_slice(&chunk);
                for name in take_names(&mut buf)? {
                    if name == "warmup" {
                        warmed.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(i) = name.strip_prefix("ev-") {
                        seen.push((i.parse().context("parsing an event name")?, at));
                    }
                }
            }
            anyhow::Ok(seen)
        });
    }

    // Wait until every watcher is live (has seen the warm-up object).
    writer
        .create_configmap(namespace, configmap("warmup", value))
        .await?;
    let ready_by = Instant::now() + Duration::from_secs(30);
    while warmed.load(Ordering::Relaxed) < watchers {
        if Instant::now() > ready_by {
            bail!(
                "only {} of {watchers} watchers saw the warm-up event within 30 s",
                warmed.load(Ordering::Relaxed)
            );
        }
        if let Some(joined) = set.try_join_next() {
            // A watcher ended before the measurement: report why.
            joined.context("a watcher panicked")??;
            bail!("a watcher ended before the measurement started");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut sent = Vec::with_capacity(writes);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..writes {
        tick.tick().await;
        let t0 = Instant::now();
        writer
            .create_configmap(namespace, configmap(&format!("ev-{i}"), value))
            .await?;
        sent.push((t0, Instant::now()));
    }

    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    while let Some(joined) = set.join_next().await {
        for (i, at) in joined.context("a watcher panicked")?? {
            let (t0, t1) = *sent.get(i).context("a watcher saw an unknown event")?;
            from_send.push(at.saturating_duration_since(t0));
            from_ack.push(at.saturating_duration_since(t1));
        }
    }
    from_ack.sort();
    from_send.sort();
    let mut write_latency: Vec<Duration> = sent.iter().map(|(a, b)| *b - *a).collect();
    write_latency.sort();
    Ok(WatchRun {
        watchers,
        writes,
        delivered: from_ack.len(),
        from_ack,
        from_send,
        write_latency,
    })
}

/// Times `runs` full reads; returns (durations, the last body).
pub async fn time_reads<F, Fut>(runs: usize, mut read: F) -> Result<(Vec<Duration>, bytes::Bytes)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes>>,
{
    ensure!(runs > 0, "no runs");
    // One untimed read first: connection set-up and caches.
    let mut body = read().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        body = read().await?;
        times.push(t0.elapsed());
    }
    Ok((times, body))
}
