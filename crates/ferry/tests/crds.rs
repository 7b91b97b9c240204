//! `ferry crds` prints exactly the CRDs `ferry-api` generates.

use std::process::Command;

#[test]
fn ferry_crds_prints_the_yaml_stream() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, ferry_api::all_crds_yaml().unwrap());
    // ferry.dev: Cluster, Endpoint, Gateway and Globalnet's four; MCS two;
    // ClusterProperty.
    assert_eq!(stdout.matches("kind: CustomResourceDefinition").count(), 10);
    assert!(stdout.contains("name: serviceimports.multicluster.x-k8s.io"));
    assert!(stdout.contains("name: globalingressips.ferry.dev"));
}

#[test]
fn ferry_crds_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["crds", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("multi-document YAML"), "{help}");
    assert!(help.contains("kubectl apply -f -"), "{help}");
}
