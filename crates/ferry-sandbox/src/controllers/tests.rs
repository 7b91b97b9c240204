use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::controller::Expectations;
use super::{map_matches, resolve_target_port};

#[test]
fn target_ports() {
    let pod: Pod = serde_json::from_value(json!({
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
    .unwrap();
    let named = IntOrString::String("http".into());
    assert_eq!(resolve_target_port(Some(&named), 80, Some(&pod)), 8080);
    assert_eq!(
        resolve_target_port(Some(&IntOrString::Int(81)), 80, Some(&pod)),
        81
    );
    assert_eq!(resolve_target_port(None, 80, Some(&pod)), 80);
    let missing = IntOrString::String("grpc".into());
    assert_eq!(resolve_target_port(Some(&missing), 80, Some(&pod)), 80);
}

#[test]
fn expectations_cover_cache_lag() {
    let mut e = Expectations::default();
    e.created.insert("new".into(), Instant::now());
    e.deleted.insert("old".into(), Instant::now());
    let seen: HashSet<String> = ["old".to_string(), "kept".to_string()].into();
    let live = e.effective(seen);
    assert_eq!(live, ["new".to_string(), "kept".to_string()].into());
    // Once the cache catches up, the expectations are dropped.
    let seen: HashSet<String> = ["new".to_string(), "kept".to_string()].into();
    let live = e.effective(seen);
    assert_eq!(live.len(), 2);
    assert!(e.created.is_empty() && e.deleted.is_empty());
}

#[test]
fn selector_maps() {
    let sel: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let labels: BTreeMap<String, String> = [
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "2".to_string()),
    ]
    .into();
    assert!(map_matches(&sel, &labels));
    assert!(map_matches(&BTreeMap::new(), &labels));
    assert!(!map_matches(&labels, &sel));
}

#[test]
fn template_hashes_ignore_how_empty_fields_are_spelled() {
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    let stored: PodTemplateSpec = serde_json::from_value(json!({
        "metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    let from_go: PodTemplateSpec = serde_json::from_value(json!({
        "metadata": {"labels": {"app": "a"}, "creationTimestamp": null},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {}}]}
    }))
    .unwrap();
    assert_eq!(
        super::objects::short_hash(&stored),
        super::objects::short_hash(&from_go)
    );
    let other: PodTemplateSpec = serde_json::from_value(json!({
        "metadata": {"labels": {"app": "b"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    assert_ne!(
        super::objects::short_hash(&stored),
        super::objects::short_hash(&other)
    );
}
