//! Guarantee 5: a trapping handler ends its own process only, and its callers learn why.

use hotswap::{CallError, ExitReason, Node, Policy, ProcessRef, SpawnSpec};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_trap_in_handle_call_ends_only_that_process() {
    let (node, kv) = node_with_kv().await;
    node.load_file("crashy", guest("crashy"))
        .await
        .expect("crashy");
    node.spawn(SpawnSpec::new("crashy").name("crashy"))
        .await
        .expect("spawn crashy");
    let crashy = ProcessRef::from("crashy");
    put(&node, &kv, "a", json!(1)).await;
    put(&node, &crashy, "a", json!(1)).await;

    let error = node
        .call(&crashy, br#"{"op":"crash"}"#.to_vec(), TIMEOUT)
        .await
        .expect_err("the crash call traps");
    let CallError::Exited {
        reason: ExitReason::Trapped { callback, cause },
        ..
    } = &error
    else {
        panic!("expected a trap exit, got: {error}");
    };
    assert_eq!(callback, "handle-call");
    assert!(cause.contains("wasm trap"), "{error}");
    assert!(
        cause.contains("crashy traps on purpose"),
        "the guest's panic message is quoted: {error}"
    );

    assert!(
        node.process(&crashy).is_none(),
        "the crashed process is gone"
    );
    assert_eq!(node.whereis("crashy"), None, "and its name is free");
    let error = node
        .call(&crashy, br#"{"op":"get","key":"a"}"#.to_vec(), TIMEOUT)
        .await
        .expect_err("nobody answers");
    assert!(matches!(error, CallError::NoProcess { .. }), "{error}");

    assert_eq!(
        get(&node, &kv, "a").await,
        json!(1),
        "the neighbour serves on"
    );
    let names: Vec<_> = node.ps().into_iter().filter_map(|p| p.name).collect();
    assert_eq!(names, ["kv"]);
}

#[tokio::test]
async fn calls_queued_behind_a_trap_get_the_exit_reason() {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("crashy", guest("crashy"))
        .await
        .expect("crashy");
    let pid = node.spawn(SpawnSpec::new("crashy")).await.expect("spawn");
    let handle = node.process(&pid.into()).expect("alive");
    let crash = handle.call(br#"{"op":"crash"}"#.to_vec(), 0, TIMEOUT);
    let behind = handle.call(br#"{"op":"get","key":"a"}"#.to_vec(), 0, TIMEOUT);
    let (crash, behind) = tokio::join!(crash, behind);
    assert!(matches!(crash, Err(CallError::Exited { .. })), "{crash:?}");
    match behind {
        Err(CallError::Exited { reason, .. }) => {
            assert!(
                reason.to_string().contains("trapped in handle-call"),
                "{reason}"
            );
        }
        other => panic!("a call queued behind the trap must fail with the reason: {other:?}"),
    }
    assert!(matches!(handle.closed().await, ExitReason::Trapped { .. }));
}

#[tokio::test]
async fn a_refused_request_is_an_error_reply_not_a_crash() {
    let (node, kv) = node_with_kv().await;
    let error = node
        .call(&kv, br#"{"op":"fly"}"#.to_vec(), TIMEOUT)
        .await
        .expect_err("unknown op");
    let CallError::Refused { reason, vsn, .. } = &error else {
        panic!("expected a refusal, got {error}");
    };
    assert_eq!(vsn, "0");
    assert!(
        reason.contains("fly"),
        "the reason names the bad op: {error}"
    );
    let error = node
        .call(&kv, b"not json".to_vec(), TIMEOUT)
        .await
        .expect_err("bad json");
    assert!(matches!(error, CallError::Refused { .. }), "{error}");
    assert_eq!(put(&node, &kv, "still", json!("alive")).await, json!(null));
}

#[tokio::test]
async fn stop_runs_terminate_and_frees_the_name() {
    let (node, kv) = node_with_kv().await;
    let handle = node.process(&kv).expect("kv");
    node.stop(&kv, "maintenance").await.expect("stop");
    assert_eq!(
        handle.closed().await,
        ExitReason::Stopped {
            reason: "maintenance".into()
        }
    );
    assert_eq!(node.whereis("kv"), None);
    node.spawn(SpawnSpec::new("kv").name("kv"))
        .await
        .expect("the name can be taken again");
    assert!(
        node.process(&kv).expect("new kv").pid() > handle.pid(),
        "pids are not reused"
    );
}
