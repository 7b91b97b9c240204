use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_selector_matches_everything() {
    let selector = LabelSelector::parse("").unwrap();
    assert!(selector.is_empty());
    assert!(selector.matches(&labels(&[])));
    assert!(selector.matches(&labels(&[("a", "b")])));
    assert_eq!(selector.to_string(), "");
    assert!(LabelSelector::parse("   ").unwrap().is_empty());
}

#[test]
fn equality_operators() {
    let l = labels(&[("app", "web"), ("tier", "front")]);
    assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
    assert!(LabelSelector::parse("app==web").unwrap().matches(&l));
    assert!(!LabelSelector::parse("app=db").unwrap().matches(&l));
    assert!(LabelSelector::parse("app!=db").unwrap().matches(&l));
    assert!(!LabelSelector::parse("app!=web").unwrap().matches(&l));
    // A missing label satisfies `!=`.
    assert!(LabelSelector::parse("missing!=x").unwrap().matches(&l));
    assert!(
        LabelSelector::parse("app=web,tier=front")
            .unwrap()
            .matches(&l)
    );
    assert!(
        !LabelSelector::parse("app=web,tier=back")
            .unwrap()
            .matches(&l)
    );
}

#[test]
fn set_operators_and_existence() {
    let l = labels(&[("env", "prod"), ("team", "")]);
    assert!(
        LabelSelector::parse("env in (prod,staging)")
            .unwrap()
            .matches(&l)
    );
    assert!(!LabelSelector::parse("env in (dev)").unwrap().matches(&l));
    assert!(LabelSelector::parse("env notin (dev)").unwrap().matches(&l));
    assert!(
        !LabelSelector::parse("env notin (prod)")
            .unwrap()
            .matches(&l)
    );
    assert!(
        LabelSelector::parse("missing notin (prod)")
            .unwrap()
            .matches(&l)
    );
    assert!(LabelSelector::parse("env").unwrap().matches(&l));
    assert!(LabelSelector::parse("team").unwrap().matches(&l));
    assert!(!LabelSelector::parse("!env").unwrap().matches(&l));
    assert!(LabelSelector::parse("!missing").unwrap().matches(&l));
    assert!(LabelSelector::parse("team=").unwrap().matches(&l));
    assert!(LabelSelector::parse("team in ()").unwrap().matches(&l));
}

#[test]
fn numeric_comparisons() {
    let l = labels(&[("gen", "5")]);
    assert!(LabelSelector::parse("gen>4").unwrap().matches(&l));
    assert!(!LabelSelector::parse("gen>5").unwrap().matches(&l));
    assert!(LabelSelector::parse("gen<6").unwrap().matches(&l));
    assert!(!LabelSelector::parse("other<6").unwrap().matches(&l));
    assert!(LabelSelector::parse("gen>x").is_err());
}

#[test]
fn whitespace_is_tolerated() {
    let selector =
        LabelSelector::parse("  env   in ( prod ,  dev ) ,  ! gone , app = web ").unwrap();
    assert_eq!(selector.to_string(), "app=web,env in (dev,prod),!gone");
}

#[test]
fn canonical_display_sorts_keys_and_values() {
    let selector = LabelSelector::parse("z=1,a notin (c,b,b),m,!k,x==y,q!=r").unwrap();
    assert_eq!(selector.to_string(), "a notin (b,c),!k,m,q!=r,x==y,z=1");
}

#[test]
fn keys_may_have_dns_prefix_and_be_keywords() {
    let l = labels(&[("ferry.dev/cluster", "c1"), ("in", "x")]);
    assert!(
        LabelSelector::parse("ferry.dev/cluster=c1")
            .unwrap()
            .matches(&l)
    );
    assert!(LabelSelector::parse("in=x").unwrap().matches(&l));
    assert!(LabelSelector::parse("in in (x)").unwrap().matches(&l));
    assert!(LabelSelector::parse("a in (in,notin)").is_ok());
}

#[test]
fn empty_slots_in_sets_mean_empty_value() {
    for input in [
        "a in ()",
        "a in (,)",
        "a in (,b)",
        "a in (b,)",
        "a in (b,,c)",
    ] {
        let selector = LabelSelector::parse(input).unwrap();
        assert_eq!(selector.requirements()[0].values()[0], "", "{input}");
    }
    assert_eq!(
        LabelSelector::parse("a in (b,,c)").unwrap().to_string(),
        "a in (,b,c)"
    );
}

#[test]
fn errors_name_the_input() {
    let error = LabelSelector::parse("a in (").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"invalid label selector "a in (": expected ')'"#
    );
    for bad in [
        "a in",
        "a in b",
        "a b",
        "a=b c",
        "=b",
        "a,",
        ",a",
        "!",
        "!a=b",
        "a=(b)",
        "a in (b c)",
        "a=b=c",
        "-a=b",
        "a=-b",
        "Foo.com/a=b",
        "/a=b",
        "a/=b",
        "a/b/c=d",
    ] {
        let error = LabelSelector::parse(bad).expect_err(bad);
        assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
    }
    let long_name = "a".repeat(64);
    assert!(LabelSelector::parse(&long_name).is_err());
    assert!(LabelSelector::parse(&"a".repeat(63)).is_ok());
    assert!(LabelSelector::parse(&format!("a={long_name}")).is_err());
}

#[test]
fn required_value_finds_equality_requirements() {
    let selector =
        LabelSelector::parse("ferry.dev/cluster=c1,app in (web),env in (a,b),x!=y").unwrap();
    assert_eq!(selector.required_value("ferry.dev/cluster"), Some("c1"));
    assert_eq!(selector.required_value("app"), Some("web"));
    assert_eq!(selector.required_value("env"), None);
    assert_eq!(selector.required_value("x"), None);
    assert_eq!(selector.required_value("nope"), None);
    assert_eq!(
        LabelSelector::parse("a==b").unwrap().required_value("a"),
        Some("b")
    );
}

#[test]
fn api_label_selector_conversion() {
    let selector = label_selector_from_api(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "gone", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "Exists", "values": []},
        ]
    }))
    .unwrap();
    assert_eq!(selector.to_string(), "app=web,env in (dev,prod),!gone,tier");
    assert!(label_selector_from_api(&json!(null)).unwrap().is_empty());
    assert!(label_selector_from_api(&json!({})).unwrap().is_empty());

    let error =
        label_selector_from_api(&json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}))
            .unwrap_err();
    assert!(error.to_string().contains("\"Bogus\""), "{error}");
    assert!(
        label_selector_from_api(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
            .is_err()
    );
    assert!(
        label_selector_from_api(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        )
        .is_err()
    );
    assert!(label_selector_from_api(&json!({"matchLabels": {"a": 1}})).is_err());
    assert!(label_selector_from_api(&json!({"matchLabels": {"-a": "b"}})).is_err());
}

#[test]
fn field_selector_parsing_and_matching() {
    let selector = FieldSelector::parse("metadata.name=web,spec.nodeName!=n1").unwrap();
    assert_eq!(
        selector.fields().collect::<Vec<_>>(),
        ["metadata.name", "spec.nodeName"]
    );
    assert_eq!(selector.required_value("metadata.name"), Some("web"));
    let pod = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n2"}});
    assert!(selector.matches_with(|f| field_value(&pod, f)));
    let other = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1"}});
    assert!(!selector.matches_with(|f| field_value(&other, f)));
    // A missing field compares as "".
    let unscheduled = json!({"metadata": {"name": "web"}});
    assert!(
        FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .matches_with(|f| field_value(&unscheduled, f))
    );
    assert!(
        FieldSelector::parse("metadata.name==web")
            .unwrap()
            .matches_with(|f| field_value(&pod, f))
    );
    assert!(FieldSelector::parse("").unwrap().is_empty());
}

#[test]
fn field_selector_escaping() {
    let selector = FieldSelector::parse(r"a=x\,y\=z\\,b!=c").unwrap();
    assert_eq!(selector.requirements()[0].value, r"x,y=z\");
    assert_eq!(
        selector.requirements()[1].operator,
        FieldOperator::NotEquals
    );
    assert_eq!(selector.to_string(), r"a=x\,y\=z\\,b!=c");
    assert_eq!(
        FieldSelector::parse(&selector.to_string()).unwrap(),
        selector
    );

    for bad in [r"a=x\y", r"a=x\", "a=b=c", "abc", "=x"] {
        let error = FieldSelector::parse(bad).expect_err(bad);
        assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
    }
}

#[test]
fn field_values_stringify_scalars() {
    let event =
        json!({"involvedObject": {"uid": "u1"}, "count": 3, "ok": true, "list": [1], "nil": null});
    assert_eq!(
        field_value(&event, "involvedObject.uid").as_deref(),
        Some("u1")
    );
    assert_eq!(field_value(&event, "count").as_deref(), Some("3"));
    assert_eq!(field_value(&event, "ok").as_deref(), Some("true"));
    assert_eq!(field_value(&event, "list"), None);
    assert_eq!(field_value(&event, "nil"), None);
    assert_eq!(field_value(&event, "involvedObject.missing"), None);
    assert_eq!(field_value(&event, "count.deeper"), None);
}

// ---------------------------------------------------------------------------
// Property tests.

/// A requirement drawn from small alphabets so that generated label sets
/// often hit the keys and values the selector talks about.
fn requirement_strategy() -> impl Strategy<Value = Requirement> {
    let key = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("in".to_string()),
        Just("ferry.dev/c".to_string()),
        "[a-z][a-z0-9._-]{0,5}[a-z0-9]",
    ];
    let value = prop_oneof![
        Just(String::new()),
        Just("x".to_string()),
        Just("y".to_string()),
        "[A-Za-z0-9]{1,4}"
    ];
    let number = (-20i64..20).prop_map(|n| n.abs().to_string());
    (
        key,
        0..9u8,
        proptest::collection::vec(value.clone(), 1..4),
        value,
        number,
    )
        .prop_map(|(key, op, set, single, number)| {
            let (operator, values) = match op {
                0 => (Operator::Equals, vec![single]),
                1 => (Operator::DoubleEquals, vec![single]),
                2 => (Operator::NotEquals, vec![single]),
                3 => (Operator::In, set),
                4 => (Operator::NotIn, set),
                5 => (Operator::Exists, vec![]),
                6 => (Operator::DoesNotExist, vec![]),
                7 => (Operator::GreaterThan, vec![number]),
                _ => (Operator::LessThan, vec![number]),
            };
            Requirement::new(key, operator, values).unwrap()
        })
}

fn label_set_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        Just("a"),
        Just("b"),
        Just("in"),
        Just("ferry.dev/c"),
        Just("z")
    ];
    let value = prop_oneof![Just(""), Just("x"), Just("y"), Just("3"), Just("15")];
    proptest::collection::btree_map(
        key.prop_map(str::to_string),
        value.prop_map(str::to_string),
        0..5,
    )
}

/// The obvious reading of each operator, written independently of
/// `Requirement::matches`.
fn model_matches(requirement: &Requirement, labels: &BTreeMap<String, String>) -> bool {
    let actual = labels.get(requirement.key()).cloned();
    let values = requirement.values();
    match requirement.operator() {
        Operator::Equals | Operator::DoubleEquals => actual.as_deref() == Some(values[0].as_str()),
        Operator::NotEquals => actual.as_deref() != Some(values[0].as_str()),
        Operator::In => actual.is_some_and(|a| values.contains(&a)),
        Operator::NotIn => actual.is_none_or(|a| !values.contains(&a)),
        Operator::Exists => actual.is_some(),
        Operator::DoesNotExist => actual.is_none(),
        Operator::GreaterThan => actual
            .and_then(|a| a.parse::<i64>().ok())
            .is_some_and(|a| a > values[0].parse::<i64>().unwrap()),
        Operator::LessThan => actual
            .and_then(|a| a.parse::<i64>().ok())
            .is_some_and(|a| a < values[0].parse::<i64>().unwrap()),
    }
}

proptest! {
    #[test]
    fn display_round_trips(requirements in proptest::collection::vec(requirement_strategy(), 0..5)) {
        let selector = LabelSelector::from_requirements(requirements);
        let printed = selector.to_string();
        let reparsed = LabelSelector::parse(&printed).unwrap();
        prop_assert_eq!(&reparsed, &selector, "printed as {}", printed);
        prop_assert_eq!(reparsed.to_string(), printed);
    }

    #[test]
    fn matches_agrees_with_model(
        requirements in proptest::collection::vec(requirement_strategy(), 0..4),
        labels in label_set_strategy(),
    ) {
        let selector = LabelSelector::from_requirements(requirements.clone());
        let expected = requirements.iter().all(|r| model_matches(r, &labels));
        prop_assert_eq!(selector.matches(&labels), expected);
    }

    #[test]
    fn label_parse_never_panics(input in "\\PC{0,40}") {
        let _ = LabelSelector::parse(&input);
    }

    #[test]
    fn label_parse_never_panics_on_selector_alphabet(input in "[a-z!=(), in/.<>-]{0,30}") {
        if let Ok(selector) = LabelSelector::parse(&input) {
            // Whatever parses must print canonically and parse back the same.
            prop_assert_eq!(LabelSelector::parse(&selector.to_string()).unwrap(), selector);
        }
    }

    #[test]
    fn field_parse_never_panics_and_round_trips(input in "[a-z.=!,\\\\ ]{0,30}") {
        if let Ok(selector) = FieldSelector::parse(&input) {
            prop_assert_eq!(FieldSelector::parse(&selector.to_string()).unwrap(), selector);
        }
    }
}

#[test]
fn field_names_must_be_field_paths() {
    // `! =` once parsed as field "!" and printed back as "!=", which does not parse.
    assert!(FieldSelector::parse("! =").is_err());
    assert!(FieldSelector::parse("spec.nodeName!=a,metadata.name=b").is_ok());
}
