//! Hibernation (OTP's `hibernate_after`): an idle process drops its instance and keeps its
//! state; the next signal or message brings it back with the state, and nothing is lost.

use std::time::Duration;

use hotswap::{Node, Policy, ProcessInfo, ProcessRef, SpawnSpec, SwapOptions};
use serde_json::json;

use crate::common::*;

const AFTER: Duration = Duration::from_millis(30);

fn sleepy() -> Policy {
    Policy {
        hibernate_after: Some(AFTER),
        ..Policy::default()
    }
}

fn info(node: &Node, target: &ProcessRef) -> ProcessInfo {
    let pid = node.process(target).expect("alive").pid();
    node.ps().into_iter().find(|p| p.pid == pid).expect("in ps")
}

/// Waits (a bounded while) for the process to be hibernating.
async fn until_hibernating(node: &Node, target: &ProcessRef) {
    for _ in 0..200 {
        if info(node, target).hibernating {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{target} never hibernated");
}

async fn sleepy_kv(node: &Node, name: &str, module_file: &str) -> ProcessRef {
    kv_hibernating_after(node, name, module_file, AFTER).await
}

/// A kv of `module_file`, named `name`, that hibernates once idle for `after`.
async fn kv_hibernating_after(
    node: &Node,
    name: &str,
    module_file: &str,
    after: Duration,
) -> ProcessRef {
    node.load_file("kv", guest(module_file))
        .await
        .expect("load");
    let policy = Policy {
        hibernate_after: Some(after),
        ..Policy::default()
    };
    node.spawn(SpawnSpec::new("kv").name(name).policy(policy))
        .await
        .expect("spawn");
    ProcessRef::from(name)
}

#[tokio::test]
async fn an_idle_process_hibernates_and_every_message_wakes_it_with_its_state() {
    let node = Node::new(Policy::default()).expect("node");
    let kv = sleepy_kv(&node, "kv", "kv-v0").await;
    put(&node, &kv, "a", json!(42)).await;

    for round in 0..3u64 {
        until_hibernating(&node, &kv).await;
        // A cast wakes it too; the call behind it sees what the cast wrote.
        node.cast(
            &kv,
            json!({"op": "put", "key": "round", "value": round})
                .to_string()
                .into_bytes(),
        )
        .expect("cast");
        assert_eq!(get(&node, &kv, "round").await, json!(round));
        assert_eq!(get(&node, &kv, "a").await, json!(42), "round {round}");
    }
    let served = info(&node, &kv);
    // One put, then per round: a cast and two gets.
    assert_eq!(served.handled, 1 + 3 * 3);
    assert!(!served.hibernating);
}

#[tokio::test]
async fn a_state_read_is_answered_asleep_and_a_swap_wakes_it_on_the_new_version() {
    let node = Node::new(Policy::default()).expect("node");
    let kv = sleepy_kv(&node, "kv", "kv-v0").await;
    put(&node, &kv, "a", json!(1)).await;

    until_hibernating(&node, &kv).await;
    assert_eq!(state(&node, &kv).await, json!({"entries": {"a": 1}}));
    assert!(
        info(&node, &kv).hibernating,
        "a state read does not wake it"
    );

    let report = node
        .swap_file(&kv, guest("kv-v1"), SwapOptions::default())
        .await
        .expect("swap from hibernation");
    assert_eq!(
        (report.from_vsn.as_str(), report.to_vsn.as_str()),
        ("0", "1")
    );
    assert!(report.migrated_before_pause, "{report:?}");
    assert_eq!(
        report.snapshot,
        Duration::ZERO,
        "no snapshot ran: the node held the state: {report:?}"
    );
    assert!(report.code_change > Duration::ZERO, "{report:?}");
    let awake = info(&node, &kv);
    assert!(!awake.hibernating, "awake on the instance the swap made");
    assert_eq!(awake.handled, 1, "no message served since the put");
    assert_eq!(get(&node, &kv, "a").await, json!(1));

    // It hibernates on its new version, and wakes on it.
    until_hibernating(&node, &kv).await;
    assert_eq!(vsn(&node, &kv), "1");
    assert_eq!(get(&node, &kv, "a").await, json!(1));

    until_hibernating(&node, &kv).await;
    node.stop(&kv, "done").await.expect("stop");
    assert!(node.whereis("kv").is_none(), "the name is free again");
}

/// A `hostile-snapshot` process that may hibernate, holds `a = 5`, has refused to write its
/// state, and has been idle for several times its `hibernate_after` since.
async fn refused_to_hibernate(node: &Node) -> ProcessRef {
    node.load_file("hostile", guest("hostile-snapshot"))
        .await
        .expect("load");
    node.spawn(SpawnSpec::new("hostile").name("h").policy(sleepy()))
        .await
        .expect("spawn");
    let target = ProcessRef::from("h");
    put(node, &target, "a", json!(5)).await;
    call_json(node, &target, json!({"op": "refuse_snapshot"})).await;
    tokio::time::sleep(AFTER * 5).await;
    target
}

#[tokio::test]
async fn a_guest_that_will_not_write_its_state_stays_awake_and_serves() {
    let node = Node::new(Policy::default()).expect("node");
    let target = refused_to_hibernate(&node).await;
    assert!(!info(&node, &target).hibernating);
    assert_eq!(get(&node, &target, "a").await, json!(5));
}

#[tokio::test]
async fn a_guest_that_refused_its_state_is_asked_again_once_it_has_served_a_call() {
    let node = Node::new(Policy::default()).expect("node");
    let target = refused_to_hibernate(&node).await;
    assert!(!info(&node, &target).hibernating, "it refused");
    // Served in place: that lifts the refusal, and the next look finds it writing.
    call_json(&node, &target, json!({"op": "allow_snapshot"})).await;
    until_hibernating(&node, &target).await;
    assert_eq!(
        get(&node, &target, "a").await,
        json!(5),
        "woken with its state"
    );
}

#[tokio::test]
async fn without_the_policy_nothing_hibernates() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(1)).await;
    tokio::time::sleep(AFTER * 5).await;
    assert!(!info(&node, &kv).hibernating);
}

#[tokio::test]
async fn a_process_that_cannot_wake_exits_and_its_waker_hears_why() {
    let node = Node::new(Policy::default()).expect("node");
    // Serves like kv, but refuses every code-change, its own state on waking included.
    let target = sleepy_kv(&node, "refuser", "kv-migrate-error").await;
    put(&node, &target, "a", json!(1)).await;
    until_hibernating(&node, &target).await;

    let error = node
        .call(
            &target,
            br#"{"op":"get","key":"a"}"#.to_vec(),
            Duration::from_secs(5),
        )
        .await
        .expect_err("it cannot wake");
    let hotswap::CallError::Exited { reason, .. } = &error else {
        panic!("expected an exit, got {error}");
    };
    let reason = reason.to_string();
    assert!(reason.contains("waking from hibernation"), "{reason}");
    assert!(reason.contains("refusing to migrate"), "{reason}");
    assert!(node.whereis("refuser").is_none(), "gone from the registry");
}

#[tokio::test]
async fn a_process_that_may_hibernate_serves_a_call_in_its_callers_first_poll() {
    let node = Node::new(Policy::default()).expect("node");
    let kv = kv_hibernating_after(&node, "kv", "kv-v0", Duration::from_secs(60)).await;
    put(&node, &kv, "a", json!(1)).await;
    let handle = node.process(&kv).expect("alive");
    // In place unless the guest met an epoch tick (every 2 ms), as in `lending.rs`.
    let attempts = 5;
    let mut at_once = 0;
    for _ in 0..attempts {
        let mut call =
            std::pin::pin!(handle.call(br#"{"op":"get","key":"a"}"#.to_vec(), 0, TIMEOUT));
        let waker = std::task::Waker::noop();
        let reply = match call
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(reply) => {
                at_once += 1;
                reply
            }
            std::task::Poll::Pending => call.await,
        };
        assert_eq!(reply.expect("get"), b"1");
    }
    assert!(at_once > 0, "no call of {attempts} was answered at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_served_in_place_keep_a_process_awake_until_a_quiet_spell() {
    let after = Duration::from_millis(400);
    let node = Node::new(Policy::default()).expect("node");
    let kv = kv_hibernating_after(&node, "kv", "kv-v0", after).await;
    put(&node, &kv, "a", json!(1)).await;
    // Watches for a hibernation while the calls come, each well within `after` of the last.
    let calling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn({
        let (node, kv, calling) = (node.clone(), kv.clone(), calling.clone());
        async move {
            while calling.load(std::sync::atomic::Ordering::Relaxed) {
                if info(&node, &kv).hibernating {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            false
        }
    });
    let calls = 12;
    let mut last_call = std::time::Instant::now();
    for _ in 0..calls {
        tokio::time::sleep(after / 4).await;
        // Taken before the call: its idle time starts when the call is given back.
        last_call = std::time::Instant::now();
        assert_eq!(get(&node, &kv, "a").await, json!(1));
    }
    calling.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(
        !watcher.await.expect("watcher"),
        "hibernated while calls came every {:?}",
        after / 4
    );
    until_hibernating(&node, &kv).await;
    assert!(
        last_call.elapsed() >= after,
        "hibernated {:?} after the last call, under {after:?}",
        last_call.elapsed()
    );
    assert_eq!(info(&node, &kv).handled, 1 + calls);
    assert_eq!(
        get(&node, &kv, "a").await,
        json!(1),
        "and wakes with its state"
    );
}
