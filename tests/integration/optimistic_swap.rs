//! The optimistic swap: `code-change` runs before the pause while the old version serves
//! on, and the pause only commits; a message served meanwhile sends the swap the classic
//! way, and is not lost.

use std::time::Duration;

use hotswap::{Node, Policy, ProcessRef, SpawnSpec, SwapError, SwapOptions, SwapReport};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::common::*;

/// A kv process holding `a = 1`, and a swap of it to `hostile-migrate` whose `code-change`
/// has begun and runs until `open_slow_migration_gate`.
async fn migrating_slowly() -> (Node, ProcessRef, JoinHandle<Result<SwapReport, SwapError>>) {
    capture_guest_logs();
    let (node, kv) = node_with_kv().await;
    let pid = node.whereis("kv").expect("registered");
    put(&node, &kv, "a", json!(1)).await;
    let slow = node
        .load_file("kv", guest("hostile-migrate"))
        .await
        .expect("load");
    let swapping = {
        let (node, kv) = (node.clone(), kv.clone());
        tokio::spawn(async move {
            let options = SwapOptions {
                extra: b"slow".to_vec(),
                ..SwapOptions::default()
            };
            node.swap(&kv, slow, options).await
        })
    };
    logged(&node, pid, "migrating slowly").await;
    (node, kv, swapping)
}

#[tokio::test]
async fn an_idle_process_is_migrated_before_the_pause() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(42)).await;
    let report = node
        .swap_file(&kv, guest("kv-v1"), SwapOptions::default())
        .await
        .expect("swap");
    assert!(report.migrated_before_pause, "{report:?}");
    assert!(report.pause < report.total, "{report:?}");
    assert!(report.snapshot > Duration::ZERO, "{report:?}");
    assert!(report.pause >= report.snapshot, "{report:?}");
    assert!(report.code_change > Duration::ZERO, "{report:?}");
    assert_eq!(vsn(&node, &kv), "1");
    assert_eq!(get(&node, &kv, "a").await, json!(42));
}

#[tokio::test]
async fn a_slow_code_change_before_the_pause_is_reported_and_stays_out_of_it() {
    let (node, kv, swapping) = migrating_slowly().await;
    // The new instance migrates until the gate opens, the old one idle meanwhile.
    const SLOW: Duration = Duration::from_millis(100);
    tokio::time::sleep(SLOW).await;
    open_slow_migration_gate(&node, "kv").await;

    let report = swapping.await.expect("task").expect("swap");
    assert!(report.migrated_before_pause, "{report:?}");
    assert!(report.code_change >= SLOW, "{report:?}");
    assert!(
        report.pause < SLOW,
        "the code-change was not in the pause: {report:?}"
    );
    assert!(
        report.total >= report.code_change + report.pause,
        "{report:?}"
    );
    assert_eq!(get(&node, &kv, "a").await, json!(1));
}

#[tokio::test]
async fn a_message_served_during_the_migration_sends_the_swap_the_classic_way() {
    let (node, kv, swapping) = migrating_slowly().await;
    // The new instance migrates until the gate opens; the old one serves this meanwhile.
    assert_eq!(put(&node, &kv, "a", json!(2)).await, json!(1));
    assert_eq!(vsn(&node, &kv), "0", "served by the old version");
    open_slow_migration_gate(&node, "kv").await;

    let report = swapping.await.expect("task").expect("swap");
    assert!(!report.migrated_before_pause, "{report:?}");
    assert_eq!(vsn(&node, &kv), "hostile-migrate");
    assert_eq!(
        get(&node, &kv, "a").await,
        json!(2),
        "the put served during the first migration is in the state"
    );
}

#[tokio::test]
async fn replace_state_is_migrated_before_the_pause() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(1)).await;
    let report = node
        .replace_state(&kv, br#"{"entries":{"b":2}}"#.to_vec(), Vec::new())
        .await
        .expect("replace");
    assert!(report.migrated_before_pause, "{report:?}");
    assert_eq!(
        report.snapshot,
        Duration::ZERO,
        "no snapshot ran: {report:?}"
    );
    assert!(report.code_change > Duration::ZERO, "{report:?}");
    assert_eq!(state(&node, &kv).await, json!({"entries": {"b": 2}}));
}

#[tokio::test]
async fn a_process_with_messages_waiting_is_swapped_the_classic_way_at_once() {
    capture_guest_logs();
    let (node, _) = node_with_kv().await;
    const CASTS: u64 = 20_000;
    let policy = Policy {
        mailbox_capacity: CASTS as usize,
        ..Policy::default()
    };
    let pid = node
        .spawn(SpawnSpec::new("kv").name("busy").policy(policy))
        .await
        .expect("spawn");
    let busy = ProcessRef::from(pid);
    let migrating = node
        .load_file("kv", guest("hostile-migrate"))
        .await
        .expect("load");
    // Every `slow` migration logs once and then adopts at once.
    open_slow_migration_gate(&node, "kv").await;
    for i in 0..CASTS {
        let put = format!(r#"{{"op":"put","key":"n","value":{i}}}"#);
        node.cast(&busy, put.into_bytes()).expect("cast");
    }
    let options = SwapOptions {
        extra: b"slow".to_vec(),
        ..SwapOptions::default()
    };
    let report = node.swap(&busy, migrating, options).await.expect("swap");
    assert!(!report.migrated_before_pause, "{report:?}");
    assert!(report.snapshot > Duration::ZERO, "{report:?}");
    assert!(report.code_change > Duration::ZERO, "{report:?}");
    assert!(
        report.pause >= report.snapshot + report.code_change,
        "both guest calls were in the pause: {report:?}"
    );
    let migrations = guest_lines(&node, pid)
        .iter()
        .filter(|line| line.message.contains("migrating slowly"))
        .count();
    assert_eq!(
        migrations, 1,
        "code-change ran once: no state was migrated only to go stale"
    );
    assert_eq!(vsn(&node, &busy), "hostile-migrate");
    assert_eq!(
        get(&node, &busy, "n").await,
        json!(CASTS - 1),
        "every cast served"
    );
}
