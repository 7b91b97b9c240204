//! The defaults kube-apiserver fills into built-in objects on every write
//! (its `SetDefaults_*` functions), so clients read back what they would
//! from a real cluster: Deployment replicas and rollout strategy, pod
//! restart and DNS policies, container pull policies, Service types and
//! port protocols. Only absent fields are filled; nothing set is changed.
//!
//! Not here: values that need the server's state (Service cluster IPs and
//! node ports, see `service_ips`) and what admission plugins add in a real
//! cluster (service account, tolerations, priority).

use serde_json::{Map, Value, json};

use crate::registry::ResourceDef;

/// Fills the defaults of `def`'s objects into `object`.
pub fn apply(def: &ResourceDef, object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                pod_spec(spec);
                spec.entry("enableServiceLinks").or_insert(json!(true));
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                service_spec(spec);
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                deployment_spec(spec);
            }
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
                template(spec);
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                daemon_set_spec(spec);
            }
        }
        _ => {}
    }
}

/// `entry` of `map` as an object, created when absent (left alone when it
/// is something else: validation reports that).
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let v = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
}

fn deployment_spec(spec: &mut Map<String, Value>) {
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    if let Some(strategy) = object_entry(spec, "strategy") {
        let kind = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if kind == "RollingUpdate"
            && let Some(rolling) = object_entry(strategy, "rollingUpdate")
        {
            rolling.entry("maxUnavailable").or_insert(json!("25%"));
            rolling.entry("maxSurge").or_insert(json!("25%"));
        }
    }
    template(spec);
}

fn daemon_set_spec(spec: &mut Map<String, Value>) {
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    if let Some(strategy) = object_entry(spec, "updateStrategy") {
        let kind = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if kind == "RollingUpdate"
            && let Some(rolling) = object_entry(strategy, "rollingUpdate")
        {
            rolling.entry("maxUnavailable").or_insert(json!(1));
            rolling.entry("maxSurge").or_insert(json!(0));
        }
    }
    template(spec);
}

/// The pod template of a workload (`spec.template.spec`).
fn template(spec: &mut Map<String, Value>) {
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(Value::as_object_mut)
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod_spec(pod);
    }
}

/// `SetDefaults_PodSpec` and what it calls for containers and volumes.
fn pod_spec(spec: &mut Map<String, Value>) {
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            container(c);
        }
    }
    for v in spec
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        for source in ["configMap", "secret"] {
            if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
                s.entry("defaultMode").or_insert(json!(0o644));
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    c.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    c.entry("terminationMessagePolicy").or_insert(json!("File"));
    if !c.contains_key("imagePullPolicy")
        && let Some(image) = c.get("image").and_then(Value::as_str)
    {
        let policy = pull_policy(image);
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    for p in c
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        p.entry("protocol").or_insert(json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            p.entry("timeoutSeconds").or_insert(json!(1));
            p.entry("periodSeconds").or_insert(json!(10));
            p.entry("successThreshold").or_insert(json!(1));
            p.entry("failureThreshold").or_insert(json!(3));
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                get.entry("scheme").or_insert(json!("HTTP"));
            }
        }
    }
    for e in c
        .get_mut("env")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        if let Some(field_ref) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            field_ref.entry("apiVersion").or_insert(json!("v1"));
        }
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent` (a digest pins
/// the image as a tag does).
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// `SetDefaults_Service` minus what needs allocation.
fn service_spec(spec: &mut Map<String, Value>) {
    let kind = spec.entry("type").or_insert(json!("ClusterIP")).clone();
    if kind == "ExternalName" {
        return;
    }
    spec.entry("sessionAffinity").or_insert(json!("None"));
    spec.entry("internalTrafficPolicy")
        .or_insert(json!("Cluster"));
    if kind == "NodePort" || kind == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
    spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        port.entry("protocol").or_insert(json!("TCP"));
        if let Some(p) = port.get("port").cloned() {
            port.entry("targetPort").or_insert(p);
        }
    }
}

#[cfg(test)]
mod tests;
