use serde_json::json;

use super::*;
use crate::registry::Registry;

fn def(group: &str, plural: &str) -> ResourceDef {
    let def = Registry::new()
        .by_group_resource(group, plural)
        .expect("a built-in resource");
    (*def).clone()
}

#[test]
fn deployments_get_what_kube_apiserver_fills_in() {
    let mut d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "registry:5000/x/y:1.2", "imagePullPolicy": "Never"},
            {"name": "c", "image": "ghcr.io/x/y:1.2"},
            {"name": "d", "image": "y@sha256:00"}]}}}});
    apply(&def("apps", "deployments"), &mut d);
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["securityContext"], json!({}));
    let c = &pod["containers"];
    assert_eq!(c[0]["imagePullPolicy"], "Always");
    assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c[0]["terminationMessagePolicy"], "File");
    assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
    assert_eq!(c[1]["imagePullPolicy"], "Never");
    assert_eq!(c[2]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c[3]["imagePullPolicy"], "IfNotPresent");
}

#[test]
fn set_fields_are_kept() {
    let mut d = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
    apply(&def("apps", "deployments"), &mut d);
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn pull_policy_reads_the_tag_not_the_registry_port() {
    assert_eq!(pull_policy("localhost:5000/app"), "Always");
    assert_eq!(pull_policy("localhost:5000/app:latest"), "Always");
    assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
}

#[test]
fn services_default_type_affinity_families_and_ports() {
    let mut s = json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}});
    apply(&def("", "services"), &mut s);
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "dns");
    let mut external = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
    apply(&def("", "services"), &mut external);
    assert_eq!(
        external["spec"],
        json!({"type": "ExternalName", "externalName": "x.example"})
    );
}
