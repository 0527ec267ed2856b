//! Guarantee 2: no message lost, duplicated or reordered across many swaps under load.

use std::collections::BTreeMap;

use hotswap::{Direction, SwapOptions};
use serde_json::{Value, json};

use crate::common::*;

const CLIENTS: usize = 4;
const CALLS_PER_CLIENT: usize = 2_500;
const SWAPS: usize = 100;

/// 10,000 calls from 4 clients while the process swaps v0 <-> v1 100 times: every call is
/// answered exactly once with the right answer, and the final state is what the puts wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_during_a_hundred_swaps() {
    let (node, kv) = node_with_kv().await;
    let v0 = node.load_file("kv", guest("kv-v0")).await.expect("v0");
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("v1");

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (node, kv) = (node.clone(), kv.clone());
        clients.push(tokio::spawn(async move {
            let mut answered = 0usize;
            // Each client owns its keys; a put of counter i must return i-1 (the previous
            // value), which fails on any lost, repeated or reordered put.
            let key = format!("client-{client}");
            let mut previous = Value::Null;
            for i in 0..CALLS_PER_CLIENT / 2 {
                let was = put(&node, &kv, &key, json!(i)).await;
                assert_eq!(was, previous, "client {client}, put #{i}");
                let now = get(&node, &kv, &key).await;
                assert_eq!(now, json!(i), "client {client}, get #{i}");
                previous = json!(i);
                answered += 2;
                let other = format!("client-{client}-{i}");
                if i % 50 == 0 {
                    put(&node, &kv, &other, json!(i)).await;
                    answered += 1;
                }
            }
            answered
        }));
    }

    let handled = || node.process(&kv).expect("kv").describe().handled;
    let handled_before_swaps = handled();
    let mut reports = Vec::new();
    for swap in 0..SWAPS {
        let (version, direction) = if swap % 2 == 0 {
            (v1.clone(), Direction::Upgrade)
        } else {
            (v0.clone(), Direction::Downgrade)
        };
        let options = SwapOptions {
            direction,
            ..SwapOptions::default()
        };
        reports.push(node.swap(&kv, version, options).await.expect("swap"));
        tokio::task::yield_now().await;
    }
    let served_during_swaps = handled() - handled_before_swaps;

    let mut answered = 0;
    for client in clients {
        answered += client.await.expect("client task");
    }
    let extra_puts = CLIENTS * (CALLS_PER_CLIENT / 2).div_ceil(50);
    assert_eq!(answered, CLIENTS * CALLS_PER_CLIENT + extra_puts);
    assert_eq!(reports.len(), SWAPS);
    assert_eq!(vsn(&node, &kv), "0", "an even number of swaps ends on v0");

    let mut expected = BTreeMap::new();
    for client in 0..CLIENTS {
        expected.insert(format!("client-{client}"), json!(CALLS_PER_CLIENT / 2 - 1));
        for i in (0..CALLS_PER_CLIENT / 2).step_by(50) {
            expected.insert(format!("client-{client}-{i}"), json!(i));
        }
    }
    assert_eq!(state(&node, &kv).await, json!({ "entries": expected }));

    let info = node.process(&kv).expect("kv").describe();
    let calls = (CLIENTS * CALLS_PER_CLIENT + extra_puts) as u64;
    assert_eq!(info.handled, calls, "each call served exactly once");
    assert_eq!(info.mailbox, 0);
    let queued: u64 = reports.iter().map(|r| r.queued_during_pause).sum();
    let classic = reports.iter().filter(|r| !r.migrated_before_pause).count();
    println!(
        "{SWAPS} swaps ({classic} classic: a message was served during the migration), \
         {served_during_swaps} calls served and {queued} queued during pauses while swapping, \
         max pause {:?}",
        reports.iter().map(|r| r.pause).max().unwrap_or_default()
    );
    // The load really overlapped the swaps: calls were served while they ran, and some
    // arrived during a pause or during a migration.
    assert!(served_during_swaps > 0, "no call was served while swapping");
    assert!(
        queued > 0 || classic > 0,
        "no call ever met a swap in progress"
    );
}
