//! `ferry export service` / `ferry unexport service`: create or delete the
//! MCS `ServiceExport` of a Service, and report the conditions `ferry agent`
//! sets on it (`Valid`, `Ready`, `Conflict`).

use std::time::{Duration, Instant};

use ferry_api::labels::{CLUSTER_ID_PROPERTY, CLUSTERSET_DOMAIN, CLUSTERSET_IP, SYSTEM_NAMESPACE};
use ferry_api::mcs::condition;
use ferry_api::{ClusterProperty, ServiceExport};
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::table::Table;
use crate::target::Target;
use crate::{Error, Result};

/// How often the export is re-read while waiting for its conditions.
const POLL: Duration = Duration::from_millis(200);

/// What `export` did and saw.
#[derive(Clone, Debug)]
pub struct ExportOutcome {
    /// This cluster's id.
    pub cluster_id: String,
    /// The clusterset DNS zone.
    pub domain: String,
    /// Whether the ServiceExport was created now (false: it existed).
    pub created: bool,
    /// The ServiceExport as last read.
    pub export: ServiceExport,
    /// How long we waited for the agent.
    pub waited: Duration,
}

impl ExportOutcome {
    fn condition(
        &self,
        t: &str,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.export
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
    }

    /// Whether the agent has decided: `Ready=True`, or `Valid=False`.
    pub fn settled(&self) -> bool {
        settled(&self.export)
    }

    /// [`Error::ExportNotValid`] when the agent says `Valid=False`.
    pub fn check(&self) -> Result<()> {
        match self.condition(condition::VALID) {
            Some(c) if c.status == "False" => Err(Error::ExportNotValid {
                namespace: self.export.metadata.namespace.clone().unwrap_or_default(),
                name: self.export.metadata.name.clone().unwrap_or_default(),
                message: if c.message.is_empty() {
                    c.reason.clone()
                } else {
                    c.message.clone()
                },
            }),
            _ => Ok(()),
        }
    }
}

fn settled(e: &ServiceExport) -> bool {
    let conds = e
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    conds.iter().any(|c| {
        (c.type_ == condition::READY && c.status == "True")
            || (c.type_ == condition::VALID && c.status == "False")
    })
}

async fn cluster_id(t: &Target) -> Result<String> {
    let props: Api<ClusterProperty> = Api::all(t.client.clone());
    let not_joined = || Error::NotJoined {
        what: t.label.clone(),
        detail: format!("no ClusterProperty {CLUSTER_ID_PROPERTY}"),
    };
    match props.get_opt(CLUSTER_ID_PROPERTY).await {
        Ok(Some(p)) => Ok(p.spec.value),
        Ok(None) => Err(not_joined()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(not_joined()),
        Err(e) => Err(t.error("reading the cluster id (ClusterProperty)", e)),
    }
}

/// The clusterset domain from the `ferry-broker` Secret, if readable.
async fn domain(t: &Target) -> String {
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), SYSTEM_NAMESPACE);
    match secrets.get_opt(ferry_deploy::BROKER_SECRET).await {
        Ok(Some(s)) => ferry_deploy::BrokerSecret::from_secret(&s)
            .map(|b| b.broker_info.clusterset_domain)
            .unwrap_or_else(|_| CLUSTERSET_DOMAIN.into()),
        _ => CLUSTERSET_DOMAIN.into(),
    }
}

/// Exports Service `namespace/name`: checks the cluster has joined and the
/// Service exists and is exportable, creates its ServiceExport (keeping an
/// existing one), then waits up to `wait` for `ferry agent` to set the
/// conditions. `clusterset_ip` (`--use-clusterset-ip` / `--no-clusterset-ip`)
/// sets the export's `ferry.dev/clusterset-ip` annotation, also on an
/// existing export; `None` leaves it as it is (absent: the clusterset's
/// default, `deploy-broker --enable-clusterset-ip`).
pub async fn export(
    t: &Target,
    namespace: &str,
    name: &str,
    wait: Duration,
    clusterset_ip: Option<bool>,
) -> Result<ExportOutcome> {
    let cluster_id = cluster_id(t).await?;
    let services: Api<Service> = Api::namespaced(t.client.clone(), namespace);
    let svc = services
        .get_opt(name)
        .await
        .map_err(|e| t.error(format!("reading Service {namespace}/{name}"), e))?
        .ok_or_else(|| Error::ServiceNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let type_ = svc
        .spec
        .as_ref()
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "ClusterIP".into());
    if type_ == "ExternalName" {
        return Err(Error::NotExportable {
            namespace: namespace.into(),
            name: name.into(),
            type_,
        });
    }
    let exports: Api<ServiceExport> = Api::namespaced(t.client.clone(), namespace);
    let mut se = ServiceExport::new(name, Default::default());
    se.metadata.namespace = Some(namespace.into());
    let choice = clusterset_ip.map(|on| on.to_string());
    if let Some(on) = &choice {
        se.metadata.annotations = Some([(CLUSTERSET_IP.to_string(), on.clone())].into());
    }
    let created = match exports.create(&PostParams::default(), &se).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 409 && choice.is_some() => {
            let patch = serde_json::json!({"metadata": {"annotations": {CLUSTERSET_IP: choice}}});
            exports
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| t.error(format!("annotating ServiceExport {namespace}/{name}"), e))?;
            false
        }
        Err(kube::Error::Api(s)) if s.code == 409 => false,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::NotJoined {
                what: t.label.clone(),
                detail: "the ServiceExport resource type is not installed".into(),
            });
        }
        Err(e) => return Err(t.error(format!("creating ServiceExport {namespace}/{name}"), e)),
    };
    let start = Instant::now();
    let export = loop {
        let current = exports
            .get(name)
            .await
            .map_err(|e| t.error(format!("reading ServiceExport {namespace}/{name}"), e))?;
        if settled(&current) || start.elapsed() >= wait {
            break current;
        }
        tokio::time::sleep(POLL.min(wait.saturating_sub(start.elapsed()))).await;
    };
    Ok(ExportOutcome {
        cluster_id,
        domain: domain(t).await,
        created,
        export,
        waited: start.elapsed(),
    })
}

/// Deletes the ServiceExport of `namespace/name`; [`Error::NotExported`]
/// if there is none.
pub async fn unexport(t: &Target, namespace: &str, name: &str) -> Result<()> {
    let exports: Api<ServiceExport> = Api::namespaced(t.client.clone(), namespace);
    match exports.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::NotExported {
            namespace: namespace.into(),
            name: name.into(),
        }),
        Err(e) => Err(t.error(format!("deleting ServiceExport {namespace}/{name}"), e)),
    }
}

/// What `export` prints: what happened, the conditions, and what next.
pub fn render_outcome(o: &ExportOutcome) -> String {
    let ns = o.export.metadata.namespace.as_deref().unwrap_or_default();
    let name = o.export.metadata.name.as_deref().unwrap_or_default();
    let mut out = format!(
        "{} service {ns}/{name} from cluster {}\n",
        if o.created {
            "Exported"
        } else {
            "Already exported:"
        },
        o.cluster_id
    );
    let conds = o
        .export
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    if conds.is_empty() {
        out.push_str(&format!(
            "No conditions after {:.1}s: ferry agent has not processed the export yet (is it running? kubectl -n {SYSTEM_NAMESPACE} get pods)\n",
            o.waited.as_secs_f64()
        ));
        return out;
    }
    let mut t = Table::new(&["CONDITION", "STATUS", "REASON", "MESSAGE"]);
    for kind in [condition::VALID, condition::READY, condition::CONFLICT] {
        if let Some(c) = conds.iter().find(|c| c.type_ == kind) {
            t.row(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.replace('\n', " "),
            ]);
        }
    }
    out.push_str(&t.render());
    let is = |t: &str, s: &str| conds.iter().any(|c| c.type_ == t && c.status == s);
    if is(condition::READY, "True") {
        if is(condition::CONFLICT, "True") {
            out.push_str("Exported, but in conflict with another cluster's export: the oldest export's settings win (see the Conflict message).\n");
        }
        out.push_str(&format!(
            "Other clusters reach it as {name}.{ns}.svc.{}; check with `ferry show services`.\n",
            o.domain
        ));
    } else if !is(condition::VALID, "False") {
        out.push_str(&format!(
            "Not ready after {:.1}s; follow it with `ferry show services`.\n",
            o.waited.as_secs_f64()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(conditions: serde_json::Value, created: bool) -> ExportOutcome {
        let export: ServiceExport = serde_json::from_value(json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "nginx", "namespace": "nginx-test"},
            "status": {"conditions": conditions},
        }))
        .unwrap();
        ExportOutcome {
            cluster_id: "cluster1".into(),
            domain: "clusterset.local".into(),
            created,
            export,
            waited: Duration::from_millis(1500),
        }
    }

    fn cond(t: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
        json!({"type": t, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": "2025-01-01T00:00:00Z"})
    }

    #[test]
    fn ready_export() {
        let o = outcome(
            json!([
                cond("Valid", "True", "Valid", "Service is valid for export"),
                cond("Ready", "True", "Exported", "exported to the clusterset"),
                cond("Conflict", "False", "NoConflicts", "no conflicts"),
            ]),
            true,
        );
        assert!(o.settled());
        assert!(o.check().is_ok());
        insta::assert_snapshot!(render_outcome(&o));
    }

    #[test]
    fn invalid_export() {
        let o = outcome(
            json!([
                cond(
                    "Valid",
                    "False",
                    "NoService",
                    "Service nginx-test/nginx does not exist"
                ),
                cond("Ready", "False", "Pending", "not valid"),
            ]),
            false,
        );
        assert!(o.settled());
        let e = o.check().unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        insta::assert_snapshot!(render_outcome(&o));
    }

    #[test]
    fn conflicting_export() {
        let o = outcome(
            json!([
                cond("Valid", "True", "Valid", "ok"),
                cond("Ready", "True", "Exported", "exported"),
                cond(
                    "Conflict",
                    "True",
                    "PortConflict",
                    "port http differs from cluster0's (8080/TCP)"
                ),
            ]),
            true,
        );
        insta::assert_snapshot!(render_outcome(&o));
    }

    #[test]
    fn no_agent() {
        let o = outcome(json!([]), true);
        assert!(!o.settled());
        assert!(o.check().is_ok());
        insta::assert_snapshot!(render_outcome(&o));
    }
}
