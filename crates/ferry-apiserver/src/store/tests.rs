use serde_json::json;

use super::*;

fn put(key: &str, name: &str, precondition: Precondition) -> Write {
    Write::Put {
        key: key.into(),
        object: json!({"kind": "ConfigMap", "metadata": {"name": name, "labels": {"a": "b"}}}),
        precondition,
    }
}

#[tokio::test]
async fn writes_survive_reopen_and_revisions_grow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = Store::open(&path).unwrap();
        let a = store
            .write(put("/core/configmaps/ns/a", "a", Precondition::Absent))
            .await
            .unwrap();
        let b = store
            .write(put("/core/configmaps/ns/b", "b", Precondition::Absent))
            .await
            .unwrap();
        assert!(b.rev > a.rev);
        assert_eq!(a.kind, EventKind::Added);
        let v = a.object.value().unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], a.rev.to_string());
        store
            .write(Write::Delete {
                key: "/core/configmaps/ns/a".into(),
                precondition: Precondition::Exists,
            })
            .await
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(store.get("/core/configmaps/ns/a").is_none());
    let b = store.get("/core/configmaps/ns/b").unwrap();
    assert_eq!(b.labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(store.revision(), 3);
}

#[tokio::test]
async fn preconditions_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let a = store
        .write(put("/k/a", "a", Precondition::Absent))
        .await
        .unwrap();
    let err = store
        .write(put("/k/a", "a", Precondition::Absent))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteOutcomeError::Rejected(WriteRejection::AlreadyExists)
    ));
    let err = store
        .write(put("/k/a", "a", Precondition::Revision(a.rev + 7)))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteOutcomeError::Rejected(WriteRejection::Conflict)
    ));
    let err = store
        .write(put("/k/zz", "zz", Precondition::Exists))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteOutcomeError::Rejected(WriteRejection::NotFound)
    ));
    let m = store
        .write(put("/k/a", "a", Precondition::Revision(a.rev)))
        .await
        .unwrap();
    assert_eq!(m.kind, EventKind::Modified);
}

#[tokio::test]
async fn concurrent_writes_are_group_committed_without_losing_any() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(put(
                    &format!("/k/{i}"),
                    &i.to_string(),
                    Precondition::Absent,
                ))
                .await
        }));
    }
    let mut revs = Vec::new();
    for t in tasks {
        revs.push(t.await.unwrap().unwrap().rev);
    }
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), 64);
    assert_eq!(store.len(), 64);
}

#[tokio::test]
async fn history_replays_and_compaction_expires_old_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    for i in 0..10 {
        let pre = if i == 0 {
            Precondition::Absent
        } else {
            Precondition::Exists
        };
        store.write(put("/k/a", "a", pre)).await.unwrap();
    }
    store
        .write(put("/other/x", "x", Precondition::Absent))
        .await
        .unwrap();
    let events = store.history("/k/", 0, store.revision()).await.unwrap();
    assert_eq!(events.len(), 10);
    assert_eq!(events[0].kind, EventKind::Added);
    assert_eq!(events[1].kind, EventKind::Modified);
    assert!(events[1].prev.is_some());

    let horizon = store.compact(3).await.unwrap();
    assert_eq!(horizon, 8);
    let err = store.history("/k/", 2, store.revision()).await.unwrap_err();
    assert!(matches!(err, crate::error::Error::Expired { .. }));
    let recent = store.history("/k/", 8, store.revision()).await.unwrap();
    assert_eq!(recent.len(), 2);
    // The current object survives compaction.
    assert_eq!(store.get("/k/a").unwrap().rev, 10);
}

#[tokio::test]
async fn list_pages_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    for i in 0..5 {
        store
            .write(put(
                &format!("/k/ns/{i}"),
                &i.to_string(),
                Precondition::Absent,
            ))
            .await
            .unwrap();
    }
    store
        .write(put("/k/nt/9", "9", Precondition::Absent))
        .await
        .unwrap();
    let (_, page, more) = store.list("/k/ns/", None, Some(2), |_, _| true);
    assert_eq!(page.len(), 2);
    assert!(more);
    let last = page[1].0.clone();
    let (_, rest, more) = store.list("/k/ns/", Some(&last), Some(10), |_, _| true);
    assert_eq!(rest.len(), 3);
    assert!(!more);
}

#[tokio::test]
async fn list_at_undoes_later_changes_and_knows_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    for name in ["a", "b", "c"] {
        let key = format!("/core/configmaps/ns/{name}");
        store
            .write(put(&key, name, Precondition::Absent))
            .await
            .unwrap();
    }
    let snapshot = store.revision();
    store
        .write(put("/core/configmaps/ns/d", "d", Precondition::Absent))
        .await
        .unwrap();
    store
        .write(Write::Delete {
            key: "/core/configmaps/ns/b".into(),
            precondition: Precondition::Exists,
        })
        .await
        .unwrap();
    store
        .write(put("/core/configmaps/ns/c", "c2", Precondition::Exists))
        .await
        .unwrap();
    let names = |listing: &Listing| -> Vec<String> {
        listing
            .1
            .iter()
            .map(|(_, s)| {
                s.value().unwrap()["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let all = |_: &str, _: &Stored| true;
    let then = store
        .list_at("/core/configmaps/", None, None, snapshot, all)
        .await
        .unwrap();
    assert_eq!(then.0, snapshot);
    assert_eq!(names(&then), ["a", "b", "c"]);
    let page = store
        .list_at(
            "/core/configmaps/",
            Some("/core/configmaps/ns/a"),
            Some(1),
            snapshot,
            all,
        )
        .await
        .unwrap();
    assert_eq!(names(&page), ["b"]);
    assert!(page.2, "more remain");
    let future = store.revision() + 10;
    let err = store
        .list_at("/core/configmaps/", None, None, future, all)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLargeRevision { .. }));
    store.compact(1).await.unwrap();
    let err = store
        .list_at("/core/configmaps/", None, None, snapshot, all)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired { .. }));
}
