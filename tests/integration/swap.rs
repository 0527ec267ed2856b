//! The seed's story: state survives a hot swap and the new version's behaviour is live.

use hotswap::{Direction, Node, Policy, ProcessRef, SpawnSpec, SwapOptions};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn state_survives_a_swap_and_v1_logs_are_live() {
    capture_guest_logs();
    let (node, kv) = node_with_kv().await;
    let pid = node.process(&kv).expect("kv").pid();

    // What kv logged about its keys.
    let own_lines = || -> Vec<(String, String)> {
        guest_lines(&node, pid)
            .into_iter()
            .filter(|l| l.message.contains("seed-"))
            .map(|l| (l.vsn, l.message))
            .collect()
    };
    assert_eq!(put(&node, &kv, "seed-a", json!(42)).await, json!(null));
    assert_eq!(get(&node, &kv, "seed-a").await, json!(42));
    assert!(own_lines().is_empty(), "v0 does not log: {:?}", own_lines());

    let report = node
        .swap_file(&kv, guest("kv-v1"), SwapOptions::default())
        .await
        .expect("swap to v1");
    assert_eq!(
        (report.from_vsn.as_str(), report.to_vsn.as_str()),
        ("0", "1")
    );
    assert_eq!(report.pid, pid, "a swap keeps the pid");
    assert_eq!(report.name.as_deref(), Some("kv"));
    assert_eq!(report.direction, Direction::Upgrade);
    assert!(report.pause <= report.total);
    assert_eq!(report.state_bytes, br#"{"entries":{"seed-a":42}}"#.len());
    assert_eq!(vsn(&node, &kv), "1");

    assert_eq!(get(&node, &kv, "seed-a").await, json!(42), "state survived");
    put(&node, &kv, "seed-b", json!("x")).await;
    let lines = own_lines();
    assert_eq!(lines.len(), 2, "one log line per get and put: {lines:?}");
    assert!(lines.iter().all(|(vsn, _)| vsn == "1"), "{lines:?}");
    assert!(lines[0].1.contains("get seed-a -> 42"), "{lines:?}");
    assert!(lines[1].1.contains("put seed-b"), "{lines:?}");
    assert_eq!(
        state(&node, &kv).await,
        json!({"entries": {"seed-a": 42, "seed-b": "x"}})
    );
}

#[tokio::test]
async fn a_downgrade_goes_back_to_v0_with_the_state() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!([1, 2])).await;
    node.swap_file(&kv, guest("kv-v1"), SwapOptions::default())
        .await
        .expect("upgrade");
    put(&node, &kv, "b", json!(2)).await;
    let options = SwapOptions {
        direction: Direction::Downgrade,
        ..SwapOptions::default()
    };
    let report = node
        .swap_file(&kv, guest("kv-v0"), options)
        .await
        .expect("downgrade");
    assert_eq!(
        (report.from_vsn.as_str(), report.to_vsn.as_str()),
        ("1", "0")
    );
    assert_eq!(report.direction, Direction::Downgrade);
    assert_eq!(vsn(&node, &kv), "0");
    assert_eq!(get(&node, &kv, "a").await, json!([1, 2]));
    assert_eq!(get(&node, &kv, "b").await, json!(2));
}

#[tokio::test]
async fn loading_the_same_bytes_twice_gives_the_same_version() {
    let (node, _kv) = node_with_kv().await;
    let again = node.load_file("kv", guest("kv-v0")).await.expect("load");
    let modules = node.modules();
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].versions.len(), 1, "no second copy of v0");
    assert_eq!(&*again.vsn, "0");
    node.load_file("kv", guest("kv-v1")).await.expect("load v1");
    let vsns: Vec<_> = node.modules()[0]
        .versions
        .iter()
        .map(|v| v.vsn.clone())
        .collect();
    assert_eq!(vsns, ["0", "1"]);
}

/// Reading a state back holds one parsed value at a time, not all of them: a state of many
/// small objects (each parsed into a map several times its text) is adopted, by a
/// `replace-state` and then by a swap, under a memory limit of a few times its size.
#[tokio::test]
async fn a_state_of_many_objects_is_adopted_within_a_few_times_its_size() {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("kv", guest("kv-v0"))
        .await
        .expect("load kv v0");
    let policy = Policy {
        memory_limit: 6 << 20,
        ..Policy::default()
    };
    node.spawn(SpawnSpec::new("kv").name("kv").policy(policy))
        .await
        .expect("spawn kv");
    let kv = ProcessRef::from("kv");
    let entries: serde_json::Map<String, serde_json::Value> = (0..15_000)
        .map(|i| (format!("key{i:06}"), json!({"a": [1, 2, 3], "b": "xyz"})))
        .collect();
    let state = json!({ "entries": entries }).to_string().into_bytes();
    assert!(state.len() > 500_000, "{} bytes", state.len());
    node.replace_state(&kv, state, Vec::new())
        .await
        .expect("replace-state");
    assert_eq!(
        call_json(&node, &kv, json!({"op": "count"})).await,
        json!(15_000)
    );
    node.swap_file(&kv, guest("kv-v1"), SwapOptions::default())
        .await
        .expect("swap");
    assert_eq!(vsn(&node, &kv), "1");
    assert_eq!(
        get(&node, &kv, "key014999").await,
        json!({"a": [1, 2, 3], "b": "xyz"})
    );
}
