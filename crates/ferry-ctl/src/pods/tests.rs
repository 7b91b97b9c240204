#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

fn run() -> ProbeRun {
    ProbeRun {
        id: "0109adbf".into(),
        image: "ferry:0.1.0".into(),
        timeout: Duration::from_secs(30),
        cleanup: Cleanup::new(),
    }
}

fn container(role: Role) -> serde_json::Value {
    let plan = PodPlan {
        name: "p".into(),
        node: "n0".into(),
        role,
        tasks: Vec::new(),
    };
    let pod = serde_json::to_value(run().pod(&plan).unwrap()).unwrap();
    pod["spec"]["containers"][0].clone()
}

#[test]
fn host_network_probes_keep_net_raw_as_root() {
    // The image's user is non-root: NET_RAW alone would be dropped at exec.
    for role in [Role::Sniffer, Role::Sender, Role::HostClient] {
        let sc = &container(role)["securityContext"];
        assert_eq!(sc["runAsUser"], 0, "{role:?}");
        assert_eq!(sc["capabilities"]["add"], json!(["NET_RAW"]), "{role:?}");
    }
}

#[test]
fn pod_network_probes_run_as_the_images_user_without_added_capabilities() {
    for role in [Role::Server, Role::Client] {
        assert!(container(role)["securityContext"].is_null(), "{role:?}");
    }
}
