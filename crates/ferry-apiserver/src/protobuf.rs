//! Decoding of the Kubernetes protobuf bodies kubectl's `create` generators
//! send (kubectl ≥ 1.32 sends `kubectl create namespace|configmap|secret|
//! serviceaccount|deployment|service` as `application/vnd.kubernetes.protobuf`
//! and, unlike for CBOR, never falls back to JSON on a 415), and the reviews
//! `kubectl auth can-i|whoami` send the same way.
//!
//! Only the kinds and fields those generators set are described here; any
//! other field is refused with a clear error instead of being dropped, so no
//! data is silently lost (zero-valued fields, which Go emits for every
//! non-pointer field, carry no data and are skipped). Field numbers are those of the upstream
//! `generated.proto` files.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The envelope prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, Clone, Copy)]
enum Field {
    Str,
    /// An integer that Go emits even when zero; zero means unset.
    Int,
    /// An optional (pointer) integer: present means set, zero included.
    IntKeepZero,
    /// An optional (pointer) bool: present means set.
    Bool,
    /// A plain Go bool, always emitted: false means unset.
    Flag,
    Msg(&'static Schema),
    MapStr,
    MapBytes,
    /// `map<string, Quantity>` (resource limits/requests).
    MapQuantity,
    RepStr,
    RepMsg(&'static Schema),
    Time,
    IntOrString,
    /// A stanza the server sets itself (status): read past, not kept.
    ServerSet,
}

#[derive(Debug)]
struct Schema {
    name: &'static str,
    fields: &'static [(u32, &'static str, Field)],
}

use Field::*;

static OWNER_REFERENCE: Schema = Schema {
    name: "OwnerReference",
    fields: &[
        (1, "kind", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "controller", Bool),
        (7, "blockOwnerDeletion", Bool),
    ],
};

static OBJECT_META: Schema = Schema {
    name: "ObjectMeta",
    fields: &[
        (1, "name", Str),
        (2, "generateName", Str),
        (3, "namespace", Str),
        (4, "selfLink", Str),
        (5, "uid", Str),
        (6, "resourceVersion", Str),
        (7, "generation", Int),
        (8, "creationTimestamp", Time),
        (9, "deletionTimestamp", Time),
        (10, "deletionGracePeriodSeconds", Int),
        (11, "labels", MapStr),
        (12, "annotations", MapStr),
        (13, "ownerReferences", RepMsg(&OWNER_REFERENCE)),
        (14, "finalizers", RepStr),
    ],
};

static NAMESPACE_SPEC: Schema = Schema {
    name: "NamespaceSpec",
    fields: &[(1, "finalizers", RepStr)],
};

static NAMESPACE: Schema = Schema {
    name: "Namespace",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&NAMESPACE_SPEC)),
        (3, "status", ServerSet),
    ],
};

static CONFIG_MAP: Schema = Schema {
    name: "ConfigMap",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", MapStr),
        (3, "binaryData", MapBytes),
        (4, "immutable", Bool),
    ],
};

static SECRET: Schema = Schema {
    name: "Secret",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", MapBytes),
        (3, "type", Str),
        (4, "stringData", MapStr),
        (5, "immutable", Bool),
    ],
};

static OBJECT_REFERENCE: Schema = Schema {
    name: "ObjectReference",
    fields: &[
        (1, "kind", Str),
        (2, "namespace", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "resourceVersion", Str),
        (7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Schema = Schema {
    name: "LocalObjectReference",
    fields: &[(1, "name", Str)],
};

static SERVICE_ACCOUNT: Schema = Schema {
    name: "ServiceAccount",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "secrets", RepMsg(&OBJECT_REFERENCE)),
        (3, "imagePullSecrets", RepMsg(&LOCAL_OBJECT_REFERENCE)),
        (4, "automountServiceAccountToken", Bool),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Schema = Schema {
    name: "LabelSelectorRequirement",
    fields: &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)],
};

static LABEL_SELECTOR: Schema = Schema {
    name: "LabelSelector",
    fields: &[
        (1, "matchLabels", MapStr),
        (2, "matchExpressions", RepMsg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static CONTAINER_PORT: Schema = Schema {
    name: "ContainerPort",
    fields: &[
        (1, "name", Str),
        (2, "hostPort", Int),
        (3, "containerPort", Int),
        (4, "protocol", Str),
        (5, "hostIP", Str),
    ],
};

static ENV_VAR: Schema = Schema {
    name: "EnvVar",
    fields: &[(1, "name", Str), (2, "value", Str)],
};

static RESOURCES: Schema = Schema {
    name: "ResourceRequirements",
    fields: &[(1, "limits", MapQuantity), (2, "requests", MapQuantity)],
};

static CONTAINER: Schema = Schema {
    name: "Container",
    fields: &[
        (1, "name", Str),
        (2, "image", Str),
        (3, "command", RepStr),
        (4, "args", RepStr),
        (5, "workingDir", Str),
        (6, "ports", RepMsg(&CONTAINER_PORT)),
        (7, "env", RepMsg(&ENV_VAR)),
        (8, "resources", Msg(&RESOURCES)),
        (13, "terminationMessagePath", Str),
        (14, "imagePullPolicy", Str),
        (20, "terminationMessagePolicy", Str),
    ],
};

static POD_SPEC: Schema = Schema {
    name: "PodSpec",
    fields: &[
        (2, "containers", RepMsg(&CONTAINER)),
        (3, "restartPolicy", Str),
        (8, "serviceAccountName", Str),
        (20, "initContainers", RepMsg(&CONTAINER)),
    ],
};

static POD_TEMPLATE_SPEC: Schema = Schema {
    name: "PodTemplateSpec",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&POD_SPEC)),
    ],
};

static DEPLOYMENT_STRATEGY: Schema = Schema {
    name: "DeploymentStrategy",
    fields: &[(1, "type", Str)],
};

static DEPLOYMENT_SPEC: Schema = Schema {
    name: "DeploymentSpec",
    fields: &[
        (1, "replicas", IntKeepZero),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "template", Msg(&POD_TEMPLATE_SPEC)),
        (4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        (5, "minReadySeconds", Int),
        (6, "revisionHistoryLimit", IntKeepZero),
        (7, "paused", Flag),
        (9, "progressDeadlineSeconds", IntKeepZero),
    ],
};

static DEPLOYMENT: Schema = Schema {
    name: "Deployment",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&DEPLOYMENT_SPEC)),
        (3, "status", ServerSet),
    ],
};

static SERVICE_PORT: Schema = Schema {
    name: "ServicePort",
    fields: &[
        (1, "name", Str),
        (2, "protocol", Str),
        (3, "port", Int),
        (4, "targetPort", IntOrString),
        (5, "nodePort", Int),
        (6, "appProtocol", Str),
    ],
};

static SERVICE_SPEC: Schema = Schema {
    name: "ServiceSpec",
    fields: &[
        (1, "ports", RepMsg(&SERVICE_PORT)),
        (2, "selector", MapStr),
        (3, "clusterIP", Str),
        (4, "type", Str),
        (5, "externalIPs", RepStr),
        (7, "sessionAffinity", Str),
        (10, "externalName", Str),
        (17, "ipFamilyPolicy", Str),
        (18, "clusterIPs", RepStr),
        (19, "ipFamilies", RepStr),
    ],
};

static SERVICE: Schema = Schema {
    name: "Service",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SERVICE_SPEC)),
        (3, "status", ServerSet),
    ],
};

static RESOURCE_ATTRIBUTES: Schema = Schema {
    name: "ResourceAttributes",
    fields: &[
        (1, "namespace", Str),
        (2, "verb", Str),
        (3, "group", Str),
        (4, "version", Str),
        (5, "resource", Str),
        (6, "subresource", Str),
        (7, "name", Str),
    ],
};

static NON_RESOURCE_ATTRIBUTES: Schema = Schema {
    name: "NonResourceAttributes",
    fields: &[(1, "path", Str), (2, "verb", Str)],
};

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Schema = Schema {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        (1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        (2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

/// What `kubectl auth can-i` sends.
static SELF_SUBJECT_ACCESS_REVIEW: Schema = Schema {
    name: "SelfSubjectAccessReview",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        (3, "status", ServerSet),
    ],
};

/// What `kubectl auth whoami` sends (nothing but an empty object).
static SELF_SUBJECT_REVIEW: Schema = Schema {
    name: "SelfSubjectReview",
    fields: &[(1, "metadata", Msg(&OBJECT_META)), (2, "status", ServerSet)],
};

fn schema_for(api_version: &str, kind: &str) -> Option<&'static Schema> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(&NAMESPACE),
        ("v1", "ConfigMap") => Some(&CONFIG_MAP),
        ("v1", "Secret") => Some(&SECRET),
        ("v1", "ServiceAccount") => Some(&SERVICE_ACCOUNT),
        ("v1", "Service") => Some(&SERVICE),
        ("apps/v1", "Deployment") => Some(&DEPLOYMENT),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(&SELF_SUBJECT_ACCESS_REVIEW),
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Some(&SELF_SUBJECT_REVIEW),
        _ => None,
    }
}

/// A protobuf wire-format reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| "truncated varint".to_string())?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length overflow".to_string())?;
        if len > self.buf.len() {
            return Err("length past the end of the message".into());
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// The next (field number, wire type), or None at the end.
    fn key(&mut self) -> Result<Option<(u32, u8)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| "field number overflow".to_string())?;
        Ok(Some((field, (key & 7) as u8)))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// Decodes a `map<string, V>` entry message: key = 1, value = 2.
fn map_entry(buf: &[u8], value_kind: Field) -> Result<(String, Value), String> {
    let mut r = Reader { buf };
    let mut key = String::new();
    let mut value = Value::Null;
    while let Some((field, wire)) = r.key()? {
        if wire != 2 {
            return Err("unexpected wire type in a map entry".into());
        }
        let b = r.bytes()?;
        match (field, value_kind) {
            (1, _) => key = utf8(b)?,
            (2, MapStr) => value = json!(utf8(b)?),
            (2, MapBytes) => value = json!(base64::engine::general_purpose::STANDARD.encode(b)),
            (2, MapQuantity) => {
                // Quantity { string = 1 }
                let mut q = Reader { buf: b };
                while let Some((f, w)) = q.key()? {
                    if f == 1 && w == 2 {
                        value = json!(utf8(q.bytes()?)?);
                    } else {
                        return Err("unexpected field in a Quantity".into());
                    }
                }
            }
            _ => return Err("unexpected field in a map entry".into()),
        }
    }
    Ok((key, value))
}

fn decode_message(buf: &[u8], schema: &Schema) -> Result<Value, String> {
    let mut r = Reader { buf };
    let mut out = Map::new();
    while let Some((number, wire)) = r.key()? {
        let Some((_, name, kind)) = schema.fields.iter().find(|(n, _, _)| *n == number) else {
            // Go emits every non-pointer field, set or not. A zero value
            // carries no data, so skipping it loses nothing; anything else
            // is refused rather than dropped.
            let zero = match wire {
                0 => r.varint()? == 0,
                2 => r.bytes()?.is_empty(),
                _ => false,
            };
            if zero {
                continue;
            }
            return Err(format!(
                "field {number} of {} is not supported by ferry apiserver's protobuf decoder",
                schema.name
            ));
        };
        let name = (*name).to_string();
        match (kind, wire) {
            (Int | IntKeepZero, 0) => {
                // Two's complement: negative int32/int64 arrive sign-extended.
                let v = r.varint()? as i64;
                if v != 0 || matches!(kind, IntKeepZero) {
                    out.insert(name, json!(v));
                }
            }
            (Bool, 0) => {
                out.insert(name, json!(r.varint()? != 0));
            }
            (Flag, 0) => {
                if r.varint()? != 0 {
                    out.insert(name, json!(true));
                }
            }
            (Str, 2) => {
                let s = utf8(r.bytes()?)?;
                if !s.is_empty() {
                    out.insert(name, json!(s));
                }
            }
            (Msg(inner), 2) => {
                let v = decode_message(r.bytes()?, inner)?;
                out.insert(name, v);
            }
            (RepMsg(inner), 2) => {
                let v = decode_message(r.bytes()?, inner)?;
                push(&mut out, name, v);
            }
            (RepStr, 2) => {
                let s = utf8(r.bytes()?)?;
                push(&mut out, name, json!(s));
            }
            (MapStr | MapBytes | MapQuantity, 2) => {
                let (k, v) = map_entry(r.bytes()?, *kind)?;
                let entry = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = entry.as_object_mut() {
                    m.insert(k, v);
                }
            }
            (Time, 2) => {
                let mut t = Reader { buf: r.bytes()? };
                let mut seconds = 0i64;
                while let Some((f, w)) = t.key()? {
                    match (f, w) {
                        (1, 0) => seconds = t.varint()? as i64,
                        (2, 0) => {
                            t.varint()?;
                        }
                        _ => return Err("unexpected field in a Time".into()),
                    }
                }
                if seconds != 0 {
                    let ts = chrono::DateTime::from_timestamp(seconds, 0)
                        .ok_or_else(|| "timestamp out of range".to_string())?;
                    out.insert(
                        name,
                        json!(ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                }
            }
            (ServerSet, 2) => {
                r.bytes()?;
            }
            (IntOrString, 2) => {
                let mut t = Reader { buf: r.bytes()? };
                let (mut is_string, mut int_val, mut str_val) = (false, 0i64, String::new());
                while let Some((f, w)) = t.key()? {
                    match (f, w) {
                        (1, 0) => is_string = t.varint()? == 1,
                        (2, 0) => int_val = t.varint()? as i64,
                        (3, 2) => str_val = utf8(t.bytes()?)?,
                        _ => return Err("unexpected field in an IntOrString".into()),
                    }
                }
                let v = if is_string {
                    json!(str_val)
                } else {
                    json!(int_val)
                };
                out.insert(name, v);
            }
            _ => {
                return Err(format!(
                    "field {number} ({name}) of {} has an unexpected wire type {wire}",
                    schema.name
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    let entry = out.entry(name).or_insert_with(|| json!([]));
    if let Some(a) = entry.as_array_mut() {
        a.push(v);
    }
}

/// Decodes a `k8s\0`-enveloped protobuf body into the object's JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| "not a Kubernetes protobuf body (missing the k8s envelope)".to_string())?;
    let mut r = Reader { buf: rest };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => {
                let mut tm = Reader { buf: r.bytes()? };
                while let Some((f, w)) = tm.key()? {
                    match (f, w) {
                        (1, 2) => api_version = utf8(tm.bytes()?)?,
                        (2, 2) => kind = utf8(tm.bytes()?)?,
                        _ => return Err("unexpected field in TypeMeta".into()),
                    }
                }
            }
            (2, 2) => raw = Some(r.bytes()?),
            (3 | 4, 2) => {
                r.bytes()?;
            }
            _ => return Err("unexpected field in the protobuf envelope".into()),
        }
    }
    let schema = schema_for(&api_version, &kind).ok_or_else(|| {
        format!("ferry apiserver decodes protobuf only for the objects kubectl's create generators make; {api_version} {kind} is not one of them")
    })?;
    let mut object = decode_message(raw.unwrap_or_default(), schema)?;
    if let Some(o) = object.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests;
