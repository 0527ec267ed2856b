//! A randomized, seeded stress test: calls, casts and infos from several senders, while a
//! controller swaps (successfully and not), downgrades, suspends, resumes and replaces
//! state, over several processes. Checked against a model: no message lost, duplicated or
//! reordered per sender, and each process's final state and vsn equal the model's.
//!
//! Reproduce a failure with `HOTSWAP_STRESS_SEED=<seed> cargo test --test integration stress`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotswap::{Direction, ModuleVersion, Node, Policy, ProcessRef, SpawnSpec, SwapOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::common::*;

const PROCESSES: usize = 3;
const SENDERS: usize = 4;
const MESSAGES_PER_SENDER: usize = 600;
const CONTROL_STEPS: usize = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_keep_every_message_and_the_model() {
    let seeds: Vec<u64> = match std::env::var("HOTSWAP_STRESS_SEED") {
        Ok(seed) => vec![seed.parse().expect("HOTSWAP_STRESS_SEED is a number")],
        Err(_) => vec![1, 2],
    };
    for seed in seeds {
        println!("stress seed {seed}");
        run(seed).await;
    }
}

struct Versions {
    v0: Arc<ModuleVersion>,
    v1: Arc<ModuleVersion>,
    refusing: Arc<ModuleVersion>,
    trapping: Arc<ModuleVersion>,
}

async fn run(seed: u64) {
    let node = Node::new(Policy::default()).expect("node");
    let versions = Versions {
        v0: node.load_file("kv", guest("kv-v0")).await.expect("v0"),
        v1: node.load_file("kv", guest("kv-v1")).await.expect("v1"),
        refusing: node
            .load_file("kv", guest("kv-migrate-error"))
            .await
            .expect("error"),
        trapping: node
            .load_file("kv", guest("kv-migrate-trap"))
            .await
            .expect("trap"),
    };
    let mut targets = Vec::new();
    for p in 0..PROCESSES {
        let name = format!("p{p}");
        node.spawn(SpawnSpec::new("kv").vsn("0").name(&name))
            .await
            .expect("spawn");
        targets.push(ProcessRef::from(name.as_str()));
    }

    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (node, targets) = (node.clone(), targets.clone());
        senders.push(tokio::spawn(send_messages(node, targets, seed, sender)));
    }
    let (vsns, replaced) = control(&node, &targets, &versions, seed).await;

    // Per process: sender key -> last value sent, and the number of messages sent.
    let mut expected: Vec<BTreeMap<String, Value>> = replaced;
    let mut sent = [0u64; PROCESSES];
    for sender in senders {
        let (last, counts) = sender.await.expect("sender task");
        for p in 0..PROCESSES {
            if let Some(value) = &last[p] {
                expected[p].insert(format!("s{}", value["sender"]), value.clone());
            }
            sent[p] += counts[p];
        }
    }
    for (p, target) in targets.iter().enumerate() {
        assert_eq!(vsn(&node, target), vsns[p], "seed {seed}: vsn of {target}");
        assert_eq!(
            state(&node, target).await,
            json!({ "entries": expected[p] }),
            "seed {seed}: state of {target}"
        );
        let info = node.process(target).expect("alive").describe();
        assert_eq!(
            info.handled, sent[p],
            "seed {seed}: messages served by {target}"
        );
        assert_eq!(info.mailbox, 0);
        assert!(!info.suspended);
    }
}

/// One sender: puts its own key on random processes by call, cast and info, checking each
/// call's reply against what it sent before. Returns, per process, the last value it sent
/// and how many messages it sent.
async fn send_messages(
    node: Node,
    targets: Vec<ProcessRef>,
    seed: u64,
    sender: usize,
) -> (Vec<Option<Value>>, [u64; PROCESSES]) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000) + sender as u64);
    let key = format!("s{sender}");
    let mut last: Vec<Option<Value>> = vec![None; PROCESSES];
    let mut counts = [0u64; PROCESSES];
    for n in 0..MESSAGES_PER_SENDER {
        let p = rng.random_range(0..PROCESSES);
        let target = &targets[p];
        let value = json!({"sender": sender, "n": n});
        let put = json!({"op": "put", "key": key, "value": value}).to_string();
        let previous = last[p].clone().unwrap_or(Value::Null);
        match rng.random_range(0..4) {
            0 => {
                let reply =
                    call_json(&node, target, serde_json::from_str(&put).expect("json")).await;
                assert_eq!(
                    reply, previous,
                    "seed {seed}: sender {sender} put #{n} on {target}"
                );
                last[p] = Some(value);
            }
            1 => {
                node.cast(target, put.into_bytes()).expect("cast");
                last[p] = Some(value);
            }
            2 => {
                node.send(target, put.into_bytes()).expect("info");
                last[p] = Some(value);
            }
            _ => {
                let got = get(&node, target, &key).await;
                assert_eq!(
                    got, previous,
                    "seed {seed}: sender {sender} get #{n} on {target}"
                );
            }
        }
        counts[p] += 1;
        if n % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    (last, counts)
}

/// The controller: random control operations, each checked as it goes. Returns the model's
/// vsn per process and the keys that replace-state added.
async fn control(
    node: &Node,
    targets: &[ProcessRef],
    versions: &Versions,
    seed: u64,
) -> (Vec<String>, Vec<BTreeMap<String, Value>>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0FFEE);
    let mut vsns = vec!["0".to_string(); PROCESSES];
    let mut replaced = vec![BTreeMap::new(); PROCESSES];
    for step in 0..CONTROL_STEPS {
        let p = rng.random_range(0..PROCESSES);
        let target = &targets[p];
        match rng.random_range(0..5) {
            0 | 1 => {
                let (to, direction) = if vsns[p] == "0" {
                    (&versions.v1, Direction::Upgrade)
                } else {
                    (&versions.v0, Direction::Downgrade)
                };
                let options = SwapOptions {
                    direction,
                    ..SwapOptions::default()
                };
                let report = node
                    .swap(target, to.clone(), options)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: swap failed: {e}"));
                assert_eq!(report.from_vsn, vsns[p]);
                vsns[p] = to.vsn.to_string();
            }
            2 => {
                let bad = if rng.random_bool(0.5) {
                    &versions.refusing
                } else {
                    &versions.trapping
                };
                let error = node.swap(target, bad.clone(), SwapOptions::default()).await;
                assert!(
                    error.is_err(),
                    "seed {seed} step {step}: a bad swap succeeded"
                );
                assert_eq!(vsn(node, target), vsns[p], "seed {seed} step {step}");
            }
            3 => {
                node.suspend(target).await.expect("suspend");
                tokio::time::sleep(Duration::from_micros(rng.random_range(0..3000))).await;
                node.resume(target).await.expect("resume");
            }
            _ => {
                // Replace the state with itself plus one key, while suspended so that no
                // sender's message slips between the read and the replacement.
                node.suspend(target).await.expect("suspend");
                let mut current = state(node, target).await;
                let key = format!("replaced-{step}");
                current["entries"][&key] = json!(step);
                node.replace_state(target, current.to_string().into_bytes(), Vec::new())
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: replace failed: {e}"));
                node.resume(target).await.expect("resume");
                replaced[p].insert(key, json!(step));
            }
        }
        tokio::time::sleep(Duration::from_micros(rng.random_range(0..2000))).await;
    }
    (vsns, replaced)
}
