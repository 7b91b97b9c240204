//! The bytes this gateway's cable device carried, for the `traffic` field of
//! its `Gateway` status (`ferry show gateways` turns them into each
//! gateway's share of its cluster's cross-cluster traffic).
//!
//! Sampled from the device's own counters (`/proc/net/dev` of the gateway's
//! network namespace), so every cable driver is covered: the WireGuard and
//! IPsec TUN devices and the VXLAN device all count the inner packets. The
//! engine samples only when it refreshes the status anyway (with the RTT
//! figures), so the figures add no API write of their own.

use std::time::Instant;

use ferry_api::CableTraffic;

#[cfg(test)]
mod tests;

/// Where `/proc/net/dev` is read from: the calling process's namespace.
const PROC_NET_DEV: &str = "/proc/self/net/dev";

/// Counters of one device: (received bytes, sent bytes).
type Counters = (u64, u64);

/// Two samples of the cable device's counters and what they say.
#[derive(Debug, Default)]
pub struct TrafficMeter {
    /// The previous sample: when, and the counters then.
    last: Option<(Instant, Counters)>,
    /// What the status reports, from the last two samples.
    report: Option<CableTraffic>,
}

impl TrafficMeter {
    /// Reads `device`'s counters now (none: the cable is down) and keeps them.
    pub fn sample(&mut self, device: Option<&str>) {
        let counters = device.and_then(|d| {
            let text = std::fs::read_to_string(PROC_NET_DEV).ok()?;
            device_counters(&text, d)
        });
        self.record(counters, Instant::now());
    }

    /// Keeps a sample taken at `now`. Without counters everything is
    /// forgotten (the next device starts from zero); counters that went
    /// down mean the device was made anew, and the window starts there.
    pub fn record(&mut self, counters: Option<Counters>, now: Instant) {
        let Some((rx, tx)) = counters else {
            *self = TrafficMeter::default();
            return;
        };
        if let Some((then, (rx0, tx0))) = self.last {
            let (rx0, tx0) = if rx < rx0 || tx < tx0 {
                (0, 0)
            } else {
                (rx0, tx0)
            };
            self.report = Some(CableTraffic {
                tx_bytes: tx,
                rx_bytes: rx,
                window_bytes: (rx - rx0) + (tx - tx0),
                window_seconds: u32::try_from(now.duration_since(then).as_secs())
                    .unwrap_or(u32::MAX),
            });
        }
        self.last = Some((now, (rx, tx)));
    }

    /// What the status says: `None` until two samples were taken.
    pub fn report(&self) -> Option<CableTraffic> {
        self.report
    }
}

/// `device`'s (received, sent) bytes in the text of `/proc/net/dev`:
/// `  name: rx_bytes rx_packets … (8 receive fields) tx_bytes …`.
pub fn device_counters(proc_net_dev: &str, device: &str) -> Option<Counters> {
    proc_net_dev.lines().find_map(|line| {
        let (name, fields) = line.split_once(':')?;
        if name.trim() != device {
            return None;
        }
        let fields: Vec<u64> = fields
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        Some((*fields.first()?, *fields.get(8)?))
    })
}
