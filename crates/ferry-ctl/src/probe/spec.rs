//! What the CLI asks a probe pod to do ([`Task`]) and what the pod reports
//! back ([`Report`]): the JSON both sides of `ferry tools probe run` agree
//! on. Durations are milliseconds, sizes bytes.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One measurement a probe pod makes. `id` names it in the [`Report`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Names the task in the report (unique within one pod).
    pub id: String,
    /// What to do.
    #[serde(flatten)]
    pub probe: Probe,
}

/// How an echo target answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EchoFormat {
    /// A `ferry tools probe serve` pod: every datagram comes back as is, so
    /// any size can be sent.
    #[default]
    Raw,
    /// A ferry gateway's health checker (its health-check address, inside
    /// the cable): it echoes exactly-sized health probes only.
    Health,
}

/// Record types a [`Probe::Dns`] asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecord {
    /// IPv4 addresses.
    #[default]
    A,
    /// Text (e.g. `dns-version.<zone>`).
    Txt,
}

/// The kinds of measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Probe {
    /// UDP datagrams to `target` (`ip:port`), each waiting for its echo:
    /// loss and round-trip times. Sent with the kernel's default path-MTU
    /// discovery, i.e. with the don't-fragment bit set.
    #[serde(rename_all = "camelCase")]
    Echo {
        /// `ip:port`.
        target: String,
        /// Datagrams to send.
        count: u32,
        /// Pause between sends.
        interval_ms: u64,
        /// How long to wait for the last echo.
        timeout_ms: u64,
        /// UDP payload size (ignored for [`EchoFormat::Health`]).
        #[serde(default)]
        size: usize,
        /// What answers at `target`.
        #[serde(default)]
        format: EchoFormat,
    },
    /// A TCP connection to `target` (`host:port`, a name is resolved first,
    /// again and again within the budget until it resolves) on a `serve`
    /// pod: `bytes` sent and echoed back; reports the negotiated MSS.
    #[serde(rename_all = "camelCase")]
    Tcp {
        /// `host:port`.
        target: String,
        /// Bytes to send and expect back.
        bytes: usize,
        /// Budget for connect, send and echo.
        timeout_ms: u64,
    },
    /// An `A` query for `name` to the pod's resolver (the first
    /// `nameserver` of /etc/resolv.conf: the cluster DNS), as given (no
    /// search list).
    #[serde(rename_all = "camelCase")]
    Dns {
        /// Fully qualified name.
        name: String,
        /// Record type asked for.
        #[serde(default)]
        record: DnsRecord,
        /// Budget per attempt.
        timeout_ms: u64,
        /// Attempts before giving up.
        attempts: u32,
        /// Keep asking (every 100 ms) while the answer has no address, for
        /// up to this long (a name that is about to appear); 0: once.
        #[serde(default)]
        retry_ms: u64,
    },
    /// Path-MTU behaviour towards `target`: datagrams of `size` bytes of
    /// UDP payload (meant to exceed the path MTU) with the don't-fragment
    /// bit, repeated until the kernel reports "message too long" (an ICMP
    /// "fragmentation needed" came back), the target echoes one (the path
    /// carries them), or `timeout_ms` passes (black hole).
    #[serde(rename_all = "camelCase")]
    Pmtu {
        /// `ip:port`.
        target: String,
        /// UDP payload size; 0: the pod interface's MTU minus 28.
        size: usize,
        /// How long to try.
        timeout_ms: u64,
    },
    /// TCP bulk transfer to a `serve` pod: `streams` connections writing
    /// for `duration_ms`; the receiver's byte counts give the throughput.
    #[serde(rename_all = "camelCase")]
    Throughput {
        /// `ip:port`.
        target: String,
        /// Parallel connections.
        streams: u32,
        /// How long to send.
        duration_ms: u64,
    },
    /// A steady UDP echo stream for up to `duration_ms` (failover): one
    /// datagram every `interval_ms`; ends early once an outage (no echo
    /// for 3 intervals + 50 ms, after traffic flowed) is followed by
    /// `recovered_after` echoes in a row, or after `quiet_end_ms` without
    /// any outage.
    #[serde(rename_all = "camelCase")]
    Stream {
        /// `ip:port` of a `serve` pod.
        target: String,
        /// Pause between datagrams.
        interval_ms: u64,
        /// Longest run.
        duration_ms: u64,
        /// Echoes in a row after an outage that end the run.
        recovered_after: u32,
        /// End after this long when no outage was seen (a failover so
        /// quick that no outage shows); 0: run for `duration_ms`.
        #[serde(default)]
        quiet_end_ms: u64,
    },
    /// UDP datagrams carrying `marker` to `target` (a gateway's cable
    /// port), for a [`Probe::Sniff`] on the other side to see.
    #[serde(rename_all = "camelCase")]
    Send {
        /// `ip:port`.
        target: String,
        /// Payload.
        marker: String,
        /// Datagrams.
        count: u32,
        /// Pause between them.
        interval_ms: u64,
    },
    /// Watches every interface of the (host-network) pod for UDP datagrams
    /// to `port`, before any firewall of this node: those carrying `marker`
    /// when one is given, else those from one of `from`. Ends after
    /// `want` matches or `timeout_ms`.
    #[serde(rename_all = "camelCase")]
    Sniff {
        /// Destination UDP port.
        port: u16,
        /// Payload to look for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        marker: Option<String>,
        /// Source addresses to look for (when there is no marker).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<IpAddr>,
        /// Matches that end the watch.
        want: u32,
        /// Longest watch.
        timeout_ms: u64,
    },
}

/// Everything a probe pod did, written into its own annotation
/// [`super::RESULT_ANNOTATION`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The pod's address.
    #[serde(default)]
    pub pod_ip: String,
    /// One entry per task, in task order.
    pub results: Vec<TaskReport>,
}

impl Report {
    /// The outcome of task `id`.
    pub fn get(&self, id: &str) -> Option<&Outcome> {
        self.results.iter().find(|r| r.id == id).map(|r| &r.outcome)
    }
}

/// The outcome of one [`Task`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    /// The task's id.
    pub id: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What one task measured; `Error` when it could not run at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// See [`Probe::Echo`].
    Echo(EchoOutcome),
    /// See [`Probe::Tcp`].
    Tcp(TcpOutcome),
    /// See [`Probe::Dns`].
    Dns(DnsOutcome),
    /// See [`Probe::Pmtu`].
    Pmtu(PmtuOutcome),
    /// See [`Probe::Throughput`].
    Throughput(ThroughputOutcome),
    /// See [`Probe::Stream`].
    Stream(StreamOutcome),
    /// See [`Probe::Send`].
    #[serde(rename_all = "camelCase")]
    Sent {
        /// Datagrams sent.
        count: u32,
        /// The first send error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// See [`Probe::Sniff`].
    Sniff(SniffOutcome),
    /// The task could not run (bad target, socket error, …).
    #[serde(rename_all = "camelCase")]
    Error {
        /// Why.
        message: String,
    },
}

/// Result of [`Probe::Echo`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EchoOutcome {
    /// Datagrams sent.
    pub sent: u32,
    /// Echoes received.
    pub received: u32,
    /// Round-trip times of the echoes, in microseconds, in arrival order.
    pub rtt_us: Vec<u64>,
    /// The first send error, if any (e.g. "message too long").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_error: Option<String>,
}

/// Result of [`Probe::Tcp`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpOutcome {
    /// The address connected to (after name resolution).
    pub address: String,
    /// Connect time, microseconds.
    pub connect_us: u64,
    /// Bytes echoed back.
    pub echoed: usize,
    /// The connection's maximum segment size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mss: Option<u32>,
}

/// Result of [`Probe::Dns`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsOutcome {
    /// The resolver asked.
    pub server: String,
    /// Response code (`NoError`, `NXDomain`, …); `None`: no answer at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Addresses in the answer.
    pub addresses: Vec<IpAddr>,
    /// Texts in the answer (TXT queries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<String>,
    /// Time to the answer (or to giving up), microseconds.
    pub elapsed_us: u64,
}

/// What a too-big don't-fragment datagram met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PmtuVerdict {
    /// The kernel learned a smaller path MTU (an ICMP "fragmentation
    /// needed" came back): senders can adapt.
    Signalled,
    /// The target echoed it: the path carries datagrams of this size.
    Passed,
    /// Nothing came back: such packets vanish silently.
    BlackHoled,
    /// The pod's own interface is no bigger than the size: nothing to test.
    NotNeeded,
}

/// Result of [`Probe::Pmtu`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PmtuOutcome {
    /// UDP payload size sent.
    pub size: usize,
    /// MTU of the pod's interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_mtu: Option<u32>,
    /// The path MTU the kernel holds for the target afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_mtu: Option<u32>,
    /// What happened.
    pub verdict: PmtuVerdict,
}

/// Result of [`Probe::Throughput`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputOutcome {
    /// Connections that carried data.
    pub streams: u32,
    /// Bytes the receiver counted, all streams.
    pub bytes: u64,
    /// Sending time, microseconds (first connect to last byte counted).
    pub elapsed_us: u64,
}

impl ThroughputOutcome {
    /// Bits per second.
    pub fn bits_per_second(&self) -> f64 {
        if self.elapsed_us == 0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / (self.elapsed_us as f64 / 1e6)
        }
    }
}

/// Result of [`Probe::Stream`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamOutcome {
    /// Datagrams sent.
    pub sent: u32,
    /// Echoes received.
    pub received: u32,
    /// Longest time without an echo after the first one, microseconds.
    pub longest_gap_us: u64,
    /// Whether the last datagrams were echoed (traffic flows at the end).
    pub flowing: bool,
    /// Whether the run ended on recovery from an outage.
    pub recovered: bool,
    /// Length of the run, microseconds.
    pub elapsed_us: u64,
}

/// Result of [`Probe::Sniff`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SniffOutcome {
    /// Matching datagrams seen.
    pub seen: u32,
    /// Their source addresses (distinct).
    pub sources: Vec<IpAddr>,
}
