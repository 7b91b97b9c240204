//! The server-side-apply shape of the built-in kinds ferry serves: the
//! `+listType` / `+listMapKey` / `+mapType` / `+structType` markers of
//! `k8s.io/api` that Kubernetes publishes as `x-kubernetes-*` extensions,
//! for the fields where they differ from the default. Every other field of
//! a built-in object is a declared field; its objects are structs, its
//! lists atomic.

/// The shape of one built-in field.
#[derive(Debug)]
pub enum Ty {
    /// An object of declared fields; those listed have their own shape,
    /// the others are [`PLAIN`].
    Struct(&'static [(&'static str, &'static Ty)]),
    /// An object whose keys are data (labels, ConfigMap `data`), every
    /// value of this shape.
    Map(&'static Ty),
    /// Owned and replaced as a whole (`+structType=atomic`,
    /// `+mapType=atomic`, `+listType=atomic`).
    Atomic,
    /// A list of objects owned item by item, by these key fields; a key
    /// field an item leaves out takes its default.
    ListMap {
        keys: &'static [&'static str],
        defaults: &'static [(&'static str, &'static str)],
        item: &'static Ty,
    },
    /// A list of scalars owned value by value.
    Set,
}

impl Ty {
    /// The shape of field `name` and whether it is declared (`None`: not
    /// an object shape).
    pub fn field(&'static self, name: &str) -> Option<(&'static Ty, bool)> {
        match self {
            Ty::Struct(fields) => Some((
                fields
                    .iter()
                    .find(|(field, _)| *field == name)
                    .map_or(&PLAIN, |(_, ty)| *ty),
                true,
            )),
            Ty::Map(values) => Some((values, false)),
            Ty::Atomic | Ty::ListMap { .. } | Ty::Set => Some((&PLAIN, true)),
        }
    }
}

/// A struct with nothing special in it.
pub static PLAIN: Ty = Ty::Struct(&[]);
static ATOMIC: Ty = Ty::Atomic;
static SET: Ty = Ty::Set;
static STRING_MAP: Ty = Ty::Map(&PLAIN);

const fn by(keys: &'static [&'static str], item: &'static Ty) -> Ty {
    Ty::ListMap {
        keys,
        defaults: &[],
        item,
    }
}

/// Conditions of every status, keyed by `type`.
static CONDITIONS: Ty = by(&["type"], &PLAIN);

/// `metav1.ObjectMeta`.
pub static OBJECT_META: Ty = Ty::Struct(&[
    ("labels", &STRING_MAP),
    ("annotations", &STRING_MAP),
    ("finalizers", &SET),
    // OwnerReference is `+structType=atomic`.
    ("ownerReferences", &by(&["uid"], &ATOMIC)),
    ("managedFields", &ATOMIC),
]);

/// `+protocol` defaults to TCP when a port leaves it out.
const PORT_DEFAULTS: &[(&str, &str)] = &[("protocol", "TCP")];

static ENV_VAR: Ty = Ty::Struct(&[(
    "valueFrom",
    &Ty::Struct(&[
        ("configMapKeyRef", &ATOMIC),
        ("secretKeyRef", &ATOMIC),
        ("fieldRef", &ATOMIC),
        ("resourceFieldRef", &ATOMIC),
    ]),
)]);

static CONTAINER: Ty = Ty::Struct(&[
    (
        "ports",
        &Ty::ListMap {
            keys: &["containerPort", "protocol"],
            defaults: PORT_DEFAULTS,
            item: &PLAIN,
        },
    ),
    ("env", &by(&["name"], &ENV_VAR)),
    ("volumeMounts", &by(&["mountPath"], &PLAIN)),
    ("volumeDevices", &by(&["devicePath"], &PLAIN)),
    (
        "resources",
        &Ty::Struct(&[
            ("limits", &STRING_MAP),
            ("requests", &STRING_MAP),
            ("claims", &by(&["name"], &PLAIN)),
        ]),
    ),
]);

static CONTAINERS: Ty = by(&["name"], &CONTAINER);

static POD_SPEC: Ty = Ty::Struct(&[
    ("containers", &CONTAINERS),
    ("initContainers", &CONTAINERS),
    ("ephemeralContainers", &CONTAINERS),
    ("volumes", &by(&["name"], &PLAIN)),
    // LocalObjectReference is `+structType=atomic`.
    ("imagePullSecrets", &by(&["name"], &ATOMIC)),
    ("hostAliases", &by(&["ip"], &PLAIN)),
    (
        "topologySpreadConstraints",
        &by(
            &["topologyKey", "whenUnsatisfiable"],
            &Ty::Struct(&[("labelSelector", &ATOMIC)]),
        ),
    ),
    ("resourceClaims", &by(&["name"], &PLAIN)),
    ("schedulingGates", &by(&["name"], &PLAIN)),
    ("nodeSelector", &ATOMIC),
    ("overhead", &STRING_MAP),
]);

static POD_TEMPLATE: Ty = Ty::Struct(&[("metadata", &OBJECT_META), ("spec", &POD_SPEC)]);

static POD: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    ("spec", &POD_SPEC),
    (
        "status",
        &Ty::Struct(&[
            ("conditions", &CONDITIONS),
            ("podIPs", &by(&["ip"], &PLAIN)),
            ("hostIPs", &by(&["ip"], &PLAIN)),
        ]),
    ),
]);

/// Deployment, ReplicaSet, DaemonSet, StatefulSet.
static WORKLOAD: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    (
        "spec",
        // LabelSelector is `+structType=atomic`.
        &Ty::Struct(&[("selector", &ATOMIC), ("template", &POD_TEMPLATE)]),
    ),
    ("status", &Ty::Struct(&[("conditions", &CONDITIONS)])),
]);

static SERVICE: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    (
        "spec",
        &Ty::Struct(&[
            (
                "ports",
                &Ty::ListMap {
                    keys: &["port", "protocol"],
                    defaults: PORT_DEFAULTS,
                    item: &PLAIN,
                },
            ),
            ("selector", &ATOMIC),
        ]),
    ),
    ("status", &Ty::Struct(&[("conditions", &CONDITIONS)])),
]);

static NODE: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    ("spec", &Ty::Struct(&[("podCIDRs", &SET)])),
    (
        "status",
        &Ty::Struct(&[
            ("addresses", &by(&["type"], &PLAIN)),
            ("conditions", &CONDITIONS),
            ("capacity", &STRING_MAP),
            ("allocatable", &STRING_MAP),
        ]),
    ),
]);

static WITH_CONDITIONS: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    ("status", &Ty::Struct(&[("conditions", &CONDITIONS)])),
]);

static CONFIG_MAP: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    ("data", &STRING_MAP),
    ("binaryData", &STRING_MAP),
]);

static SECRET: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    ("data", &STRING_MAP),
    ("stringData", &STRING_MAP),
]);

static SERVICE_ACCOUNT: Ty = Ty::Struct(&[
    ("metadata", &OBJECT_META),
    // ObjectReference is `+structType=atomic`.
    ("secrets", &by(&["name"], &ATOMIC)),
]);

/// Any other built-in kind: only its metadata is special.
static OTHER: Ty = Ty::Struct(&[("metadata", &OBJECT_META)]);

/// The shape of objects of a built-in `(group, kind)`; `None` for custom
/// resources.
pub fn root(group: &str, kind: &str) -> Option<&'static Ty> {
    let ty = match (group, kind) {
        ("", "Pod") => &POD,
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") => &WORKLOAD,
        ("", "Service") => &SERVICE,
        ("", "Node") => &NODE,
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            &WITH_CONDITIONS
        }
        ("", "ConfigMap") => &CONFIG_MAP,
        ("", "Secret") => &SECRET,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "Endpoints" | "Event")
        | ("events.k8s.io", "Event")
        | ("discovery.k8s.io", "EndpointSlice")
        | ("coordination.k8s.io", "Lease")
        | ("rbac.authorization.k8s.io", "Role" | "RoleBinding" | "ClusterRole")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding")
        | ("authentication.k8s.io" | "authorization.k8s.io", _) => &OTHER,
        _ => return None,
    };
    Some(ty)
}
