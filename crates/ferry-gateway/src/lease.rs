//! Active/passive election among the gateway nodes of one cluster through a
//! `coordination.k8s.io/v1` Lease that only arbitrates: failures are
//! detected by the gateways' direct probes ([`crate::peer`]).
//!
//! The holder renews every `--lease-renew` (10 s, within Kubernetes'
//! leader-election cadence of 2–10 s: 0.1 API writes per second per cluster) and advertises its
//! peer-probe address in the [`PROBE_ADDRESS`] annotation. Standbys watch
//! the Lease (no polling) and probe the holder directly; when the probes say
//! it is down they take the Lease at once — a `replace` carrying the
//! resourceVersion they saw, so of several standbys exactly one wins. Without
//! a verdict from the probes (the holder never answered: probes blocked, an
//! older gateway) a standby takes the Lease only once its `(holder,
//! renewTime)` has not changed for `--lease-duration` (30 s) since this
//! process first saw it (client-go's "observed time" rule, immune to clock
//! skew between nodes).
//!
//! Against split brain, the holder steps down as soon as the watch shows
//! another holder, and when it could not renew for `--lease-duration` minus
//! one renew period (it may have lost the API server; a standby may have
//! taken over). A graceful stop clears the holder, so a watching standby
//! takes over at once.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ferry_kube::Watch;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::peer::{HolderVerdict, Target, Verdict};

/// What the elector should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it.
    Acquire,
    /// Someone else holds it; check again later.
    Wait,
}

/// The lease as one read saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading<'a> {
    /// `spec.holderIdentity` (empty or absent: free).
    pub holder: Option<&'a str>,
    /// `spec.renewTime` as written.
    pub renew_time: Option<&'a str>,
    /// Who cleared the holder in a graceful stop ([`RELEASED_BY`]).
    pub released_by: Option<&'a str>,
    /// Where the holder answers peer probes ([`PROBE_ADDRESS`]).
    pub probe_address: Option<&'a str>,
}

impl<'a> Reading<'a> {
    /// The fields of `lease` (`None`: there is no lease), with its
    /// `renewTime` as text.
    pub fn of(lease: Option<&'a Lease>, renew_time: Option<&'a str>) -> Self {
        let spec = lease.and_then(|l| l.spec.as_ref());
        let annotation = |key: &str| {
            lease
                .and_then(|l| l.metadata.annotations.as_ref()?.get(key))
                .map(String::as_str)
        };
        Reading {
            holder: spec.and_then(|s| s.holder_identity.as_deref()),
            renew_time,
            released_by: annotation(RELEASED_BY),
            probe_address: annotation(PROBE_ADDRESS),
        }
    }

    /// The holder a standby `me` should probe: another node's, with an
    /// address that parses.
    pub fn probe_target(&self, me: &str) -> Option<Target> {
        let holder = self.holder.filter(|h| !h.is_empty() && *h != me)?;
        let addr = self.probe_address?.parse().ok()?;
        Some(Target {
            holder: holder.to_string(),
            addr,
        })
    }
}

/// Annotation a gateway leaves on the lease when it releases it on a
/// graceful stop, so that its own successor (same node name) lets a running
/// standby take over first.
pub const RELEASED_BY: &str = "gateway.ferry.dev/released-by";

/// Annotation in which the holder advertises where it answers peer probes
/// (`IP:port` on the node network).
pub const PROBE_ADDRESS: &str = "gateway.ferry.dev/probe-address";

/// How long a restarted process waits before taking a lease its
/// predecessor on the same node held or released: a running standby, which
/// detects the predecessor's death within its probes' detection time, goes
/// first.
pub const RESTART_PATIENCE: Duration = Duration::from_secs(1);

/// Tracks when the current `(holder, renewTime)` was first seen.
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(String, String)>,
    observed_at: Option<Instant>,
}

impl Observer {
    /// Decides for the process of node `me` given the lease as seen now.
    /// `written` says whether this process has written the lease itself;
    /// `holder_down` whether the peer probes found the holder down.
    ///
    /// Holder identities are node names, so a lease held or released under
    /// `me` before this process wrote it belongs to a previous process on
    /// this node (killed, or stopping while its pod is replaced). A standby
    /// that has been running should take over then, not the newcomer: the
    /// newcomer waits [`RESTART_PATIENCE`] (at most a duration), far longer
    /// than a probing standby needs. Alone, it then takes over.
    pub fn decide(
        &mut self,
        me: &str,
        written: bool,
        lease: Reading<'_>,
        holder_down: bool,
        now: Instant,
        duration: Duration,
    ) -> Decision {
        let holder = lease.holder.unwrap_or("");
        let predecessor = !written;
        let restart = duration.min(RESTART_PATIENCE);
        let patience = match holder {
            h if h == me && written => return Decision::Renew,
            "" if !(predecessor && lease.released_by == Some(me)) => return Decision::Acquire,
            "" => restart,
            h if h == me => restart,
            _ if holder_down => return Decision::Acquire,
            _ => duration,
        };
        let key = (
            holder.to_string(),
            lease.renew_time.unwrap_or("").to_string(),
        );
        if self.seen.as_ref() != Some(&key) {
            self.seen = Some(key);
            self.observed_at = Some(now);
            return Decision::Wait;
        }
        match self.observed_at {
            Some(t) if now.duration_since(t) >= patience => Decision::Acquire,
            _ => Decision::Wait,
        }
    }
}

/// Timing of the election.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    /// How long an unrenewed lease stays valid (when the probes cannot tell).
    pub duration: Duration,
    /// How often the holder renews.
    pub renew: Duration,
}

impl LeaseTiming {
    /// The holder steps down when it could not renew for this long.
    fn renew_deadline(&self) -> Duration {
        self.duration.saturating_sub(self.renew).max(self.renew)
    }

    /// How soon a failed write is retried.
    fn retry(&self) -> Duration {
        (self.renew / 5).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }

    /// How often a standby re-applies the expiry rules to the lease it
    /// last saw (no API call).
    fn recheck(&self) -> Duration {
        (self.duration / 4).min(RESTART_PATIENCE / 4)
    }
}

/// The election of one node: the Lease and who this node is.
pub struct Election {
    pub api: Api<Lease>,
    /// The Lease's name.
    pub name: String,
    /// This node's name (the holder identity).
    pub me: String,
    pub timing: LeaseTiming,
    /// Where this node answers peer probes, advertised while it holds the lease.
    pub probe_addr: Option<SocketAddr>,
}

/// The lease loop's side of the peer prober.
pub struct PeerLink {
    /// The holder to probe (set by the lease loop).
    pub target: watch::Sender<Option<Target>>,
    /// The probes' verdict on it.
    pub verdict: watch::Receiver<HolderVerdict>,
}

/// The lease as this process knows it: from the watch or its own writes,
/// whichever is newer.
#[derive(Default)]
struct Known {
    lease: Option<Lease>,
    version: u64,
    listed: bool,
}

impl Known {
    /// Takes `lease` unless an older version than the one known.
    fn update(&mut self, lease: Option<Lease>) {
        let version = lease.as_ref().map_or(0, resource_version);
        // 0: unparsable or absent; a (re)list's answer is current.
        if version != 0 && version < self.version {
            return;
        }
        self.version = version;
        self.lease = lease;
        self.listed = true;
    }
}

fn resource_version(l: &Lease) -> u64 {
    l.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs the election until `stop` turns true, publishing whether this node
/// is the active gateway on `active`. On stop, a held lease is released.
pub async fn run(
    e: Election,
    peer: PeerLink,
    active: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let (seen_tx, mut seen) = watch::channel(None);
    let watch_task = tokio::spawn(watch_lease(e.api.clone(), e.name.clone(), seen_tx));
    let PeerLink {
        target,
        verdict: mut verdicts,
    } = peer;
    let mut known = Known::default();
    let mut observer = Observer::default();
    let mut last_renewed: Option<Instant> = None;
    let mut next_write = Instant::now();
    loop {
        let wake = if *active.borrow() {
            next_write
        } else {
            Instant::now() + e.timing.recheck()
        };
        tokio::select! {
            r = seen.changed() => {
                if r.is_err() { break; }
                if let Some(l) = seen.borrow_and_update().clone() {
                    known.update(l);
                }
            }
            r = verdicts.changed() => {
                if r.is_err() { break; }
                verdicts.mark_unchanged();
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        if !known.listed {
            continue;
        }
        let now = Instant::now();
        let renew_time = known
            .lease
            .as_ref()
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
            .map(|t| t.0.to_string());
        let reading = Reading::of(known.lease.as_ref(), renew_time.as_deref());
        let probe_target = reading.probe_target(&e.me);
        target.send_if_modified(|cur| {
            let changed = *cur != probe_target;
            *cur = probe_target.clone();
            changed
        });
        let holder_down = {
            let v = verdicts.borrow();
            v.verdict == Verdict::Down && v.target.is_some() && v.target == probe_target
        };
        let written = last_renewed.is_some();
        let write_now = match observer.decide(
            &e.me,
            written,
            reading,
            holder_down,
            now,
            e.timing.duration,
        ) {
            Decision::Wait => {
                if *active.borrow() {
                    tracing::warn!(lease = %e.name, holder = ?reading.holder, "another gateway holds the lease; stepping down");
                }
                set(&active, false);
                false
            }
            Decision::Renew => !*active.borrow() || now >= next_write,
            Decision::Acquire => {
                if holder_down {
                    tracing::info!(lease = %e.name, holder = ?reading.holder, "the holder does not answer peer probes; taking over");
                }
                true
            }
        };
        if write_now {
            match write(&e, known.lease.clone()).await {
                Ok(l) => {
                    known.update(Some(l));
                    last_renewed = Some(now);
                    next_write = now + e.timing.renew;
                    if !*active.borrow() {
                        tracing::info!(lease = %e.name, "became the active gateway");
                    }
                    set(&active, true);
                }
                Err(err) => {
                    tracing::debug!(lease = %e.name, "lease write lost: {err}");
                    next_write = now + e.timing.retry();
                }
            }
        }
        // Unable to renew in time: a standby may hold it now.
        if *active.borrow()
            && last_renewed.is_none_or(|t| now.duration_since(t) >= e.timing.renew_deadline())
        {
            tracing::warn!(lease = %e.name, "could not renew the lease in time; stepping down");
            set(&active, false);
        }
    }
    watch_task.abort();
    if *active.borrow() {
        set(&active, false);
        release(&e.api, &e.name, &e.me).await;
    }
}

/// Follows the one lease: `Some(lease or None)` after every change and
/// after each (re)list.
fn watch_lease(
    api: Api<Lease>,
    name: String,
    tx: watch::Sender<Option<Option<Lease>>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut listing: Option<Lease> = None;
    Watch::new(api, config).named("Lease").for_each(move |ev| {
        let seen = match ev {
            watcher::Event::Apply(l) => Some(l),
            watcher::Event::Delete(_) => None,
            watcher::Event::Init => {
                listing = None;
                return ControlFlow::Continue(());
            }
            watcher::Event::InitApply(l) => {
                listing = Some(l);
                return ControlFlow::Continue(());
            }
            watcher::Event::InitDone => listing.take(),
        };
        if tx.send(Some(seen)).is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
}

fn set(tx: &watch::Sender<bool>, v: bool) {
    tx.send_if_modified(|cur| std::mem::replace(cur, v) != v);
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Creates, renews or takes over the lease, advertising this node's probe
/// address; a conflict means someone else wrote first and is an error.
async fn write(e: &Election, current: Option<Lease>) -> Result<Lease, kube::Error> {
    // Whole seconds for other readers (kubectl); our gateways use the flag.
    let secs = i32::try_from(e.timing.duration.as_millis().div_ceil(1000)).unwrap_or(i32::MAX);
    let me = e.me.as_str();
    let mut lease = current.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(e.name.clone()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            lease_transitions: Some(0),
            ..Default::default()
        }),
    });
    let create = lease.metadata.resource_version.is_none();
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(me) {
        spec.holder_identity = Some(me.into());
        spec.acquire_time = Some(now_micro());
        if !create {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    spec.lease_duration_seconds = Some(secs);
    spec.renew_time = Some(now_micro());
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.remove(RELEASED_BY);
    match e.probe_addr {
        Some(a) => annotations.insert(PROBE_ADDRESS.into(), a.to_string()),
        None => annotations.remove(PROBE_ADDRESS),
    };
    if create {
        return e.api.create(&PostParams::default(), &lease).await;
    }
    // `replace` carries the resourceVersion we saw: a concurrent writer
    // makes this a 409 instead of two holders.
    e.api.replace(&e.name, &PostParams::default(), &lease).await
}

/// Clears the holder so a standby takes over without waiting for expiry.
async fn release(api: &Api<Lease>, name: &str, me: &str) {
    for _ in 0..3 {
        let Ok(Some(mut lease)) = api.get_opt(name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(me) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(now_micro());
        let annotations = lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.remove(PROBE_ADDRESS);
        annotations.insert(RELEASED_BY.into(), me.into());
        match api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => {
                tracing::info!(lease = %name, "released the lease");
                return;
            }
            Err(e) => tracing::debug!(lease = %name, "releasing: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_millis(500);

    fn held<'a>(holder: &'a str, renew: &'a str) -> Reading<'a> {
        Reading {
            holder: Some(holder),
            renew_time: Some(renew),
            released_by: None,
            probe_address: None,
        }
    }

    #[test]
    fn observer_rules() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut o = Observer::default();
        assert_eq!(
            o.decide("a", true, held("a", "t1"), false, t0, D),
            Decision::Renew
        );
        assert_eq!(
            o.decide("a", false, Reading::default(), false, t0, D),
            Decision::Acquire
        );
        assert_eq!(
            o.decide("a", false, held("", "t0"), false, t0, D),
            Decision::Acquire
        );
        // b holds it: we wait a full duration after first seeing each renewal.
        assert_eq!(
            o.decide("a", true, held("b", "t1"), false, ms(0), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t1"), false, ms(499), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), false, ms(450), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), false, ms(900), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), false, ms(950), D),
            Decision::Acquire
        );
        // A new holder restarts the clock.
        assert_eq!(
            o.decide("a", true, held("c", "t2"), false, ms(960), D),
            Decision::Wait
        );
    }

    /// A killed process's lease (held under our node name, never written by
    /// this process) goes to a running standby as soon as its probes find
    /// the holder down; the newcomer waits [`RESTART_PATIENCE`] first.
    #[test]
    fn a_restarted_node_lets_the_standby_take_a_crashed_lease_first() {
        const LONG: Duration = Duration::from_secs(15);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (mut newcomer, mut standby) = (Observer::default(), Observer::default());
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), false, t0, LONG),
            Decision::Wait
        );
        // The standby's probes still had a answer: it waits for the expiry…
        assert_eq!(
            standby.decide("b", true, held("a", "t1"), false, t0, LONG),
            Decision::Wait
        );
        // …until they find a down: at once.
        assert_eq!(
            standby.decide("b", true, held("a", "t1"), true, ms(150), LONG),
            Decision::Acquire
        );
        // A verdict on a holder is no reason to take a free or own lease
        // any sooner than the rules say.
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), true, ms(999), LONG),
            Decision::Wait
        );
        // Alone, the newcomer takes it back after RESTART_PATIENCE.
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), false, ms(1000), LONG),
            Decision::Acquire
        );
        // Without any verdict, a standby takes it after the full duration.
        let mut blind = Observer::default();
        assert_eq!(
            blind.decide("b", true, held("a", "t1"), false, t0, LONG),
            Decision::Wait
        );
        assert_eq!(
            blind.decide("b", true, held("a", "t1"), false, ms(14_999), LONG),
            Decision::Wait
        );
        assert_eq!(
            blind.decide("b", true, held("a", "t1"), false, ms(15_000), LONG),
            Decision::Acquire
        );
    }

    #[test]
    fn probe_target_is_another_holders_advertised_address() {
        let mut r = held("a", "t1");
        assert_eq!(r.probe_target("b"), None, "no address advertised");
        r.probe_address = Some("198.18.0.1:4802");
        assert_eq!(
            r.probe_target("b"),
            Some(Target {
                holder: "a".into(),
                addr: "198.18.0.1:4802".parse().unwrap()
            })
        );
        assert_eq!(r.probe_target("a"), None, "our own lease");
        r.probe_address = Some("not an address");
        assert_eq!(r.probe_target("b"), None);
        let free = Reading {
            holder: Some(""),
            probe_address: Some("198.18.0.1:4802"),
            ..Reading::default()
        };
        assert_eq!(free.probe_target("b"), None);
    }

    /// A lease our predecessor released on a graceful stop goes to a running
    /// standby at once; the newcomer waits a duration before taking it.
    #[test]
    fn a_restarted_node_lets_the_standby_take_a_released_lease_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let released = Reading {
            holder: None,
            renew_time: Some("t2"),
            released_by: Some("a"),
            probe_address: None,
        };
        let mut standby = Observer::default();
        assert_eq!(
            standby.decide("b", true, released, false, t0, D),
            Decision::Acquire
        );
        let mut newcomer = Observer::default();
        assert_eq!(
            newcomer.decide("a", false, released, false, t0, D),
            Decision::Wait
        );
        assert_eq!(
            newcomer.decide("a", false, released, false, ms(499), D),
            Decision::Wait
        );
        assert_eq!(
            newcomer.decide("a", false, released, false, ms(500), D),
            Decision::Acquire
        );
        // Once this process has held the lease itself, the mark is moot.
        let mut o = Observer::default();
        assert_eq!(
            o.decide("a", true, released, false, t0, D),
            Decision::Acquire
        );
    }
}
