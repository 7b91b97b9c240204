//! Columns and cells of the built-in printers, after
//! `k8s.io/kubernetes/pkg/printers/internalversion/printers.go`. Each row
//! function reads the stored JSON directly; absent fields read as Go's zero
//! values, which is what the typed printers see.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{CREATION_TIMESTAMP_DESCRIPTION, ColumnDefinition, human_age};

/// Which built-in printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Printer {
    /// `Name`, `Age`: resources without a dedicated printer.
    Default,
    Pods,
    Services,
    EndpointSlices,
    Nodes,
    Namespaces,
    ConfigMaps,
    Secrets,
    ServiceAccounts,
    Events,
    Leases,
    Deployments,
    ReplicaSets,
    DaemonSets,
    /// `Name`, `Created At` (roles, cluster roles and the generic table
    /// convertor CRDs are served with).
    NameCreatedAt,
    /// The same for CRDs, whose convertor declares the column as `date`.
    CustomResourceDefinitions,
    RoleBindings,
}

impl Printer {
    pub(super) fn for_resource(group: &str, resource: &str) -> Self {
        let group = if group == "core" { "" } else { group };
        match (group, resource) {
            ("", "pods") => Printer::Pods,
            ("", "services") => Printer::Services,
            ("discovery.k8s.io", "endpointslices") => Printer::EndpointSlices,
            ("", "nodes") => Printer::Nodes,
            ("", "namespaces") => Printer::Namespaces,
            ("", "configmaps") => Printer::ConfigMaps,
            ("", "secrets") => Printer::Secrets,
            ("", "serviceaccounts") => Printer::ServiceAccounts,
            ("", "events") => Printer::Events,
            ("coordination.k8s.io", "leases") => Printer::Leases,
            ("apps", "deployments") => Printer::Deployments,
            ("apps", "replicasets") => Printer::ReplicaSets,
            ("apps", "daemonsets") => Printer::DaemonSets,
            ("rbac.authorization.k8s.io", "roles" | "clusterroles") => Printer::NameCreatedAt,
            ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
                Printer::RoleBindings
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                Printer::CustomResourceDefinitions
            }
            _ => Printer::Default,
        }
    }

    pub(super) fn columns(self) -> Vec<ColumnDefinition> {
        let col = ColumnDefinition::new;
        let name = ColumnDefinition::name_column;
        let age = ColumnDefinition::age_column;
        match self {
            Printer::Default => vec![name(), age()],
            Printer::Pods => vec![
                name(),
                col(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                col(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                col(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                age(),
                col(
                    "IP",
                    "string",
                    1,
                    "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                ),
                col(
                    "Node",
                    "string",
                    1,
                    "NodeName indicates in which node this pod is scheduled.",
                ),
                col(
                    "Nominated Node",
                    "string",
                    1,
                    "nominatedNodeName is set only when this pod preempts other pods on the node.",
                ),
                col(
                    "Readiness Gates",
                    "string",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness.",
                ),
            ],
            Printer::Services => vec![
                name(),
                col(
                    "Type",
                    "string",
                    0,
                    "type determines how the Service is exposed.",
                ),
                col(
                    "Cluster-IP",
                    "string",
                    0,
                    "clusterIP is the IP address of the service.",
                ),
                col(
                    "External-IP",
                    "string",
                    0,
                    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                ),
                col(
                    "Port(s)",
                    "string",
                    0,
                    "The list of ports that are exposed by this service.",
                ),
                age(),
                col(
                    "Selector",
                    "string",
                    1,
                    "Route service traffic to pods with label keys and values matching this selector.",
                ),
            ],
            Printer::EndpointSlices => vec![
                name(),
                col(
                    "AddressType",
                    "string",
                    0,
                    "addressType specifies the type of address carried by this EndpointSlice.",
                ),
                col(
                    "Ports",
                    "string",
                    0,
                    "ports specifies the list of network ports exposed by each endpoint in this slice.",
                ),
                col(
                    "Endpoints",
                    "string",
                    0,
                    "endpoints is a list of unique endpoints in this slice.",
                ),
                age(),
            ],
            Printer::Nodes => vec![
                name(),
                col("Status", "string", 0, "The status of the node"),
                col("Roles", "string", 0, "The roles of the node"),
                age(),
                col(
                    "Version",
                    "string",
                    0,
                    "Kubelet Version reported by the node.",
                ),
                col(
                    "Internal-IP",
                    "string",
                    1,
                    "List of addresses reachable to the node.",
                ),
                col(
                    "External-IP",
                    "string",
                    1,
                    "List of addresses reachable to the node.",
                ),
                col(
                    "OS-Image",
                    "string",
                    1,
                    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
                ),
                col(
                    "Kernel-Version",
                    "string",
                    1,
                    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                ),
                col(
                    "Container-Runtime",
                    "string",
                    1,
                    "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
                ),
            ],
            Printer::Namespaces => vec![
                name(),
                col("Status", "string", 0, "The status of the namespace"),
                age(),
            ],
            Printer::ConfigMaps => vec![
                name(),
                col("Data", "string", 0, "Data contains the configuration data."),
                age(),
            ],
            Printer::Secrets => vec![
                name(),
                col(
                    "Type",
                    "string",
                    0,
                    "Used to facilitate programmatic handling of secret data.",
                ),
                col("Data", "string", 0, "Data contains the secret data."),
                age(),
            ],
            Printer::ServiceAccounts => vec![
                name(),
                col(
                    "Secrets",
                    "string",
                    0,
                    "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                ),
                age(),
            ],
            Printer::Events => vec![
                col(
                    "Last Seen",
                    "string",
                    0,
                    "The time at which the most recent occurrence of this event was recorded.",
                ),
                col(
                    "Type",
                    "string",
                    0,
                    "Type of this event (Normal, Warning), new types could be added in the future",
                ),
                col(
                    "Reason",
                    "string",
                    0,
                    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                ),
                col(
                    "Object",
                    "string",
                    0,
                    "The object that this event is about.",
                ),
                col(
                    "Subobject",
                    "string",
                    1,
                    "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
                ),
                col(
                    "Source",
                    "string",
                    1,
                    "The component reporting this event. Should be a short machine understandable string.",
                ),
                col(
                    "Message",
                    "string",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
                col(
                    "First Seen",
                    "string",
                    1,
                    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
                ),
                col(
                    "Count",
                    "string",
                    1,
                    "The number of times this event has occurred.",
                ),
                ColumnDefinition {
                    priority: 1,
                    ..name()
                },
            ],
            Printer::Leases => vec![
                name(),
                col(
                    "Holder",
                    "string",
                    0,
                    "holderIdentity contains the identity of the holder of a current lease.",
                ),
                age(),
            ],
            Printer::Deployments => vec![
                name(),
                col("Ready", "string", 0, "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "string",
                    0,
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                ),
                col(
                    "Available",
                    "string",
                    0,
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                ),
                age(),
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col(
                    "Selector",
                    "string",
                    1,
                    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                ),
            ],
            Printer::ReplicaSets => vec![
                name(),
                col(
                    "Desired",
                    "integer",
                    0,
                    "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1.",
                ),
                col(
                    "Current",
                    "integer",
                    0,
                    "Replicas is the most recently observed number of non-terminating pods.",
                ),
                col(
                    "Ready",
                    "integer",
                    0,
                    "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
                ),
                age(),
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col(
                    "Selector",
                    "string",
                    1,
                    "Label selector for pods. Existing pods selected by this will be the ones affected by this replica set.",
                ),
            ],
            Printer::DaemonSets => vec![
                name(),
                col(
                    "Desired",
                    "integer",
                    0,
                    "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
                ),
                col(
                    "Current",
                    "integer",
                    0,
                    "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
                ),
                col(
                    "Ready",
                    "integer",
                    0,
                    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
                ),
                col(
                    "Up-to-date",
                    "integer",
                    0,
                    "The total number of nodes that are running updated daemon pod",
                ),
                col(
                    "Available",
                    "integer",
                    0,
                    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
                ),
                col(
                    "Node Selector",
                    "string",
                    0,
                    "NodeSelector is a selector which must be true for the pod to fit on a node.",
                ),
                age(),
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col(
                    "Selector",
                    "string",
                    1,
                    "A label query over pods that are managed by the daemon set.",
                ),
            ],
            Printer::NameCreatedAt => vec![
                name(),
                col("Created At", "string", 0, CREATION_TIMESTAMP_DESCRIPTION),
            ],
            Printer::CustomResourceDefinitions => vec![
                name(),
                col("Created At", "date", 0, CREATION_TIMESTAMP_DESCRIPTION),
            ],
            Printer::RoleBindings => vec![
                name(),
                col(
                    "Role",
                    "string",
                    0,
                    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
                ),
                age(),
                col("Users", "string", 1, "Users in the roleBinding"),
                col("Groups", "string", 1, "Groups in the roleBinding"),
                col(
                    "ServiceAccounts",
                    "string",
                    1,
                    "ServiceAccounts in the roleBinding",
                ),
            ],
        }
    }

    pub(super) fn cells(self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let age = json!(age_of(obj, now));
        match self {
            Printer::Default => vec![json!(name(obj)), age],
            Printer::Pods => pod_cells(obj, now),
            Printer::Services => service_cells(obj, age),
            Printer::EndpointSlices => endpoint_slice_cells(obj, age),
            Printer::Nodes => node_cells(obj, age),
            Printer::Namespaces => vec![
                json!(name(obj)),
                json!(text(obj, &["status", "phase"])),
                age,
            ],
            Printer::ConfigMaps => {
                let count = object_len(obj, &["data"]) + object_len(obj, &["binaryData"]);
                vec![json!(name(obj)), json!(count), age]
            }
            Printer::Secrets => {
                vec![
                    json!(name(obj)),
                    json!(text(obj, &["type"])),
                    json!(object_len(obj, &["data"])),
                    age,
                ]
            }
            Printer::ServiceAccounts => {
                vec![json!(name(obj)), json!(list(obj, &["secrets"]).len()), age]
            }
            Printer::Events => event_cells(obj, now),
            Printer::Leases => vec![
                json!(name(obj)),
                json!(text(obj, &["spec", "holderIdentity"])),
                age,
            ],
            Printer::Deployments => deployment_cells(obj, age),
            Printer::ReplicaSets => replica_set_cells(obj, age),
            Printer::DaemonSets => daemon_set_cells(obj, age),
            Printer::NameCreatedAt | Printer::CustomResourceDefinitions => {
                vec![json!(name(obj)), json!(created_at_rfc3339(obj))]
            }
            Printer::RoleBindings => role_binding_cells(obj, age),
        }
    }
}

// ---------------------------------------------------------------------------
// Field access with Go zero-value defaults.

fn at<'v>(obj: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(obj, |value, key| value.get(*key))
}

fn text<'v>(obj: &'v Value, path: &[&str]) -> &'v str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

fn integer(obj: &Value, path: &[&str]) -> i64 {
    at(obj, path).and_then(Value::as_i64).unwrap_or(0)
}

fn list<'v>(obj: &'v Value, path: &[&str]) -> &'v [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn object_len(obj: &Value, path: &[&str]) -> usize {
    at(obj, path)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

fn timestamp(obj: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let raw = at(obj, path)?.as_str()?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn name(obj: &Value) -> &str {
    text(obj, &["metadata", "name"])
}

/// `translateTimestampSince`: `<unknown>` for a zero (absent) time.
fn since(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    time.map_or_else(|| "<unknown>".to_string(), |t| human_age(t, now))
}

fn age_of(obj: &Value, now: DateTime<Utc>) -> String {
    since(timestamp(obj, &["metadata", "creationTimestamp"]), now)
}

fn created_at_rfc3339(obj: &Value) -> String {
    // Go formats the zero time as year 1 when the timestamp is absent.
    timestamp(obj, &["metadata", "creationTimestamp"]).map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// `labels.FormatLabels`: `k=v,…` sorted by key, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let Some(fields) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

fn condition_status<'v>(conditions: &'v [Value], condition_type: &str) -> Option<&'v str> {
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(condition_type))
        .map(|c| text(c, &["status"]))
}

// ---------------------------------------------------------------------------
// Row functions.

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let containers = list(pod, &["spec", "containers"]);
    let init_containers = list(pod, &["spec", "initContainers"]);
    let conditions = list(pod, &["status", "conditions"]);
    let is_restartable_init = |container_name: &str| {
        init_containers.iter().any(|c| {
            text(c, &["name"]) == container_name && text(c, &["restartPolicy"]) == "Always"
        })
    };

    let total = containers.len()
        + init_containers
            .iter()
            .filter(|c| text(c, &["restartPolicy"]) == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut restartable_init_restarts = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;
    let later = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| a.max(b);

    let phase = text(pod, &["status", "phase"]);
    let mut reason = text(pod, &["status", "reason"]).to_string();
    if reason.is_empty() {
        reason = phase.to_string();
    }
    if conditions
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (index, status) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = integer(status, &["restartCount"]);
        restarts += count;
        let finished = timestamp(status, &["lastState", "terminated", "finishedAt"]);
        last_restart = later(last_restart, finished);
        let restartable = is_restartable_init(text(status, &["name"]));
        if restartable {
            restartable_init_restarts += count;
            last_restartable_init_restart = later(last_restartable_init_restart, finished);
        }
        let terminated = at(status, &["state", "terminated"]);
        let waiting_reason = text(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| integer(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && at(status, &["started"]).and_then(Value::as_bool) == Some(true) {
            if at(status, &["ready"]).and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(terminated) = terminated {
            match text(terminated, &["reason"]) {
                "" if integer(terminated, &["signal"]) != 0 => {
                    format!("Init:Signal:{}", integer(terminated, &["signal"]))
                }
                "" => format!("Init:ExitCode:{}", integer(terminated, &["exitCode"])),
                terminated_reason => format!("Init:{terminated_reason}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{index}/{}", init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_status(conditions, "Initialized") == Some("True") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += integer(status, &["restartCount"]);
            last_restart = later(
                last_restart,
                timestamp(status, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = text(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(terminated) = terminated {
                reason = match text(terminated, &["reason"]) {
                    "" if integer(terminated, &["signal"]) != 0 => {
                        format!("Signal:{}", integer(terminated, &["signal"]))
                    }
                    "" => format!("ExitCode:{}", integer(terminated, &["exitCode"])),
                    terminated_reason => terminated_reason.to_string(),
                };
            } else if at(status, &["ready"]).and_then(Value::as_bool) == Some(true)
                && at(status, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_status(conditions, "Ready") == Some("True") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null());
    if deleting && text(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(when) if restarts != 0 => format!("{restarts} ({} ago)", human_age(when, now)),
        _ => restarts.to_string(),
    };
    let pod_ip = list(pod, &["status", "podIPs"])
        .first()
        .map_or("", |ip| text(ip, &["ip"]));
    let pod_ip = if pod_ip.is_empty() {
        text(pod, &["status", "podIP"])
    } else {
        pod_ip
    };
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let satisfied = gates
            .iter()
            .filter(|gate| {
                condition_status(conditions, text(gate, &["conditionType"])) == Some("True")
            })
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(age_of(pod, now)),
        json!(or_none(pod_ip)),
        json!(or_none(text(pod, &["spec", "nodeName"]))),
        json!(or_none(text(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

fn service_cells(service: &Value, age: Value) -> Vec<Value> {
    let service_type = match text(service, &["spec", "type"]) {
        "" => "ClusterIP",
        other => other,
    };
    let cluster_ip = list(service, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(service, &["spec", "clusterIP"]));
    let external_ips: Vec<&str> = list(service, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match service_type {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut addresses: Vec<&str> = list(service, &["status", "loadBalancer", "ingress"])
                .iter()
                .flat_map(|ingress| [text(ingress, &["ip"]), text(ingress, &["hostname"])])
                .filter(|a| !a.is_empty())
                .collect();
            addresses.extend(external_ips);
            if addresses.is_empty() {
                "<pending>".to_string()
            } else {
                addresses.join(",")
            }
        }
        "ExternalName" => text(service, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(service, &["spec", "ports"])
        .iter()
        .map(|port| {
            let protocol = match text(port, &["protocol"]) {
                "" => "TCP",
                other => other,
            };
            let node_port = integer(port, &["nodePort"]);
            if node_port > 0 {
                format!("{}:{node_port}/{protocol}", integer(port, &["port"]))
            } else {
                format!("{}/{protocol}", integer(port, &["port"]))
            }
        })
        .collect();
    vec![
        json!(name(service)),
        json!(service_type),
        json!(or_none(cluster_ip)),
        json!(external_ip),
        json!(or_none(&ports.join(","))),
        age,
        json!(format_labels(at(service, &["spec", "selector"]))),
    ]
}

/// `listWithMoreString`: at most three entries, then `+ N more...`.
fn list_with_more(entries: Vec<String>) -> String {
    const SHOWN: usize = 3;
    if entries.len() > SHOWN {
        return format!(
            "{} + {} more...",
            entries[..SHOWN].join(","),
            entries.len() - SHOWN
        );
    }
    if entries.is_empty() {
        "<unset>".to_string()
    } else {
        entries.join(",")
    }
}

fn endpoint_slice_cells(slice: &Value, age: Value) -> Vec<Value> {
    let ports = list(slice, &["ports"])
        .iter()
        .map(|port| {
            match (
                at(port, &["port"]).and_then(Value::as_i64),
                at(port, &["name"]).and_then(Value::as_str),
            ) {
                (Some(number), _) => number.to_string(),
                (None, Some(port_name)) => port_name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let addresses = list(slice, &["endpoints"])
        .iter()
        .flat_map(|endpoint| list(endpoint, &["addresses"]))
        .map(|address| address.as_str().unwrap_or_default().to_string())
        .collect();
    vec![
        json!(name(slice)),
        json!(text(slice, &["addressType"])),
        json!(list_with_more(ports)),
        json!(list_with_more(addresses)),
        age,
    ]
}

fn node_cells(node: &Value, age: Value) -> Vec<Value> {
    let mut status = match condition_status(list(node, &["status", "conditions"]), "Ready") {
        Some("True") => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if at(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    // `findNodeRoles`: node-role.kubernetes.io/<role> labels and the legacy
    // kubernetes.io/role label, as a sorted set.
    let mut roles = BTreeSet::new();
    if let Some(labels) = at(node, &["metadata", "labels"]).and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if key == "kubernetes.io/role"
                && let Some(role) = value.as_str().filter(|r| !r.is_empty())
            {
                roles.insert(role.to_string());
            }
        }
    }
    let roles: Vec<String> = roles.into_iter().collect();
    let address = |address_type: &str| {
        list(node, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == address_type)
            .map_or_else(
                || "<none>".to_string(),
                |a| text(a, &["address"]).to_string(),
            )
    };
    let info = |field: &str| match text(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        value => value.to_string(),
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age,
        json!(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = match timestamp(event, &["firstTimestamp"]) {
        Some(first) => human_age(first, now),
        None => since(timestamp(event, &["eventTime"]), now),
    };
    let mut last_seen = match timestamp(event, &["lastTimestamp"]) {
        Some(last) => human_age(last, now),
        None => first_seen.clone(),
    };
    let mut count = integer(event, &["count"]);
    if let Some(series) = at(event, &["series"]).filter(|s| s.is_object()) {
        last_seen = since(timestamp(series, &["lastObservedTime"]), now);
        count = integer(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = text(event, &["involvedObject", "kind"]).to_lowercase();
    let object_name = text(event, &["involvedObject", "name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };
    let component = match text(event, &["source", "component"]) {
        "" => text(event, &["reportingComponent"]),
        component => component,
    };
    let instance = match text(event, &["source", "host"]) {
        "" => text(event, &["reportingInstance"]),
        host => host,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_seen),
        json!(text(event, &["type"])),
        json!(text(event, &["reason"])),
        json!(target),
        json!(text(event, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(text(event, &["message"]).trim()),
        json!(first_seen),
        json!(count),
        json!(name(event)),
    ]
}

/// `layoutContainerCells`: container names and images, comma-joined.
fn container_cells(obj: &Value) -> (String, String) {
    let containers = list(obj, &["spec", "template", "spec", "containers"]);
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `metav1.LabelSelectorAsSelector(...).String()`; an unparseable selector
/// prints as `<error>` rather than failing the whole table.
fn selector_text(obj: &Value) -> String {
    let selector = at(obj, &["spec", "selector"]).unwrap_or(&Value::Null);
    crate::label_selector_from_api(selector)
        .map_or_else(|_| "<error>".to_string(), |s| s.to_string())
}

fn deployment_cells(deployment: &Value, age: Value) -> Vec<Value> {
    // spec.replicas defaults to 1 on the server; absent means "not defaulted yet".
    let desired = at(deployment, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = container_cells(deployment);
    vec![
        json!(name(deployment)),
        json!(format!(
            "{}/{desired}",
            integer(deployment, &["status", "readyReplicas"])
        )),
        json!(integer(deployment, &["status", "updatedReplicas"])),
        json!(integer(deployment, &["status", "availableReplicas"])),
        age,
        json!(containers),
        json!(images),
        json!(selector_text(deployment)),
    ]
}

fn replica_set_cells(replica_set: &Value, age: Value) -> Vec<Value> {
    let desired = at(replica_set, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = container_cells(replica_set);
    vec![
        json!(name(replica_set)),
        json!(desired),
        json!(integer(replica_set, &["status", "replicas"])),
        json!(integer(replica_set, &["status", "readyReplicas"])),
        age,
        json!(containers),
        json!(images),
        json!(selector_text(replica_set)),
    ]
}

fn daemon_set_cells(daemon_set: &Value, age: Value) -> Vec<Value> {
    let (containers, images) = container_cells(daemon_set);
    let status = |field: &str| json!(integer(daemon_set, &["status", field]));
    vec![
        json!(name(daemon_set)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        json!(format_labels(at(
            daemon_set,
            &["spec", "template", "spec", "nodeSelector"]
        ))),
        age,
        json!(containers),
        json!(images),
        json!(selector_text(daemon_set)),
    ]
}

fn role_binding_cells(binding: &Value, age: Value) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        text(binding, &["roleRef", "kind"]),
        text(binding, &["roleRef", "name"])
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in list(binding, &["subjects"]) {
        let subject_name = text(subject, &["name"]);
        match text(subject, &["kind"]) {
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}:{subject_name}", text(subject, &["namespace"])))
            }
            _ => {}
        }
    }
    vec![
        json!(name(binding)),
        json!(role),
        age,
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}
