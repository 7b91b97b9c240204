// Drives `ferry apiserver` with @kubernetes/client-node: what it serves
// beyond plain objects (issue 21 point 6). Run by tests/clients.rs as
// `node node_api_surface.mjs KUBECONFIG` with NODE_PATH at the client's
// node_modules and the server's default service range (100.96.0.0/16).

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

async function rejected(fn, fragment) {
  try {
    await fn();
    return "accepted";
  } catch (e) {
    return e.code === 422 && String(e.body).includes(fragment) ? "" : `${e.code} ${e.body}`;
  }
}

const kc = new k8s.KubeConfig();
kc.loadFromFile(process.argv[2]);
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);

// Service addresses: allocated from the range, checked, immutable.
const svc = (name, spec) => ({ metadata: { name }, spec: { ports: [{ port: 80 }], ...spec } });
const a = await core.createNamespacedService({ namespace: NS, body: svc("a", {}) });
check(a.spec.clusterIP.startsWith("100.96.") && a.spec.clusterIPs[0] === a.spec.clusterIP, `a ClusterIP from the range (${a.spec.clusterIP})`);
let why = await rejected(() => core.createNamespacedService({ namespace: NS, body: svc("b", { clusterIP: a.spec.clusterIP }) }), "provided IP is already allocated");
check(why === "", `a taken address is 422 ${why}`);
why = await rejected(() => core.createNamespacedService({ namespace: NS, body: svc("c", { clusterIP: "0.0.0.0" }) }), "The range of valid IPs is 100.96.0.0/16");
check(why === "", `an address outside the range is 422 ${why}`);
why = await rejected(
  () => core.replaceNamespacedService({ name: "a", namespace: NS, body: { ...a, spec: { ...a.spec, clusterIP: "100.96.0.5", clusterIPs: ["100.96.0.5"] } } }),
  "field is immutable",
);
check(why === "", `clusterIP is immutable ${why}`);
check(a.spec.type === "ClusterIP" && a.spec.sessionAffinity === "None" && a.spec.ports[0].protocol === "TCP", "Service defaults");

// Deployment defaults.
const d = await apps.createNamespacedDeployment({
  namespace: NS,
  body: {
    metadata: { name: "web" },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "nginx:latest" }] } },
    },
  },
});
check(d.spec.replicas === 1 && d.spec.strategy.type === "RollingUpdate" && d.spec.revisionHistoryLimit === 10, "Deployment defaults");
const c = d.spec.template.spec.containers[0];
check(c.imagePullPolicy === "Always" && d.spec.template.spec.restartPolicy === "Always", "pod template defaults");

// ReplicaSets are served.
await apps.createNamespacedReplicaSet({
  namespace: NS,
  body: {
    metadata: { name: "rs" },
    spec: { selector: { matchLabels: { app: "rs" } }, template: { metadata: { labels: { app: "rs" } }, spec: { containers: [{ name: "c", image: "x" }] } } },
  },
});
const list = await apps.listNamespacedReplicaSet({ namespace: NS });
check(list.items.some((r) => r.metadata.name === "rs" && r.spec.replicas === 1), "ReplicaSets list, replicas defaulted");
console.log("all checks passed");
process.exit(0);
