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

/// Tracks when the current `(holder, renewTime)` was first seen.
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(String, String)>,
    observed_at: Option<Instant>,
}

impl Observer {
    /// Decides for `me` given the lease's holder and renew time as read now.
    pub fn decide(
        &mut self,
        me: &str,
        holder: Option<&str>,
        renew_time: Option<&str>,
        now: Instant,
        duration: Duration,
    ) -> Decision {
        let holder = holder.unwrap_or("");
        if holder == me {
            return Decision::Renew;
        }
        if holder.is_empty() {
            return Decision::Acquire;
        }
        let key = (holder.to_string(), renew_time.unwrap_or("").to_string());
        if self.seen.as_ref() != Some(&key) {
            self.seen = Some(key);
            self.observed_at = Some(now);
            return Decision::Wait;
        }
        match self.observed_at {
            Some(t) if now.duration_since(t) >= duration => Decision::Acquire,
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
                let holder = spec.and_then(|s| s.holder_identity.as_deref());
                let renew = spec
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string());
                // Holder identities are node names, so a lease held under
                // ours may be a previous process's (still stopping, or
                // killed): until this process has written the lease itself,
                // such a lease is someone else's — released or expired
                // first — and the standby, not the restarted process, takes
                // over after a graceful stop.
                let who = if last_renewed.is_some() {
                    me.as_str()
                } else {
                    ""
                };
                match observer.decide(who, holder, renew.as_deref(), now, timing.duration) {
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

    #[test]
    fn observer_rules() {
        let d = Duration::from_millis(500);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut o = Observer::default();
        assert_eq!(o.decide("a", Some("a"), Some("t1"), t0, d), Decision::Renew);
        assert_eq!(o.decide("a", None, None, t0, d), Decision::Acquire);
        assert_eq!(o.decide("a", Some(""), None, t0, d), Decision::Acquire);
        // b holds it: we wait a full duration after first seeing each renewal.
        assert_eq!(
            o.decide("a", Some("b"), Some("t1"), ms(0), d),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", Some("b"), Some("t1"), ms(499), d),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", Some("b"), Some("t2"), ms(450), d),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", Some("b"), Some("t2"), ms(900), d),
            Decision::Wait
        );
        assert_eq!(
            o.decide("a", Some("b"), Some("t2"), ms(950), d),
            Decision::Acquire
        );
        // A new holder restarts the clock.
        assert_eq!(
            o.decide("a", Some("c"), Some("t2"), ms(960), d),
            Decision::Wait
        );
    }
}
