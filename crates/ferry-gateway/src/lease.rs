//! Active/passive election among the gateway nodes of one cluster through a
//! `coordination.k8s.io/v1` Lease, with sub-second timing.
//!
//! Kubernetes Leases count duration in whole seconds, far too coarse for a
//! ≤1 s failover, so every gateway is started with the same `--lease-duration`
//! (default 500 ms) and judges expiry by its *own* monotonic clock: a lease
//! has expired when its `(holder, renewTime)` has not changed for a full
//! duration since this process first saw that value (client-go's
//! "observed time" rule — immune to clock skew between nodes). The holder
//! renews every `--lease-renew` (100 ms) and steps down if it cannot renew
//! for a whole duration, so two actives never overlap for longer than that.
//! A graceful stop clears the holder, so a standby takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

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
}

/// Annotation a gateway leaves on the lease when it releases it on a
/// graceful stop, so that its own successor (same node name) lets a running
/// standby take over first.
pub const RELEASED_BY: &str = "gateway.ferry.dev/released-by";

/// Tracks when the current `(holder, renewTime)` was first seen.
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(String, String)>,
    observed_at: Option<Instant>,
}

impl Observer {
    /// Decides for the process of node `me` given the lease as read now.
    /// `written` says whether this process has written the lease itself.
    ///
    /// Holder identities are node names, so a lease held or released under
    /// `me` before this process wrote it belongs to a previous process on
    /// this node (killed, or stopping while its pod is replaced). A standby
    /// that has been running should take over then, not the newcomer: the
    /// newcomer waits one duration longer than a standby would (two for a
    /// held lease, one for a lease its predecessor released), so the two never
    /// race for the same instant however the restart and the standby's
    /// polling interleave. Alone, the newcomer still takes over after that.
    pub fn decide(
        &mut self,
        me: &str,
        written: bool,
        lease: Reading<'_>,
        now: Instant,
        duration: Duration,
    ) -> Decision {
        let holder = lease.holder.unwrap_or("");
        let predecessor = !written;
        let patience = match holder {
            h if h == me && written => return Decision::Renew,
            "" if !(predecessor && lease.released_by == Some(me)) => return Decision::Acquire,
            "" => duration,
            h if h == me => duration * 2,
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
    /// How long an unrenewed lease stays valid.
    pub duration: Duration,
    /// How often the holder renews (and a standby re-reads).
    pub renew: Duration,
}

/// Runs the election until `stop` turns true, publishing whether this node
/// is the active gateway on `active`. On stop, a held lease is released.
pub async fn run(
    api: Api<Lease>,
    name: String,
    me: String,
    timing: LeaseTiming,
    active: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut observer = Observer::default();
    let mut last_renewed: Option<Instant> = None;
    // A standby re-reads twice per renew period so it notices expiry soon.
    let standby_poll = timing.renew / 2;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = Instant::now();
        let next = match api.get_opt(&name).await {
            Ok(current) => {
                let spec = current.as_ref().and_then(|l| l.spec.as_ref());
                let renew = spec
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string());
                let reading = Reading {
                    holder: spec.and_then(|s| s.holder_identity.as_deref()),
                    renew_time: renew.as_deref(),
                    released_by: current
                        .as_ref()
                        .and_then(|l| l.metadata.annotations.as_ref())
                        .and_then(|a| a.get(RELEASED_BY))
                        .map(String::as_str),
                };
                let written = last_renewed.is_some();
                match observer.decide(&me, written, reading, now, timing.duration) {
                    Decision::Wait => {
                        set(&active, false);
                        standby_poll
                    }
                    Decision::Renew | Decision::Acquire => {
                        match write(&api, &name, &me, current, timing).await {
                            Ok(()) => {
                                last_renewed = Some(now);
                                if !*active.borrow() {
                                    tracing::info!(lease = %name, "became the active gateway");
                                }
                                set(&active, true);
                                timing.renew
                            }
                            Err(e) => {
                                tracing::debug!(lease = %name, "lease write lost: {e}");
                                standby_poll
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(lease = %name, "reading the lease: {e}");
                standby_poll
            }
        };
        // Unable to renew for a whole duration: someone else may hold it now.
        if *active.borrow() && last_renewed.is_none_or(|t| now.duration_since(t) >= timing.duration)
        {
            tracing::warn!(lease = %name, "could not renew the lease in time; stepping down");
            set(&active, false);
        }
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = stop.changed() => {}
        }
    }
    if *active.borrow() {
        release(&api, &name, &me).await;
        set(&active, false);
    }
}

fn set(tx: &watch::Sender<bool>, v: bool) {
    tx.send_if_modified(|cur| std::mem::replace(cur, v) != v);
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Creates, renews or takes over the lease; a conflict means someone else
/// wrote first and is an error.
async fn write(
    api: &Api<Lease>,
    name: &str,
    me: &str,
    current: Option<Lease>,
    timing: LeaseTiming,
) -> Result<(), kube::Error> {
    // Whole seconds for other readers (kubectl); our gateways use the flag.
    let secs = i32::try_from(timing.duration.as_millis().div_ceil(1000)).unwrap_or(i32::MAX);
    match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.into()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(me) {
                spec.holder_identity = Some(me.into());
                spec.acquire_time = Some(now_micro());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                if let Some(a) = lease.metadata.annotations.as_mut() {
                    a.remove(RELEASED_BY);
                }
            }
            spec.lease_duration_seconds = Some(secs);
            spec.renew_time = Some(now_micro());
            // `replace` carries the resourceVersion we read: a concurrent
            // writer makes this a 409 instead of two holders.
            api.replace(name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    }
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
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(RELEASED_BY.into(), me.into());
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
        }
    }

    #[test]
    fn observer_rules() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut o = Observer::default();
        assert_eq!(o.decide("a", true, held("a", "t1"), t0, D), Decision::Renew);
        assert_eq!(
            o.decide("a", false, Reading::default(), t0, D),
            Decision::Acquire
        );
        assert_eq!(
            o.decide("a", false, held("", "t0"), t0, D),
            Decision::Acquire
        );
        // b holds it: we wait a full duration after first seeing each renewal.
        assert_eq!(
            o.decide("a", true, held("b", "t1"), ms(0), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t1"), ms(499), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), ms(450), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), ms(900), D),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", true, held("b", "t2"), ms(950), D),
            Decision::Acquire
        );
        // A new holder restarts the clock.
        assert_eq!(
            o.decide("a", true, held("c", "t2"), ms(960), D),
            Decision::Wait
        );
    }

    /// A killed process's lease (held under our node name, never written by
    /// this process) is left to a running standby: one more duration.
    #[test]
    fn a_restarted_node_lets_the_standby_take_a_crashed_lease_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (mut newcomer, mut standby) = (Observer::default(), Observer::default());
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), t0, D),
            Decision::Wait
        );
        assert_eq!(
            standby.decide("b", true, held("a", "t1"), t0, D),
            Decision::Wait
        );
        assert_eq!(
            standby.decide("b", true, held("a", "t1"), ms(500), D),
            Decision::Acquire
        );
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), ms(500), D),
            Decision::Wait
        );
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), ms(999), D),
            Decision::Wait
        );
        // Alone, the newcomer takes it back after two durations.
        assert_eq!(
            newcomer.decide("a", false, held("a", "t1"), ms(1000), D),
            Decision::Acquire
        );
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
        };
        let mut standby = Observer::default();
        assert_eq!(
            standby.decide("b", true, released, t0, D),
            Decision::Acquire
        );
        let mut newcomer = Observer::default();
        assert_eq!(newcomer.decide("a", false, released, t0, D), Decision::Wait);
        assert_eq!(
            newcomer.decide("a", false, released, ms(499), D),
            Decision::Wait
        );
        assert_eq!(
            newcomer.decide("a", false, released, ms(500), D),
            Decision::Acquire
        );
        // Once this process has held the lease itself, the mark is moot.
        let mut o = Observer::default();
        assert_eq!(o.decide("a", true, released, t0, D), Decision::Acquire);
    }
}
