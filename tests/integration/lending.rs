//! Calls served on the caller's own task, with the instance an idle process lends: the
//! same order, limits and end as a call served by the process's task.

use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hotswap::{CallError, ExitReason, Node, Policy, ProcessRef, SpawnSpec};
use serde_json::{Value, json};

use crate::common::*;

/// A `hostile-spin` process under `policy` (its `sleep` op blocks in a WASI call, so the
/// call yields; its `spin` op loops), idle after one call, so that it lends its instance
/// to the next caller.
async fn idle_sleeper(policy: Policy) -> (Node, ProcessRef) {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("sleeper", guest("hostile-spin"))
        .await
        .expect("hostile-spin");
    node.spawn(SpawnSpec::new("sleeper").name("sleeper").policy(policy))
        .await
        .expect("spawn");
    let sleeper = ProcessRef::from("sleeper");
    assert_eq!(
        call_json(&node, &sleeper, json!({"op": "ping"})).await,
        "pong"
    );
    (node, sleeper)
}

fn sleep(ms: u64) -> Vec<u8> {
    json!({"op": "sleep", "ms": ms}).to_string().into_bytes()
}

fn handled(node: &Node, target: &ProcessRef) -> u64 {
    node.process(target).expect("alive").describe().handled
}

/// Polls a call once, by hand: it then holds the instance (or has its place in the queue)
/// before anything the test sends next, whichever task finishes it.
fn started<F: Future + Unpin>(call: &mut F) {
    assert!(
        Pin::new(call)
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending(),
        "the guest was to take its time"
    );
}

/// A policy whose calls may run for `limit` at most.
fn limited_to(limit: Duration) -> Policy {
    Policy {
        message_time_limit: limit,
        ..Policy::default()
    }
}

#[tokio::test]
async fn a_call_to_an_idle_process_is_answered_in_its_callers_first_poll() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(1)).await;
    let handle = node.process(&kv).expect("alive");
    // Through the mailbox, an answer would need the process's task to run first. In place,
    // a call is answered at once unless the guest met an epoch tick (every 2 ms) inside
    // it, which a preempted test thread may make it do now and then.
    let attempts = 5;
    let mut at_once = 0;
    for _ in 0..attempts {
        let mut call = pin!(handle.call(br#"{"op":"get","key":"a"}"#.to_vec(), 0, TIMEOUT));
        let reply = match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(reply) => {
                at_once += 1;
                reply
            }
            Poll::Pending => call.await,
        };
        assert_eq!(reply.expect("get"), b"1");
    }
    assert!(at_once > 0, "no call of {attempts} was answered at once");
    assert_eq!(handled(&node, &kv), 1 + attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_its_caller_stops_polling_does_not_hold_up_the_process() {
    let limit = Duration::from_secs(1);
    let (node, sleeper) = idle_sleeper(limited_to(limit)).await;
    let handle = node.process(&sleeper).expect("alive");
    let mut slow = Box::pin(handle.call(sleep(300), 0, TIMEOUT));
    assert!(
        slow.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending(),
        "the guest sleeps"
    );
    // Nobody polls `slow` again until well past the process's time limit.
    let asked = Instant::now();
    assert_eq!(
        call_json(&node, &sleeper, json!({"op": "ping"})).await,
        "pong",
        "served right after the sleep"
    );
    assert!(asked.elapsed() < limit, "{:?}", asked.elapsed());
    tokio::time::sleep(limit + Duration::from_millis(200)).await;
    assert_eq!(
        handle.exit_reason(),
        None,
        "the unpolled call ran out of time"
    );
    assert_eq!(slow.await.expect("the sleep's answer"), b"null");
}

#[tokio::test]
async fn a_trap_in_a_call_in_place_ends_the_process_and_answers_the_calls_queued_behind() {
    let (node, sleeper) = idle_sleeper(limited_to(Duration::from_millis(300))).await;
    let handle = node.process(&sleeper).expect("alive");
    let mut spin = {
        let handle = handle.clone();
        Box::pin(async move {
            let error = handle
                .call(br#"{"op":"spin"}"#.to_vec(), 0, TIMEOUT)
                .await
                .expect_err("the spin runs out of time");
            (error, handle.exit_reason())
        })
    };
    started(&mut spin);
    let spin = tokio::spawn(spin);
    let behind = handle
        .call(br#"{"op":"ping"}"#.to_vec(), 0, TIMEOUT)
        .await
        .expect_err("queued behind the spin");
    let (error, exited_when_told) = spin.await.expect("the spinning caller");
    let reason = ExitReason::Trapped {
        callback: "handle-call".into(),
        cause: "exceeded 300ms in handle-call".into(),
    };
    for error in [error, behind] {
        let CallError::Exited { reason: got, .. } = error else {
            panic!("expected the exit, got {error}");
        };
        assert_eq!(got, reason);
    }
    assert_eq!(
        exited_when_told,
        Some(reason),
        "unregistered before the caller heard"
    );
    assert_eq!(node.whereis("sleeper"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_never_passes_a_message_its_sender_sent_before_it() {
    let (node, kv) = node_with_kv().await;
    let rounds = 1_000;
    let senders: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|key| {
            let (node, kv) = (node.clone(), kv.clone());
            tokio::spawn(async move {
                for i in 0..rounds {
                    let put = json!({"op": "put", "key": key, "value": i});
                    node.cast(&kv, put.to_string().into_bytes()).expect("cast");
                    assert_eq!(get(&node, &kv, key).await, json!(i), "{key} in round {i}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    assert_eq!(
        handled(&node, &kv),
        2 * 2 * rounds,
        "every cast and call, once"
    );
}

#[tokio::test]
async fn a_caller_that_stops_waiting_leaves_its_call_to_finish_and_the_process_serving() {
    let (node, sleeper) = idle_sleeper(Policy::default()).await;

    let asked = Instant::now();
    let error = node
        .call(&sleeper, sleep(1_000), Duration::from_millis(50))
        .await
        .expect_err("the caller gives up first");
    assert!(matches!(error, CallError::Timeout { .. }), "{error}");
    assert!(
        asked.elapsed() < Duration::from_millis(800),
        "at the caller's own deadline, not the guest's end: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        call_json(&node, &sleeper, json!({"op": "ping"})).await,
        "pong",
        "served once the abandoned call has ended"
    );

    // A caller whose future is dropped mid-call, as `select!` or a timeout around the call
    // would drop it.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        node.call(&sleeper, sleep(400), TIMEOUT),
    )
    .await;
    assert!(dropped.is_err(), "the guest was still sleeping");
    assert_eq!(
        call_json(&node, &sleeper, json!({"op": "ping"})).await,
        "pong"
    );

    let handle = node.process(&sleeper).expect("still alive");
    assert_eq!(handle.exit_reason(), None);
    assert_eq!(
        handled(&node, &sleeper),
        5,
        "the first ping, then two sleeps and two pings"
    );
}

#[tokio::test]
async fn a_stop_waits_for_the_call_in_progress_on_its_callers_task() {
    let (node, sleeper) = idle_sleeper(Policy::default()).await;
    let handle = node.process(&sleeper).expect("alive");
    let mut call = {
        let node = node.clone();
        let sleeper = sleeper.clone();
        Box::pin(async move { node.call(&sleeper, sleep(300), TIMEOUT).await })
    };
    started(&mut call);
    let call = tokio::spawn(call);
    node.stop(&sleeper, "maintenance").await.expect("stop");
    let answer = call.await.expect("caller task");
    assert_eq!(
        answer.as_deref().ok(),
        Some(&b"null"[..]),
        "the call in progress is answered before the stop: {answer:?}"
    );
    assert_eq!(
        handle.closed().await,
        ExitReason::Stopped {
            reason: "maintenance".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_set_in_a_call_from_another_runtime_outlives_that_runtime() {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("relay", guest("relay"))
        .await
        .expect("relay");
    let pid = node
        .spawn(SpawnSpec::new("relay").name("relay"))
        .await
        .expect("spawn");
    let relay = ProcessRef::from("relay");
    assert_eq!(
        call_json(&node, &relay, json!({"op": "inbox"})).await,
        json!([])
    );

    // A caller on a runtime of its own, which ends right after the call: the timer must
    // not be one of its tasks.
    let set = {
        let (node, relay) = (node.clone(), relay.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the caller's runtime");
            let request = json!({"op": "send_after", "to": pid, "message": "late", "millis": 50});
            runtime.block_on(node.call(&relay, request.to_string().into_bytes(), TIMEOUT))
        })
    };
    set.join()
        .expect("the caller's thread")
        .expect("send_after is answered");

    let started = Instant::now();
    loop {
        let inbox = call_json(&node, &relay, json!({"op": "inbox"})).await;
        if inbox == json!(["late"]) {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the timer never fired: {inbox}"
        );
        assert_eq!(inbox, Value::Array(Vec::new()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
