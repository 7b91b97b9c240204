//! The checks about the cluster's network setup, read from objects only:
//! `cni` (the CNI its objects show, against the one `join` recorded in its
//! `Cluster`, which chooses the route agent's handler) and
//! `kube-proxy-mode`.

use ferry_api::NetworkPlugin;

use crate::check::{Line, Status};
use crate::cluster::Facts;
use crate::diagnose::checks::Check;

/// The CNI `join` recorded in this cluster's own `Cluster`.
fn recorded(f: &Facts) -> Option<NetworkPlugin> {
    f.snapshot
        .clusters
        .iter()
        .find(|c| c.spec.cluster_id == f.id())
        .and_then(|c| c.spec.network_plugin)
}

/// `cni`: what the CNI's objects show, and whether the route agent's
/// handler (the recorded CNI) fits it.
pub fn cni(f: &Facts) -> Vec<Line> {
    let name = Check::Cni.name();
    if let Some(u) = &f.cni.undrivable {
        return vec![Line::with(
            name,
            Status::Fail,
            format!("this cluster runs {} ({}): {}", u.cni, u.evidence, u.why),
            "ferry's routes and rules do not steer this CNI's traffic; re-join with --cni generic only if its own routing and masquerade are off",
        )];
    }
    let recorded = recorded(f);
    let handler = recorded.unwrap_or_default();
    let line = match (&f.cni.detected, recorded) {
        (Some((found, cidrs)), Some(r)) if *found == r => Line::pass(
            name,
            format!(
                "{found} (its objects record pod CIDRs {}); the route agent uses its {found} handler",
                list(cidrs)
            ),
        ),
        (Some((found, _)), Some(_)) | (Some((found, _)), None) if *found != handler => Line::with(
            name,
            Status::Warn,
            format!(
                "the cluster's objects show {found}, but it joined as {}; the route agent uses the {handler} handler",
                recorded.map_or_else(|| "(nothing recorded)".to_string(), |r| r.to_string())
            ),
            format!("re-run ferry join (it detects the CNI) or pass --cni {found}"),
        ),
        (Some((found, _)), _) => Line::pass(
            name,
            format!("{found}; the route agent uses the {handler} handler"),
        ),
        (None, _) => Line::pass(
            name,
            format!(
                "no kube-ovn, Calico or flannel objects; the route agent uses the {handler} handler"
            ),
        ),
    };
    vec![line]
}

/// `kube-proxy-mode`: the mode in `kube-system/kube-proxy`.
pub fn kube_proxy_mode(f: &Facts) -> Vec<Line> {
    let name = Check::KubeProxyMode.name();
    let line = match f.kube_proxy_mode.as_deref() {
        Some(mode @ ("iptables" | "nftables" | "ipvs")) => Line::pass(
            name,
            format!(
                "kube-proxy runs in {mode} mode (kube-system/kube-proxy config.conf); ferry's rules work with each"
            ),
        ),
        Some(other) => Line::with(
            name,
            Status::Warn,
            format!("kube-proxy's mode is {other:?}, which ferry does not know"),
            "check that Services answer from other clusters: ferry verify",
        ),
        None => Line::pass(
            name,
            "no kube-system/kube-proxy ConfigMap with config.conf: kube-proxy is not kubeadm's or something else serves Services; its mode cannot be read",
        ),
    };
    vec![line]
}

fn list(cidrs: &[ferry_api::Cidr]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
