#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use super::*;

async fn server(dir: &std::path::Path) -> (ferry_apiserver::RunningServer, kube::Client) {
    let running = ferry_apiserver::start(ferry_apiserver::Config::new(
        dir,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let client = crate::client_from_kubeconfig(Some(&running.admin_kubeconfig))
        .await
        .unwrap();
    (running, client)
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

async fn create(api: &Api<ConfigMap>, name: &str) {
    api.create(&PostParams::default(), &config_map(name))
        .await
        .unwrap();
}

/// Waits until `seen` holds `n` entries.
async fn seen_at_least<T>(what: &str, seen: &Mutex<Vec<T>>, n: usize) {
    within(what, async {
        while seen.lock().unwrap().len() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_follows_the_api_and_wakes_after_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let (running, client) = server(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    create(&api, "one").await;

    let notify = Arc::new(Notify::new());
    let (store, run) = Watch::new(api.clone(), watcher::Config::default()).notify(notify.clone());
    let task = tokio::spawn(run);
    within("the first list", store.wait_until_ready())
        .await
        .unwrap();
    within("the wake-up after the list", notify.notified()).await;
    assert_eq!(store.state().len(), 1);

    create(&api, "two").await;
    within("the wake-up after a create", notify.notified()).await;
    assert_eq!(store.state().len(), 2, "the store has it when woken");

    api.delete("one", &DeleteParams::default()).await.unwrap();
    within("the wake-up after a delete", notify.notified()).await;
    let names: Vec<String> = store
        .state()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["two"]);

    // The API goes away: the store keeps what it had.
    running.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.state().len(), 1, "last state kept");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_change_sees_the_store_after_each_change_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, client) = server(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    create(&api, "a").await;
    create(&api, "b").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let (_store, run) = Watch::new(api.clone(), watcher::Config::default())
        .named("config maps")
        .into_store(move |s| record.lock().unwrap().push(s.state().len()));
    let task = tokio::spawn(run);
    seen_at_least("the list", &seen, 1).await;
    // Two objects listed: one call, with both in the store.
    assert_eq!(*seen.lock().unwrap(), [2]);
    create(&api, "c").await;
    seen_at_least("the create", &seen, 2).await;
    assert_eq!(*seen.lock().unwrap(), [2, 3]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_hands_over_events_until_told_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, client) = server(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    create(&api, "a").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let run = Watch::new(api.clone(), watcher::Config::default())
        .quiet()
        .for_each(move |ev| {
            let what = match &ev {
                watcher::Event::Init => "init".to_string(),
                watcher::Event::InitApply(o) => {
                    format!("list {}", o.metadata.name.clone().unwrap())
                }
                watcher::Event::InitDone => "listed".to_string(),
                watcher::Event::Apply(o) => format!("apply {}", o.metadata.name.clone().unwrap()),
                watcher::Event::Delete(o) => format!("delete {}", o.metadata.name.clone().unwrap()),
            };
            let mut seen = record.lock().unwrap();
            seen.push(what);
            if seen.len() == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    let task = tokio::spawn(run);
    seen_at_least("the list", &seen, 3).await;
    create(&api, "b").await;
    within("the end after Break", task).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["init", "list a", "listed", "apply b"]
    );
}
