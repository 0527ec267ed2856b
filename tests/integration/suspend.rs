//! `sys:suspend`, `sys:resume` and `sys:replace_state`, done safely.

use std::time::{Duration, Instant};

use hotswap::{CallError, ProcessRef, SwapError};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_suspended_process_queues_messages_and_still_serves_control_requests() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(1)).await;
    node.suspend(&kv).await.expect("suspend");
    node.suspend(&kv).await.expect("suspend is idempotent");
    assert!(node.process(&kv).expect("kv").describe().suspended);

    let handle = node.process(&kv).expect("kv");
    let put_two = br#"{"op":"put","key":"a","value":2}"#.to_vec();
    let waiting = tokio::spawn(async move { handle.call(put_two, 0, TIMEOUT).await });
    node.cast(&kv, br#"{"op":"put","key":"b","value":3}"#.to_vec())
        .expect("cast queues");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "no call is served while suspended");
    let info = node.process(&kv).expect("kv").describe();
    assert_eq!(info.mailbox, 2, "both messages wait in the mailbox");

    // Control requests are served while suspended: the state read sees neither message.
    assert_eq!(state(&node, &kv).await, json!({"entries": {"a": 1}}));

    node.resume(&kv).await.expect("resume");
    node.resume(&kv).await.expect("resume is idempotent");
    let previous = waiting
        .await
        .expect("task")
        .expect("the queued call is answered");
    assert_eq!(previous, b"1");
    assert_eq!(get(&node, &kv, "b").await, json!(3));
    assert!(!node.process(&kv).expect("kv").describe().suspended);
}

#[tokio::test]
async fn a_call_times_out_at_its_own_deadline_whatever_the_calls_before_it_waited() {
    let (node, kv) = node_with_kv().await;
    let pid = node.process(&kv).expect("kv").pid();
    let put_a = |value: u32| format!(r#"{{"op":"put","key":"a","value":{value}}}"#).into_bytes();
    // Answered calls under a long timeout: a call's timer is kept for the next one.
    for value in 0..3 {
        node.call(&kv, put_a(value), Duration::from_secs(60))
            .await
            .expect("an answered call");
    }

    node.suspend(&kv).await.expect("suspend");
    let short = Duration::from_millis(200);
    let started = Instant::now();
    let error = node
        .call(&kv, put_a(7), short)
        .await
        .expect_err("a suspended process answers no call");
    let waited = started.elapsed();
    assert!(
        matches!(error, CallError::Timeout { pid: p, timeout } if p == pid && timeout == short),
        "{error:?}"
    );
    assert!(
        waited >= short && waited < Duration::from_secs(5),
        "timed out after {waited:?}, not at its own 200 ms"
    );

    // Then a long deadline after that short one, whose timer fired and is kept: the call
    // waits out the suspension.
    let handle = node.process(&kv).expect("kv");
    let waiting = tokio::spawn(async move { handle.call(put_a(8), 0, TIMEOUT).await });
    tokio::time::sleep(short * 2).await;
    assert!(
        !waiting.is_finished(),
        "still waiting, past the short call's deadline"
    );
    node.resume(&kv).await.expect("resume");
    let previous = waiting.await.expect("task").expect("answered once resumed");
    // As with `gen_server:call`, a call that timed out was still delivered, and served.
    assert_eq!(previous, b"7");
    assert_eq!(get(&node, &kv, "a").await, json!(8));
}

#[tokio::test]
async fn a_swap_while_suspended_stays_suspended_until_resumed() {
    let (node, kv) = node_with_kv().await;
    node.suspend(&kv).await.expect("suspend");
    let report = node
        .swap_file(&kv, guest("kv-v1"), Default::default())
        .await
        .expect("swap while suspended");
    assert_eq!(report.to_vsn, "1");
    assert!(node.process(&kv).expect("kv").describe().suspended);
    node.resume(&kv).await.expect("resume");
    assert_eq!(put(&node, &kv, "a", json!(1)).await, json!(null));
}

#[tokio::test]
async fn replace_state_commits_only_a_state_the_code_accepts() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(1)).await;

    let new_state = br#"{"entries":{"x":"replaced"}}"#.to_vec();
    let report = node
        .replace_state(&kv, new_state, Vec::new())
        .await
        .expect("a valid state is accepted");
    assert_eq!(
        (report.from_vsn.as_str(), report.to_vsn.as_str()),
        ("0", "0")
    );
    assert_eq!(
        state(&node, &kv).await,
        json!({"entries": {"x": "replaced"}})
    );

    let error = node
        .replace_state(&kv, br#"{"entries": 7}"#.to_vec(), Vec::new())
        .await
        .expect_err("a bad state is refused");
    assert!(
        matches!(error, SwapError::CodeChangeRefused { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("does not parse"),
        "the cause is named: {error}"
    );
    assert_eq!(
        state(&node, &kv).await,
        json!({"entries": {"x": "replaced"}}),
        "the bad blob never reached the process"
    );
    assert_eq!(get(&node, &kv, "x").await, json!("replaced"));
}

#[tokio::test]
async fn control_requests_to_a_missing_process_name_it() {
    let (node, _kv) = node_with_kv().await;
    let nobody = ProcessRef::from("nobody");
    let error = node.suspend(&nobody).await.expect_err("no such process");
    assert!(error.to_string().contains("nobody"), "{error}");
}
