//! Active probes: what runs *inside* the temporary test pods of `diagnose`,
//! `verify` and `benchmark` (`ferry tools probe run|serve`), and the JSON
//! the CLI and those pods exchange ([`spec`]).
//!
//! A probe pod is given its tasks as one JSON argument, runs them
//! ([`run::run`]), and reports by writing the [`spec::Report`] into its own
//! pod's annotation [`RESULT_ANNOTATION`] through the Kubernetes API
//! ([`publish`]), then exits. The CLI reads the annotation. This channel
//! was chosen because it works the same in a sandbox (whose API server
//! serves no `pods/log` and whose runner keeps no termination message) and
//! on a real cluster (with the `ferry-probe` ServiceAccount, allowed to
//! read and patch pods in `ferry-system` only); the report is also printed
//! to stdout, so `kubectl logs` shows it too.
//!
//! A server pod ([`serve::serve`]) echoes UDP and serves TCP echo and
//! byte-sink connections on one port.

pub mod run;
pub mod serve;
pub mod spec;
pub mod stats;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};

pub use spec::{Outcome, Probe, Report, Task, TaskReport};

use crate::{Error, Result};

/// The pod annotation a probe pod writes its [`Report`] into.
pub const RESULT_ANNOTATION: &str = "ferry.dev/probe-result";

/// The port `serve` listens on (UDP and TCP).
pub const SERVE_PORT: u16 = 7790;

/// First byte of a TCP connection to `serve`: echo the rest.
pub const MODE_ECHO: u8 = b'E';
/// First byte of a TCP connection to `serve`: count bytes until EOF.
pub const MODE_SINK: u8 = b'S';
/// First bytes of every raw echo datagram.
pub const RAW_MAGIC: [u8; 4] = *b"FRYP";

/// Writes `report` into this pod's [`RESULT_ANNOTATION`], using the
/// kubeconfig of `$KUBECONFIG` or the pod's service account, and the pod
/// named by `$POD_NAME` in `$POD_NAMESPACE`.
pub async fn publish(report: &Report) -> Result<()> {
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Usage(format!("${k} is not set (the probe runs in a pod)")))
    };
    let (name, namespace) = (env("POD_NAME")?, env("POD_NAMESPACE")?);
    let text = serde_json::to_string(report).map_err(|e| Error::Render(e.to_string()))?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| Error::KubeconfigInvalid {
            what: "the probe pod's credentials".into(),
            reason: e.to_string(),
        })?;
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {RESULT_ANNOTATION: text}}});
    // The API may be briefly unreachable (a gateway failover under test):
    // retry for a few seconds.
    let mut last = None;
    for attempt in 0..20u32 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        match pods
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    let e = last.map_or_else(|| "no attempt".to_string(), |e| e.to_string());
    Err(Error::Status {
        action: format!("writing the probe result into pod {namespace}/{name}"),
        code: 0,
        message: e,
    })
}

#[cfg(test)]
mod tests;
