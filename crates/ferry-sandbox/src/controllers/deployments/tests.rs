use super::*;

fn set(name: &str, hash: &str, revision: u64, replicas: i32) -> OwnedSet {
    OwnedSet {
        name: name.into(),
        hash: hash.into(),
        revision,
        replicas,
    }
}

#[test]
fn a_first_rollout_creates_revision_one() {
    let plan = plan_rollout("web", "aaa", 3, 10, &[]);
    assert_eq!(
        plan,
        Rollout {
            new_set: "web-aaa".into(),
            create: true,
            revision: 1,
            scale: vec![],
            delete: vec![],
        }
    );
}

#[test]
fn a_new_template_gets_the_next_revision_and_the_old_set_goes_to_zero() {
    let owned = [set("web-aaa", "aaa", 1, 3)];
    let plan = plan_rollout("web", "bbb", 3, 10, &owned);
    assert!(plan.create);
    assert_eq!(plan.revision, 2);
    assert_eq!(plan.scale, vec![("web-aaa".to_string(), 0)]);
}

#[test]
fn scaling_resizes_the_current_set_only() {
    let owned = [set("web-aaa", "aaa", 1, 0), set("web-bbb", "bbb", 2, 3)];
    let plan = plan_rollout("web", "bbb", 5, 10, &owned);
    assert!(!plan.create);
    assert_eq!(plan.revision, 2);
    assert_eq!(plan.scale, vec![("web-bbb".to_string(), 5)]);
}

#[test]
fn going_back_to_an_old_template_revives_its_set_under_a_new_revision() {
    let owned = [set("web-aaa", "aaa", 1, 0), set("web-bbb", "bbb", 2, 3)];
    let plan = plan_rollout("web", "aaa", 3, 10, &owned);
    assert!(!plan.create);
    assert_eq!(plan.new_set, "web-aaa");
    assert_eq!(plan.revision, 3);
    assert_eq!(
        plan.scale,
        vec![("web-aaa".to_string(), 3), ("web-bbb".to_string(), 0)]
    );
}

#[test]
fn history_beyond_the_limit_is_deleted_oldest_first() {
    let owned = [
        set("web-a", "a", 1, 0),
        set("web-b", "b", 2, 0),
        set("web-c", "c", 3, 0),
        set("web-d", "d", 4, 2),
    ];
    let plan = plan_rollout("web", "d", 2, 1, &owned);
    assert_eq!(plan.delete, vec!["web-b".to_string(), "web-a".to_string()]);
    assert!(plan.scale.is_empty());
}
