//! The probe pod's side of the measurements: each [`Task`] run against
//! real sockets, failures turned into [`Outcome::Error`], never a panic.
//! All tasks of a pod run concurrently. One file per kind of probe.

mod dns;
mod pmtu;
mod sniff;
mod sockets;
mod tcp;
mod udp;

use std::time::Duration;

use self::dns::dns;
pub use self::dns::query;
use self::pmtu::pmtu;
pub use self::sniff::parse_udp;
use self::sniff::sniff;
use self::tcp::{tcp, throughput};
use self::udp::{echo, send, stream};
use crate::probe::spec::*;

/// Runs every task (concurrently) and collects their outcomes in order.
pub async fn run(tasks: &[Task]) -> Report {
    let results = futures::future::join_all(tasks.iter().map(|t| async move {
        TaskReport {
            id: t.id.clone(),
            outcome: run_one(&t.probe).await,
        }
    }))
    .await;
    Report {
        pod_ip: std::env::var("POD_IP").unwrap_or_default(),
        results,
    }
}

/// Runs one task.
pub async fn run_one(p: &Probe) -> Outcome {
    let r = match p {
        Probe::Echo {
            target,
            count,
            interval_ms,
            timeout_ms,
            size,
            format,
        } => echo(target, *count, *interval_ms, *timeout_ms, *size, *format)
            .await
            .map(Outcome::Echo),
        Probe::Tcp {
            target,
            bytes,
            timeout_ms,
        } => tcp(target, *bytes, *timeout_ms).await.map(Outcome::Tcp),
        Probe::Dns {
            name,
            record,
            timeout_ms,
            attempts,
            retry_ms,
        } => dns(name, *record, *timeout_ms, *attempts, *retry_ms)
            .await
            .map(Outcome::Dns),
        Probe::Pmtu {
            target,
            size,
            timeout_ms,
        } => pmtu(target, *size, *timeout_ms).await.map(Outcome::Pmtu),
        Probe::Throughput {
            target,
            streams,
            duration_ms,
        } => throughput(target, *streams, *duration_ms)
            .await
            .map(Outcome::Throughput),
        Probe::Stream {
            target,
            interval_ms,
            duration_ms,
            recovered_after,
            quiet_end_ms,
        } => stream(
            target,
            *interval_ms,
            *duration_ms,
            *recovered_after,
            *quiet_end_ms,
        )
        .await
        .map(Outcome::Stream),
        Probe::Send {
            target,
            marker,
            count,
            interval_ms,
        } => send(target, marker, *count, *interval_ms)
            .await
            .map(|(count, error)| Outcome::Sent { count, error }),
        Probe::Sniff {
            port,
            marker,
            from,
            want,
            timeout_ms,
        } => {
            let (port, marker, from, want, timeout) = (
                *port,
                marker.clone(),
                from.clone(),
                *want,
                Duration::from_millis(*timeout_ms),
            );
            match tokio::task::spawn_blocking(move || {
                sniff(port, marker.as_deref(), &from, want, timeout)
            })
            .await
            {
                Ok(r) => r.map(Outcome::Sniff),
                Err(e) => Err(format!("sniffer thread: {e}")),
            }
        }
    };
    r.unwrap_or_else(|message| Outcome::Error { message })
}
