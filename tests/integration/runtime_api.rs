//! The host API of `interface runtime`, between processes: self-pid, whereis, send,
//! send-after and cancel-timer.

use std::time::Duration;

use hotswap::{Node, Pid, Policy, ProcessRef, SpawnSpec};
use serde_json::{Value, json};

use crate::common::*;

async fn two_relays() -> (Node, Pid, Pid) {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("relay", guest("relay"))
        .await
        .expect("relay");
    let ping = node
        .spawn(SpawnSpec::new("relay").name("ping"))
        .await
        .expect("ping");
    let pong = node
        .spawn(SpawnSpec::new("relay").name("pong"))
        .await
        .expect("pong");
    (node, ping, pong)
}

async fn inbox(node: &Node, pid: Pid) -> Value {
    call_json(node, &pid.into(), json!({"op": "inbox"})).await
}

/// Polls `pid`'s inbox until it holds `expected` or a second has passed.
async fn wait_for_inbox(node: &Node, pid: Pid, expected: Value) {
    for _ in 0..100 {
        if inbox(node, pid).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inbox(node, pid).await, expected);
}

#[tokio::test]
async fn processes_find_each_other_and_exchange_messages_in_order() {
    let (node, ping, pong) = two_relays().await;
    let ping_ref = ProcessRef::Pid(ping);
    assert_eq!(
        call_json(&node, &ping_ref, json!({"op": "whoami"})).await,
        json!(ping)
    );
    assert_eq!(
        call_json(&node, &ping_ref, json!({"op": "whereis", "name": "pong"})).await,
        json!(pong)
    );
    assert_eq!(
        call_json(&node, &ping_ref, json!({"op": "whereis", "name": "nobody"})).await,
        json!(null)
    );
    for i in 0..20 {
        let send = json!({"op": "send", "to": pong, "message": {"n": i}});
        assert_eq!(call_json(&node, &ping_ref, send).await, json!(null));
    }
    let by_name = json!({"op": "send_named", "to": "pong", "message": "last"});
    call_json(&node, &ping_ref, by_name).await;
    let mut expected: Vec<Value> = (0..20).map(|i| json!({"n": i})).collect();
    expected.push(json!("last"));
    wait_for_inbox(&node, pong, Value::Array(expected)).await;
    assert_eq!(inbox(&node, ping).await, json!([]));
}

#[tokio::test]
async fn a_send_to_a_dead_pid_is_an_error_to_the_guest() {
    let (node, ping, _pong) = two_relays().await;
    let send = json!({"op": "send", "to": 9999, "message": 1});
    let error = node
        .call(&ping.into(), send.to_string().into_bytes(), TIMEOUT)
        .await
        .expect_err("no such pid");
    assert!(error.to_string().contains("9999"), "{error}");
}

#[tokio::test]
async fn timers_fire_once_and_cancelled_timers_never_fire() {
    let (node, ping, pong) = two_relays().await;
    let ping_ref = ProcessRef::Pid(ping);
    let later = json!({"op": "send_after", "to": pong, "message": "tick", "millis": 30});
    let fired = call_json(&node, &ping_ref, later).await;
    let never = json!({"op": "send_after", "to": pong, "message": "never", "millis": 60});
    let cancelled = call_json(&node, &ping_ref, never).await;
    assert_ne!(fired, cancelled, "timer refs are distinct");
    let cancel = json!({"op": "cancel_timer", "timer": cancelled});
    assert_eq!(
        call_json(&node, &ping_ref, cancel.clone()).await,
        json!(true)
    );
    assert_eq!(
        call_json(&node, &ping_ref, cancel).await,
        json!(false),
        "only once"
    );

    assert_eq!(inbox(&node, pong).await, json!([]), "not before its time");
    wait_for_inbox(&node, pong, json!(["tick"])).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        inbox(&node, pong).await,
        json!(["tick"]),
        "the cancelled one never came"
    );
    let late = json!({"op": "cancel_timer", "timer": fired});
    assert_eq!(
        call_json(&node, &ping_ref, late).await,
        json!(false),
        "already fired"
    );
}

#[tokio::test]
async fn a_process_cannot_cancel_another_process_timer() {
    let (node, ping, pong) = two_relays().await;
    let later = json!({"op": "send_after", "to": ping, "message": "mine", "millis": 50});
    let timer = call_json(&node, &ping.into(), later).await;
    let cancel = json!({"op": "cancel_timer", "timer": timer});
    assert_eq!(
        call_json(&node, &pong.into(), cancel).await,
        json!(false),
        "pong cannot see ping's timer"
    );
    wait_for_inbox(&node, ping, json!(["mine"])).await;
}
