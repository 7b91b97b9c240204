// Drives `ferry apiserver` with the official JavaScript client
// (@kubernetes/client-node), issue 21. Run by tests/clients.rs as
// `node node_compat.mjs KUBECONFIG` with NODE_PATH pointing at the client's
// node_modules; exits non-zero on the first broken expectation.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const k8s = await import(require.resolve("@kubernetes/client-node", { paths: (process.env.NODE_PATH || "").split(":") }));

const NS = "default";

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

async function eventually(fn, what) {
  for (let i = 0; i < 200; i++) {
    if (await fn()) {
      console.log(`ok: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  check(false, `timed out waiting for ${what}`);
}

async function gone(core, name) {
  try {
    await core.readNamespacedConfigMap({ name, namespace: NS });
    return false;
  } catch (e) {
    return e.code === 404;
  }
}

const kc = new k8s.KubeConfig();
kc.loadFromFile(process.argv[2]);
const core = kc.makeApiClient(k8s.CoreV1Api);

// Watch: events arrive (an informer's lifeline).
const seen = [];
const watch = new k8s.Watch(kc);
const done = new Promise((resolve) => {
  watch
    .watch(`/api/v1/namespaces/${NS}/configmaps`, {}, (type, obj) => {
      seen.push(`${type} ${obj.metadata.name}`);
      if (seen.includes("ADDED watched")) resolve();
    }, () => resolve())
    .then((req) => setTimeout(() => { req.abort(); resolve(); }, 5000));
});
await new Promise((r) => setTimeout(r, 200));
await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "watched" } } });
await done;
check(seen.includes("ADDED watched"), `watch delivers events (${seen})`);

// Secret stringData is folded into data and not stored.
const secret = await core.createNamespacedSecret({
  namespace: NS,
  body: { metadata: { name: "s" }, stringData: { password: "hunter2" } },
});
check(secret.stringData === undefined, "stringData is not stored");
check(Buffer.from(secret.data.password, "base64").toString() === "hunter2", "stringData is folded into data");

// Invalid objects are refused with a 422 naming the field.
try {
  await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "typed" }, data: { k: 5 } } });
  check(false, "a ConfigMap with a number in data was accepted");
} catch (e) {
  check(e.code === 422 && String(e.body).includes("data[k]"), "data: {k: 5} is 422 naming data[k]");
}

// Orphan deletion keeps the dependent, without its owner reference.
const owner = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "owner" } } });
await core.createNamespacedConfigMap({
  namespace: NS,
  body: {
    metadata: {
      name: "dependent",
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }],
    },
  },
});
await core.deleteNamespacedConfigMap({ name: "owner", namespace: NS, propagationPolicy: "Orphan" });
await eventually(() => gone(core, "owner"), "the orphaning owner goes");
const dep = await core.readNamespacedConfigMap({ name: "dependent", namespace: NS });
check(!dep.metadata.ownerReferences || dep.metadata.ownerReferences.length === 0, "the orphan stays without its reference");
// Server-side apply: managedFields, a no-op re-apply, conflicts, force.
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const applied = (value) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "applied", namespace: NS },
  data: { k: value },
});
const ssa = k8s.PatchStrategy.ServerSideApply;
const first = await objects.patch(applied("v"), undefined, undefined, "alice", undefined, ssa);
const entry = first.metadata.managedFields[0];
check(entry.manager === "alice" && entry.operation === "Apply" && JSON.stringify(entry.fieldsV1).includes("f:k"),
  "server-side apply records alice's fields in managedFields");
const again = await objects.patch(applied("v"), undefined, undefined, "alice", undefined, ssa);
check(again.metadata.resourceVersion === first.metadata.resourceVersion, "an identical re-apply keeps the resourceVersion");
try {
  await objects.patch(applied("w"), undefined, undefined, "bob", undefined, ssa);
  check(false, "bob changed alice's field without a conflict");
} catch (e) {
  const body = String(e.body);
  check(e.code === 409 && body.includes("FieldManagerConflict") && body.includes(".data.k"),
    "changing alice's field is a 409 naming .data.k");
}
const forced = await objects.patch(applied("w"), undefined, undefined, "bob", true, ssa);
const managers = forced.metadata.managedFields.map((e) => e.manager);
check(forced.data.k === "w" && managers.join() === "bob", `force takes the field (${managers})`);
console.log("all checks passed");
process.exit(0);
