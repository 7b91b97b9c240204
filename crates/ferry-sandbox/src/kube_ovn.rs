//! The kube-ovn objects a kube-ovn-shaped sandbox cluster's API server holds
//! (`ferry sandbox create --cni kube-ovn`): the `subnets.kubeovn.io` CRD and
//! the `ovn-default` and `join` Subnets a default kube-ovn install creates,
//! with the plan's halves of the pod CIDR. It runs no kube-ovn: the nodes'
//! `ovn0` and the masquerade are [`crate::net`]'s.

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::Result;
use crate::plan::{Cidr, Plan};

/// kube-ovn's Subnet CRD, with the fields the sandbox's Subnets use kept
/// as given.
pub fn subnet_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "subnets.kubeovn.io"},
        "spec": {
            "group": "kubeovn.io", "scope": "Cluster",
            "names": {"kind": "Subnet", "listKind": "SubnetList", "plural": "subnets",
                "singular": "subnet", "shortNames": ["subnet"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

fn subnet(name: &str, cidr: Cidr, default: bool, nat_outgoing: bool) -> Value {
    let gateway = cidr.nth(1).to_string();
    json!({
        "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
        "metadata": {"name": name},
        "spec": {
            "cidrBlock": cidr.to_string(), "default": default, "excludeIps": [gateway],
            "gateway": gateway, "gatewayType": "distributed", "natOutgoing": nat_outgoing,
            "protocol": "IPv4", "provider": "ovn", "vpc": "ovn-cluster",
        },
    })
}

/// The `ovn-default` (pods, masqueraded on the way out) and `join`
/// (nodes' `ovn0`) Subnets of `plan`.
pub fn subnets(plan: &Plan) -> Vec<Value> {
    vec![
        subnet("ovn-default", plan.ovn_default_cidr(), true, true),
        subnet("join", plan.join_cidr(), false, false),
    ]
}

/// Writes the CRD, then the Subnets (server-side apply; idempotent).
pub async fn publish(client: &Client, plan: &Plan) -> Result<()> {
    let params = PatchParams::apply("ferry-sandbox").force();
    let crd_gvk = GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&crd_gvk, "customresourcedefinitions"),
    );
    crds.patch("subnets.kubeovn.io", &params, &Patch::Apply(subnet_crd()))
        .await?;
    let gvk = GroupVersionKind::gvk("kubeovn.io", "v1", "Subnet");
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "subnets"),
    );
    for s in subnets(plan) {
        let name = s["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        api.patch(&name, &params, &Patch::Apply(s)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use crate::plan::SandboxCni;

    #[test]
    fn subnets_snapshot() {
        let plan = Plan::new("east", 3, 2, None, None)
            .and_then(|p| p.with_cni(SandboxCni::KubeOvn))
            .expect("a valid plan");
        insta::assert_yaml_snapshot!(subnets(&plan));
    }
}
