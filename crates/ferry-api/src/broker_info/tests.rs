use super::*;
use serde_json::json;

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn sample() -> BrokerInfo {
    BrokerInfo::new("https://198.18.0.1:6443", PEM, "s3cr3t-token", &[7u8; 32])
}

fn encode_json(v: &serde_json::Value) -> String {
    STANDARD.encode(serde_json::to_vec(v).unwrap())
}

fn valid_json() -> serde_json::Value {
    serde_json::to_value(sample()).unwrap()
}

fn decode_err(v: &serde_json::Value) -> String {
    BrokerInfo::decode(&encode_json(v)).unwrap_err().to_string()
}

#[test]
fn round_trips() {
    let info = sample();
    let text = info.encode().unwrap();
    assert!(!text.contains('\n'));
    assert_eq!(BrokerInfo::decode(&text).unwrap(), info);
    assert_eq!(info.cable_psk_bytes().unwrap(), [7u8; 32]);
    assert_eq!(info.broker_namespace, "ferry-broker");
    assert_eq!(info.clusterset_domain, "clusterset.local");
    assert_eq!(
        serde_json::to_value(info.settings).unwrap(),
        json!({"globalnet": false, "defaultCableDriver": "wireguard", "healthCheckInterval": "100ms",
            "components": ["service-discovery", "connectivity"]})
    );
}

#[test]
fn tolerates_whitespace_and_line_wrapping() {
    let text = sample().encode().unwrap();
    let (a, b) = text.split_at(40);
    let wrapped = format!("  {a}\n{b}\n\n");
    assert_eq!(BrokerInfo::decode(&wrapped).unwrap(), sample());
}

#[test]
fn optional_fields_default() {
    let mut v = valid_json();
    let obj = v.as_object_mut().unwrap();
    obj.remove("brokerNamespace");
    obj.remove("clustersetDomain");
    obj.insert("settings".into(), json!({"defaultCableDriver": "vxlan"}));
    let info = BrokerInfo::decode(&encode_json(&v)).unwrap();
    assert_eq!(info.broker_namespace, "ferry-broker");
    assert_eq!(info.clusterset_domain, "clusterset.local");
    assert_eq!(info.settings.default_cable_driver, CableDriver::Vxlan);
    assert_eq!(
        info.settings.health_check_interval,
        DEFAULT_HEALTH_CHECK_INTERVAL
    );
}

fn obj_without(v: &serde_json::Value, key: &str) -> serde_json::Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove(key);
    v
}

#[test]
fn debug_redacts_secrets() {
    let dbg = format!("{:?}", sample());
    assert!(!dbg.contains("s3cr3t"), "{dbg}");
    assert!(!dbg.contains(&sample().cable_psk), "{dbg}");
    assert!(dbg.contains("https://198.18.0.1:6443"));
}

#[test]
fn malformed_envelopes_are_named() {
    let cases: [(&str, &str); 5] = [
        ("", "broker info is empty"),
        ("   \n", "broker info is empty"),
        ("not base64!", "broker info is not base64"),
        (
            "bm90IGpzb24=",
            "broker info is not valid JSON after base64 decoding: expected ident at line 1 column 2",
        ),
        (
            "WzEsMl0=",
            "broker info must be a JSON object, found an array",
        ),
    ];
    for (input, want) in cases {
        let err = BrokerInfo::decode(input).unwrap_err().to_string();
        assert!(err.starts_with(want), "{input:?}: {err}");
    }
}

#[test]
fn missing_fields_are_named() {
    for field in ["apiServerUrl", "caBundle", "token", "cablePsk"] {
        let err = decode_err(&obj_without(&valid_json(), field));
        assert_eq!(err, format!("broker info is missing field `{field}`"));
        let mut null = valid_json();
        null[field] = serde_json::Value::Null;
        assert_eq!(
            decode_err(&null),
            format!("broker info is missing field `{field}`")
        );
    }
}

#[test]
fn invalid_fields_are_named_with_the_reason() {
    let cases = [
        (
            "apiServerUrl",
            json!(42),
            "field `apiServerUrl` is invalid: invalid type: integer `42`, expected a string",
        ),
        (
            "apiServerUrl",
            json!("198.18.0.1:6443"),
            "field `apiServerUrl` is invalid: \"198.18.0.1:6443\" must start with https://",
        ),
        (
            "apiServerUrl",
            json!("http://198.18.0.1:6443"),
            "must start with https://",
        ),
        (
            "apiServerUrl",
            json!("https://"),
            "field `apiServerUrl` is invalid: \"https://\" is not a URL",
        ),
        ("apiServerUrl", json!("https:// bad host"), "is not a URL"),
        (
            "caBundle",
            json!("not pem"),
            "field `caBundle` is invalid: must be a PEM bundle",
        ),
        (
            "token",
            json!(""),
            "field `token` is invalid: must not be empty",
        ),
        (
            "token",
            json!("a b"),
            "field `token` is invalid: must not contain whitespace",
        ),
        (
            "cablePsk",
            json!("AAAA"),
            "field `cablePsk` is invalid: must decode to 32 bytes, got 3",
        ),
        (
            "cablePsk",
            json!("!!"),
            "field `cablePsk` is invalid: not base64",
        ),
        (
            "brokerNamespace",
            json!("Ferry_Broker"),
            "field `brokerNamespace` is invalid: \"Ferry_Broker\" is not a namespace name",
        ),
        (
            "clustersetDomain",
            json!("cluster..local"),
            "field `clustersetDomain` is invalid: \"cluster..local\" is not a DNS domain: label \"\" must not be empty",
        ),
        (
            "settings",
            json!([]),
            "field `settings` is invalid: must be an object, found an array",
        ),
        (
            "settings",
            json!({"defaultCableDriver": "gre"}),
            "field `settings.defaultCableDriver` is invalid: unknown variant `gre`",
        ),
        (
            "settings",
            json!({"healthCheckInterval": "0s"}),
            "field `settings.healthCheckInterval` is invalid: must be positive",
        ),
        (
            "settings",
            json!({"healthCheckInterval": "soon"}),
            "field `settings.healthCheckInterval` is invalid:",
        ),
        (
            "settings",
            json!({"globalnet": "yes"}),
            "field `settings.globalnet` is invalid: invalid type: string",
        ),
    ];
    for (field, value, want) in cases {
        let mut v = valid_json();
        v[field] = value.clone();
        let err = decode_err(&v);
        assert!(err.contains(want), "{field}={value}: {err}");
    }
}

#[test]
fn encode_refuses_invalid_info() {
    let mut info = sample();
    info.token.clear();
    assert!(matches!(
        info.encode(),
        Err(Error::BrokerInfoInvalidField { field: "token", .. })
    ));
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let mut v = valid_json();
    v["somethingNew"] = json!({"x": 1});
    assert_eq!(BrokerInfo::decode(&encode_json(&v)).unwrap(), sample());
}

#[test]
fn components_parse_serialize_and_refuse_unknown_names() {
    let c = Components::parse_list("connectivity").unwrap();
    assert!(c.connectivity && !c.service_discovery);
    assert_eq!(c.to_string(), "connectivity");
    let both = Components::parse_list(" service-discovery , connectivity ").unwrap();
    assert_eq!(both, Components::default());
    for bad in ["", "globalnet", "connectivity,lighthouse"] {
        let e = Components::parse_list(bad).unwrap_err().to_string();
        assert!(e.contains("unknown component"), "{bad}: {e}");
    }
    let mut v = valid_json();
    v["settings"] = json!({"components": ["service-discovery"]});
    let info = BrokerInfo::decode(&encode_json(&v)).unwrap();
    assert!(!info.settings.components.connectivity);
    assert_eq!(
        serde_json::to_value(info.settings.components).unwrap(),
        json!(["service-discovery"])
    );
    v["settings"] = json!({"components": ["bogus"]});
    assert!(decode_err(&v).contains("settings.components"));
}
