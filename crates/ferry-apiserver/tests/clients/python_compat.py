"""Drives `ferry apiserver` with the official Python client (issue 21).

Run by tests/clients.rs as `python python_compat.py KUBECONFIG` once per
installed client version; exits non-zero on the first broken expectation.
Each check is something a Python operator or script relies on.
"""

import base64
import json
import sys
import time

import urllib3

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

NS = "default"


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def eventually(fn, what, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            print(f"ok: {what}")
            return
        time.sleep(0.05)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def gone(core, name):
    try:
        core.read_namespaced_config_map(name, NS)
        return False
    except ApiException as e:
        return e.status == 404


def watch_streams_events(core):
    # Clients up to 36 send watch=True; the stream must carry events.
    core.create_namespaced_config_map(NS, {"metadata": {"name": "watched"}})
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, NS, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ("ADDED", "watched") in seen:
            w.stop()
    check(("ADDED", "watched") in seen, f"watch.stream delivers events ({seen})")


def secret_string_data(core):
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="s"), string_data={"password": "hunter2"}
    )
    created = core.create_namespaced_secret(NS, body)
    check(created.string_data is None, "stringData is not stored")
    value = base64.b64decode(created.data["password"]).decode()
    check(value == "hunter2", "stringData is folded into data")


def raw_post(path, body):
    """POSTs JSON as-is (newer clients refuse invalid bodies before sending)."""
    cfg = client.Configuration.get_default_copy()
    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if cfg.api_key_prefix.get("authorization"):
        token = f"{cfg.api_key_prefix['authorization']} {token}"
    http = urllib3.PoolManager(ca_certs=cfg.ssl_ca_cert)
    resp = http.request(
        "POST",
        cfg.host + path,
        body=json.dumps(body).encode(),
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    return resp.status, resp.data.decode()


def invalid_objects_are_422(core):
    status, body = raw_post(
        f"/api/v1/namespaces/{NS}/configmaps",
        {"metadata": {"name": "typed"}, "data": {"k": 5}},
    )
    check(status == 422 and "data[k]" in body, "data: {k: 5} is 422 naming data[k]")
    names = [c.metadata.name for c in core.list_namespaced_config_map(NS).items]
    check("typed" not in names, "nothing invalid was written, the list still decodes")


def orphan_keeps_dependents(core):
    owner = core.create_namespaced_config_map(NS, {"metadata": {"name": "owner"}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "dependent", "ownerReferences": [ref]}}
    )
    core.delete_namespaced_config_map("owner", NS, propagation_policy="Orphan")
    eventually(lambda: gone(core, "owner"), "the orphaning owner goes")
    dep = core.read_namespaced_config_map("dependent", NS)
    check(not dep.metadata.owner_references, "the orphan stays without its reference")


def server_side_apply(api_client):
    # Field ownership: managedFields, no-op re-apply, conflicts, force.
    dyn = dynamic.DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")

    def body(value):
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "applied", "namespace": NS},
            "data": {"k": value},
        }

    first = cms.server_side_apply(body=body("v"), namespace=NS, field_manager="alice")
    entry = first.metadata.managedFields[0]
    check(
        entry.manager == "alice" and entry.operation == "Apply"
        and "f:k" in json.dumps(entry.fieldsV1.to_dict()),
        "server-side apply records alice's fields in managedFields",
    )
    again = cms.server_side_apply(body=body("v"), namespace=NS, field_manager="alice")
    check(
        again.metadata.resourceVersion == first.metadata.resourceVersion,
        "an identical re-apply keeps the resourceVersion",
    )
    try:
        cms.server_side_apply(body=body("w"), namespace=NS, field_manager="bob")
        raise SystemExit("FAIL: bob changed alice's field without a conflict")
    except Exception as e:  # the dynamic client's ConflictError
        text = str(getattr(e, "body", e))
        check(
            getattr(e, "status", None) == 409
            and "FieldManagerConflict" in text and ".data.k" in text,
            "changing alice's field is a 409 naming .data.k",
        )
    forced = cms.server_side_apply(
        body=body("w"), namespace=NS, field_manager="bob", force_conflicts=True
    )
    managers = sorted(e.manager for e in forced.metadata.managedFields)
    check(forced.data.k == "w" and managers == ["bob"], f"force takes the field ({managers})")


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    watch_streams_events(core)
    secret_string_data(core)
    invalid_objects_are_422(core)
    orphan_keeps_dependents(core)
    server_side_apply(client.ApiClient())
    print("all checks passed")


if __name__ == "__main__":
    main()
