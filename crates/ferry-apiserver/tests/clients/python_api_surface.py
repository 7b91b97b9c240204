"""Drives `ferry apiserver` with the official Python client: what it serves
beyond plain objects (issue 21 point 6).

Run by tests/clients.rs as `python python_api_surface.py KUBECONFIG`, with
the server's default service range (100.96.0.0/16); exits non-zero on the
first broken expectation.
"""

import ipaddress
import json
import sys

import urllib3

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

NS = "default"
RANGE = ipaddress.ip_network("100.96.0.0/16")


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def raw_get(path):
    cfg = client.Configuration.get_default_copy()
    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if cfg.api_key_prefix.get("authorization"):
        token = f"{cfg.api_key_prefix['authorization']} {token}"
    http = urllib3.PoolManager(ca_certs=cfg.ssl_ca_cert)
    resp = http.request("GET", cfg.host + path, headers={"Authorization": token})
    check(resp.status == 200, f"GET {path} is 200 ({resp.status})")
    return json.loads(resp.data.decode())


def openapi_has_schemas():
    index = raw_get("/openapi/v3")
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    check("?hash=" in url, "the index lists apps/v1 with a hash")
    doc = raw_get(url)
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    check(
        {"group": "apps", "version": "v1", "kind": "Deployment"}
        in deployment["x-kubernetes-group-version-kind"],
        "the Deployment schema names its group-version-kind",
    )
    replicas = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    check(replicas["type"] == "integer" and replicas["description"], "fields are typed and described")


def rejected(fn, fragment):
    try:
        fn()
    except ApiException as e:
        return e.status == 422 and fragment in e.body, e.body
    return False, "accepted"


def service(name, spec):
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


def services_get_addresses(core):
    a = core.create_namespaced_service(NS, service("alloc-a", {}))
    check(ipaddress.ip_address(a.spec.cluster_ip) in RANGE, f"a ClusterIP from the range ({a.spec.cluster_ip})")
    # Generated clients name the field cluster_i_ps (≤36) or cluster_ips.
    ips = getattr(a.spec, "cluster_ips", None) or getattr(a.spec, "cluster_i_ps", None)
    check(ips == [a.spec.cluster_ip], "clusterIPs matches clusterIP")
    ok, body = rejected(
        lambda: core.create_namespaced_service(NS, service("alloc-b", {"clusterIP": a.spec.cluster_ip})),
        "provided IP is already allocated",
    )
    check(ok, f"a taken address is 422 ({body})")
    ok, body = rejected(
        lambda: core.create_namespaced_service(NS, service("alloc-c", {"clusterIP": "0.0.0.0"})),
        "The range of valid IPs is 100.96.0.0/16",
    )
    check(ok, f"an address outside the range is 422 naming the range ({body})")
    ok, body = rejected(
        lambda: core.patch_namespaced_service("alloc-a", NS, {"spec": {"clusterIP": "100.96.0.5"}}),
        "field is immutable",
    )
    check(ok, f"clusterIP is immutable ({body})")
    headless = core.create_namespaced_service(NS, service("alloc-h", {"clusterIP": "None"}))
    check(headless.spec.cluster_ip == "None", "headless stays None")
    np = core.create_namespaced_service(NS, service("alloc-np", {"type": "NodePort"}))
    port = np.spec.ports[0].node_port
    check(30000 <= port <= 32767, f"a NodePort Service gets a node port ({port})")
    ip = a.spec.cluster_ip
    core.delete_namespaced_service("alloc-a", NS)
    again = core.create_namespaced_service(NS, service("alloc-b", {"clusterIP": ip}))
    check(again.spec.cluster_ip == ip, "a deleted Service's address is free again")


def defaults_are_filled(core, apps):
    container = {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}
    d = apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "defaults"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [container]}},
        },
    })
    s = d.spec
    check(s.replicas == 1 and s.revision_history_limit == 10 and s.progress_deadline_seconds == 600,
          "Deployment replicas, revisionHistoryLimit, progressDeadlineSeconds")
    check(s.strategy.type == "RollingUpdate" and s.strategy.rolling_update.max_surge == "25%"
          and s.strategy.rolling_update.max_unavailable == "25%", "Deployment strategy")
    pod = s.template.spec
    check(pod.restart_policy == "Always" and pod.dns_policy == "ClusterFirst"
          and pod.termination_grace_period_seconds == 30 and pod.scheduler_name == "default-scheduler",
          "pod template restartPolicy, dnsPolicy, grace period, scheduler")
    c = pod.containers[0]
    check(c.image_pull_policy == "Always" and c.termination_message_path == "/dev/termination-log"
          and c.termination_message_policy == "File" and c.ports[0].protocol == "TCP",
          "container pull policy, termination message, port protocol")
    p = core.create_namespaced_pod(NS, {"metadata": {"name": "defaults"}, "spec": {"containers": [
        {"name": "c", "image": "nginx:1.27"}]}})
    check(p.spec.containers[0].image_pull_policy == "IfNotPresent" and p.spec.restart_policy == "Always",
          "Pod defaults (IfNotPresent for a tag)")
    svc = core.read_namespaced_service("alloc-np", NS)
    check(svc.spec.session_affinity == "None" and svc.spec.ports[0].protocol == "TCP"
          and svc.spec.ports[0].target_port == 80 and svc.spec.ip_families == ["IPv4"],
          "Service sessionAffinity, protocol, targetPort, ipFamilies")


def replica_sets_are_served(apps):
    apps.create_namespaced_replica_set(NS, {
        "metadata": {"name": "rs"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "rs"}},
            "template": {"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    })
    names = [r.metadata.name for r in apps.list_namespaced_replica_set(NS).items]
    check("rs" in names, "ReplicaSets list")
    scale = apps.read_namespaced_replica_set_scale("rs", NS)
    check(scale.spec.replicas == 2, "a ReplicaSet's scale subresource")
    dyn = dynamic.DynamicClient(client.ApiClient())
    listed = dyn.resources.get(api_version="apps/v1", kind="ReplicaSet").get(namespace=NS)
    check(any(i.metadata.name == "rs" for i in listed.items), "the dynamic client finds ReplicaSets")


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    openapi_has_schemas()
    services_get_addresses(core)
    defaults_are_filled(core, apps)
    replica_sets_are_served(apps)
    print("all checks passed")


if __name__ == "__main__":
    main()
