//! What the engine reconciles ([`Key`]) and writes ([`Target`], with an
//! [`Op`] on a [`Body`]), and the one function that performs a write against
//! the API server ([`do_write`]).

use ferry_api::{Cluster, Endpoint, ServiceExport, ServiceImport};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::store::{Item, Kind, Side, Watched};

/// Field manager of every write.
pub(super) const FIELD_MANAGER: &str = "ferry-agent";

/// What is reconciled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Key {
    /// This cluster's export of service (ns, name) to the broker.
    Export(String, String),
    /// The aggregated import of service (ns, name) into this cluster.
    Import(String, String),
    /// A `Cluster` (by name): published if ours, copied if remote.
    Cluster(String),
    /// An `Endpoint` (by name): published if ours, copied if remote.
    Endpoint(String),
}

/// One object the engine writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Target {
    pub side: Side,
    pub kind: Kind,
    pub ns: String,
    pub name: String,
}

impl Target {
    pub(super) fn new(side: Side, kind: Kind, ns: &str, name: &str) -> Target {
        Target {
            side,
            kind,
            ns: ns.into(),
            name: name.into(),
        }
    }
}

/// The body of a server-side apply, serialised by the writer task.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Body {
    Import(Box<ServiceImport>),
    Slice(Box<EndpointSlice>),
    Json(Value),
}

#[derive(Debug)]
pub(super) enum Op {
    /// Server-side apply of the object, then (if any) a merge patch of its status.
    Apply(Body, Option<Value>),
    /// Merge patch of the status only.
    Status(Value),
    Delete,
}

impl Op {
    /// The operation's name in metrics.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Op::Apply(..) => "apply",
            Op::Status(_) => "status",
            Op::Delete => "delete",
        }
    }
}

/// The digests a write makes true: of the main resource and of the status.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Digests {
    pub main: Option<u64>,
    pub status: Option<u64>,
}

/// Why a write failed: the server's HTTP status, when it answered one.
#[derive(Debug)]
pub(super) struct WriteFailed {
    pub code: Option<u16>,
    message: String,
}

impl From<kube::Error> for WriteFailed {
    fn from(e: kube::Error) -> Self {
        WriteFailed {
            code: match &e {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One write of a `K`, answered with the object as stored, reduced.
async fn write_as<K: Watched + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>>(
    client: Client,
    target: &Target,
    op: Op,
) -> Result<Option<Item>, WriteFailed> {
    let api: Api<K> = Api::namespaced(client, &target.ns);
    let status_patch = |status: Value| Patch::Merge(json!({"status": status}));
    let obj = match op {
        Op::Apply(body, status) => {
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let obj = api
                .patch(&target.name, &pp, &Patch::Apply(&body))
                .await
                .map_err(WriteFailed::from)?;
            match status {
                Some(status) => api
                    .patch_status(&target.name, &PatchParams::default(), &status_patch(status))
                    .await
                    .map_err(WriteFailed::from)?,
                None => obj,
            }
        }
        Op::Status(status) => api
            .patch_status(&target.name, &PatchParams::default(), &status_patch(status))
            .await
            .map_err(WriteFailed::from)?,
        Op::Delete => {
            return match api.delete(&target.name, &DeleteParams::default()).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
    };
    Ok(Some(Item::of(obj, target.side)))
}

pub(super) async fn do_write(
    client: Client,
    target: &Target,
    op: Op,
) -> Result<Option<Item>, WriteFailed> {
    match target.kind {
        Kind::ServiceExport => write_as::<ServiceExport>(client, target, op).await,
        Kind::Service => write_as::<Service>(client, target, op).await,
        Kind::EndpointSlice => write_as::<EndpointSlice>(client, target, op).await,
        Kind::ServiceImport => write_as::<ServiceImport>(client, target, op).await,
        Kind::Cluster => write_as::<Cluster>(client, target, op).await,
        Kind::Endpoint => write_as::<Endpoint>(client, target, op).await,
        Kind::Namespace | Kind::Gateway => Err(WriteFailed {
            code: None,
            message: "the agent never writes namespaces or gateways".into(),
        }),
    }
}
