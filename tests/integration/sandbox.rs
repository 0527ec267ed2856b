//! Issue 4's hostile guests: each attack is contained, the host and every other process keep
//! working, and the error says what happened.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use hotswap::sandbox::{DirGrant, Grants, NetGrant};
use hotswap::{
    CallError, ControlError, ExitReason, LoadError, Node, Pid, Policy, ProcessRef, SpawnSpec,
    SwapError, SwapOptions,
};
use serde_json::{Value, json};

use crate::common::*;

/// Tight limits, so that the attacks end quickly; the time limits leave room for a loaded
/// machine, so that only the runaway guests reach them.
fn tight() -> Policy {
    Policy {
        memory_limit: 16 << 20,
        message_time_limit: Duration::from_secs(1),
        swap_time_limit: Duration::from_secs(1),
        ..Policy::default()
    }
}

/// A node with a well-behaved `kv` neighbour and one hostile process named `hostile`.
async fn beside_kv(guest_crate: &str, policy: Policy) -> (Node, ProcessRef, ProcessRef) {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(42)).await;
    node.load_file("hostile", guest(guest_crate))
        .await
        .expect("load");
    node.spawn(SpawnSpec::new("hostile").name("hostile").policy(policy))
        .await
        .expect("spawn");
    let hostile = ProcessRef::from("hostile");
    assert_eq!(
        call_json(&node, &hostile, json!({"op": "ping"})).await,
        json!("pong")
    );
    (node, kv, hostile)
}

async fn call_raw(node: &Node, target: &ProcessRef, request: Value) -> Result<Value, CallError> {
    node.call(target, request.to_string().into_bytes(), TIMEOUT)
        .await
        .map(|reply| serde_json::from_slice(&reply).expect("JSON reply"))
}

/// The call ends the process; returns the trap's cause.
async fn trap_cause(node: &Node, target: &ProcessRef, request: Value) -> String {
    match call_raw(node, target, request).await {
        Err(CallError::Exited {
            reason: ExitReason::Trapped { cause, .. },
            ..
        }) => cause,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The call is refused by the guest (it lives on); returns the reason.
async fn refusal(node: &Node, target: &ProcessRef, request: Value) -> String {
    match call_raw(node, target, request).await {
        Err(CallError::Refused { reason, .. }) => reason,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

async fn neighbour_is_fine(node: &Node, kv: &ProcessRef) {
    assert_eq!(get(node, kv, "a").await, json!(42));
}

#[tokio::test]
async fn an_infinite_loop_is_cut_at_the_time_limit_while_neighbours_keep_answering() {
    let (node, kv, hostile) = beside_kv("hostile-spin", tight()).await;
    // One worker thread: the neighbour answers only because the spinning guest yields.
    let spinning = {
        let (node, hostile) = (node.clone(), hostile.clone());
        tokio::spawn(async move { trap_cause(&node, &hostile, json!({"op": "spin"})).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    neighbour_is_fine(&node, &kv).await;
    assert!(
        !spinning.is_finished(),
        "kv answered while the guest was still spinning"
    );
    let cause = spinning.await.expect("task");
    assert_eq!(cause, "exceeded 1s in handle-call");
    assert!(node.process(&hostile).is_none());
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_is_abandoned_at_the_time_limit() {
    let (node, kv, hostile) = beside_kv("hostile-spin", tight()).await;
    let cause = trap_cause(&node, &hostile, json!({"op": "sleep", "ms": 60_000})).await;
    assert!(cause.starts_with("exceeded 1s in handle-call"), "{cause}");
    assert!(cause.contains("stuck in a host call"), "{cause}");
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn a_memory_bomb_stops_at_the_memory_limit() {
    let (node, kv, hostile) = beside_kv("hostile-memory-bomb", tight()).await;
    assert_eq!(
        call_json(&node, &hostile, json!({"op": "grow", "mib": 4})).await,
        json!(4)
    );
    let cause = trap_cause(&node, &hostile, json!({"op": "grow", "mib": 64})).await;
    assert!(cause.contains("memory"), "the cause names memory: {cause}");
    assert!(!cause.contains('\n'), "one line: {cause}");
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow_trap() {
    let (node, kv, hostile) = beside_kv("hostile-recursion", tight()).await;
    let cause = trap_cause(&node, &hostile, json!({"op": "recurse"})).await;
    assert!(cause.contains("call stack exhausted"), "{cause}");
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn a_huge_reply_is_bounded_by_the_memory_limit() {
    let (node, kv, hostile) = beside_kv("hostile-huge-reply", tight()).await;
    let reply = call_json(&node, &hostile, json!({"op": "reply", "mib": 4})).await;
    assert!(reply.as_str().expect("a string").len() >= 4 << 20);
    let cause = trap_cause(&node, &hostile, json!({"op": "reply", "mib": 32})).await;
    assert!(cause.contains("memory"), "{cause}");
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn files_are_out_of_reach_unless_granted_and_then_only_inside() {
    let (node, kv, hostile) = beside_kv("hostile-files", tight()).await;
    let reason = refusal(
        &node,
        &hostile,
        json!({"op": "read", "path": "/etc/passwd"}),
    )
    .await;
    assert!(reason.contains("/etc/passwd"), "{reason}");
    refusal(&node, &hostile, json!({"op": "list", "path": "/"})).await;
    neighbour_is_fine(&node, &kv).await;

    let dir = std::env::temp_dir().join(format!("hotswap-grant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("hello.txt"), "granted").expect("write");
    let grant = |writable| Policy {
        grants: Grants {
            dirs: vec![DirGrant {
                host: dir.clone(),
                guest: "/data".into(),
                writable,
            }],
            ..Grants::default()
        },
        ..tight()
    };
    node.spawn(
        SpawnSpec::new("hostile")
            .name("reader")
            .policy(grant(false)),
    )
    .await
    .expect("reader");
    let reader = ProcessRef::from("reader");
    let read = json!({"op": "read", "path": "/data/hello.txt"});
    assert_eq!(
        call_json(&node, &reader, read.clone()).await,
        json!("granted")
    );
    let write = json!({"op": "write", "path": "/data/new.txt", "data": "x"});
    refusal(&node, &reader, write.clone()).await;
    refusal(
        &node,
        &reader,
        json!({"op": "read", "path": "/data/../../etc/passwd"}),
    )
    .await;
    refusal(&node, &reader, json!({"op": "read", "path": "/etc/passwd"})).await;

    node.spawn(SpawnSpec::new("hostile").name("writer").policy(grant(true)))
        .await
        .expect("writer");
    let writer = ProcessRef::from("writer");
    assert_eq!(call_json(&node, &writer, write).await, json!(null));
    assert_eq!(
        std::fs::read_to_string(dir.join("new.txt")).expect("written"),
        "x"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_network_is_off_unless_granted_and_then_only_to_the_granted_address() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let other = TcpListener::bind("127.0.0.1:0").expect("other listener");
    let other_addr = other.local_addr().expect("addr");

    let (node, kv, hostile) = beside_kv("hostile-net", tight()).await;
    let connect = json!({"op": "connect", "addr": addr.to_string()});
    let reason = refusal(&node, &hostile, connect.clone()).await;
    assert!(reason.contains(&addr.to_string()), "{reason}");
    assert!(listener.accept().is_err(), "no connection came through");
    refusal(
        &node,
        &hostile,
        json!({"op": "resolve", "host": "localhost"}),
    )
    .await;
    refusal(
        &node,
        &hostile,
        json!({"op": "listen", "addr": "127.0.0.1:0"}),
    )
    .await;
    neighbour_is_fine(&node, &kv).await;

    let granted = Policy {
        grants: Grants {
            network: vec![NetGrant {
                ip: addr.ip(),
                port: Some(addr.port()),
            }],
            ..Grants::default()
        },
        ..tight()
    };
    node.spawn(SpawnSpec::new("hostile").name("net").policy(granted))
        .await
        .expect("net");
    let net = ProcessRef::from("net");
    let reply = call_json(&node, &net, connect).await;
    assert!(
        reply.as_str().expect("text").starts_with("connected to"),
        "{reply}"
    );
    let other_connect = json!({"op": "connect", "addr": other_addr.to_string()});
    refusal(&node, &net, other_connect).await;
    refusal(&node, &net, json!({"op": "listen", "addr": "127.0.0.1:0"})).await;
}

#[tokio::test]
async fn environment_and_arguments_are_only_what_was_granted() {
    // SAFETY of the test: the node's own environment holds a secret the guest must not see.
    let (node, kv, hostile) = beside_kv("hostile-env", tight()).await;
    assert!(std::env::vars().count() > 0);
    assert_eq!(
        call_json(&node, &hostile, json!({"op": "env"})).await,
        json!({})
    );
    assert_eq!(
        call_json(&node, &hostile, json!({"op": "args"})).await,
        json!([])
    );
    neighbour_is_fine(&node, &kv).await;

    let granted = Policy {
        grants: Grants {
            env: BTreeMap::from([("LANG".to_string(), "C".to_string())]),
            args: vec!["plugin".into(), "--verbose".into()],
            ..Grants::default()
        },
        ..tight()
    };
    node.spawn(SpawnSpec::new("hostile").name("env").policy(granted))
        .await
        .expect("env");
    let env = ProcessRef::from("env");
    assert_eq!(
        call_json(&node, &env, json!({"op": "env"})).await,
        json!({"LANG": "C"})
    );
    assert_eq!(
        call_json(&node, &env, json!({"op": "args"})).await,
        json!(["plugin", "--verbose"])
    );
}

#[tokio::test]
async fn flooding_a_mailbox_is_refused_to_the_flooder_and_counted_exactly() {
    let (node, kv, hostile) = beside_kv("hostile-flood", tight()).await;
    node.load_file("target", guest("hostile-flood"))
        .await
        .expect("load");
    let small = Policy {
        mailbox_capacity: 100,
        ..tight()
    };
    node.spawn(SpawnSpec::new("target").name("target").policy(small))
        .await
        .expect("target");
    let target = ProcessRef::from("target");
    node.suspend(&target)
        .await
        .expect("suspend: its mailbox only fills");

    let outcome = call_json(
        &node,
        &hostile,
        json!({"op": "flood", "to": "target", "count": 500}),
    )
    .await;
    assert_eq!(outcome["sent"], json!(100));
    assert_eq!(outcome["refused"], json!(400));
    let first = outcome["first_error"].as_str().expect("an error text");
    assert!(first.contains("mailbox full (100 messages)"), "{first}");
    neighbour_is_fine(&node, &kv).await;

    // Other senders are refused the same way, with the same clear error.
    let error = node.cast(&target, b"{}".to_vec()).expect_err("full");
    assert!(
        matches!(error, CallError::MailboxFull { capacity: 100, .. }),
        "{error}"
    );

    node.resume(&target).await.expect("resume");
    assert_eq!(
        call_json(&node, &target, json!({"op": "received"})).await,
        json!(100)
    );
}

#[tokio::test]
async fn migrations_that_loop_bomb_recurse_or_trap_are_rolled_back() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(42)).await;
    node.spawn(SpawnSpec::new("kv").name("tight").policy(tight()))
        .await
        .expect("spawn");
    let target = ProcessRef::from("tight");
    put(&node, &target, "a", json!(7)).await;
    for (extra, expected) in [
        ("spin", "exceeded 1s in code-change"),
        ("bomb", "memory"),
        ("recurse", "call stack exhausted"),
        ("trap", "wasm trap"),
    ] {
        let options = SwapOptions {
            extra: extra.as_bytes().to_vec(),
            ..SwapOptions::default()
        };
        let error = node
            .swap_file(&target, guest("hostile-migrate"), options)
            .await
            .expect_err("the migration fails");
        let SwapError::CodeChangeTrapped { cause, .. } = &error else {
            panic!("{extra}: expected a code-change trap, got {error}");
        };
        assert!(cause.contains(expected), "{extra}: {error}");
        assert_eq!(vsn(&node, &target), "0", "{extra}");
        assert_eq!(get(&node, &target, "a").await, json!(7), "{extra}");
    }
    let options = SwapOptions {
        extra: b"fine".to_vec(),
        ..SwapOptions::default()
    };
    let report = node
        .swap_file(&target, guest("hostile-migrate"), options)
        .await
        .expect("a well-behaved extra migrates");
    assert_eq!(report.to_vsn, "hostile-migrate");
    assert_eq!(get(&node, &target, "a").await, json!(7));
    neighbour_is_fine(&node, &kv).await;
}

#[tokio::test]
async fn a_snapshot_that_refuses_keeps_serving_and_one_that_traps_ends_only_its_process() {
    let (node, kv, hostile) = beside_kv("hostile-snapshot", tight()).await;
    put(&node, &hostile, "a", json!(1)).await;
    call_json(&node, &hostile, json!({"op": "refuse_snapshot"})).await;
    let error = node.get_state(&hostile).await.expect_err("refused");
    assert!(
        matches!(error, ControlError::SnapshotRefused { .. }),
        "{error}"
    );
    let error = node
        .swap_file(&hostile, guest("hostile-snapshot"), SwapOptions::default())
        .await;
    // Same bytes: the swap goes to a fresh instance of the same version, and is refused.
    let error = error.expect_err("refused");
    assert!(error.to_string().contains("cannot write state"), "{error}");
    assert_eq!(get(&node, &hostile, "a").await, json!(1), "it serves on");

    node.spawn(SpawnSpec::new("hostile").name("trapper").policy(tight()))
        .await
        .expect("spawn");
    let trapper = ProcessRef::from("trapper");
    let error = node
        .swap_file(&trapper, guest("kv-v1"), SwapOptions::default())
        .await
        .expect_err("its snapshot traps");
    assert!(
        matches!(error, SwapError::SnapshotTrapped { .. }),
        "{error}"
    );
    assert!(
        node.process(&trapper).is_none(),
        "an instance that trapped cannot serve"
    );
    neighbour_is_fine(&node, &kv).await;
    assert_eq!(get(&node, &hostile, "a").await, json!(1));
}

#[tokio::test]
async fn guest_output_goes_to_the_log_tagged_with_the_process() {
    capture_guest_logs();
    let (node, _kv, hostile) = beside_kv("stdout-chatter", tight()).await;
    let pid: Pid = node.process(&hostile).expect("alive").pid();
    let text = format!("chatter-{}", rand::random::<u32>());
    call_json(&node, &hostile, json!({"op": "print", "text": text})).await;
    let lines: Vec<_> = guest_lines(&node, pid)
        .into_iter()
        .filter(|l| l.message.contains(&text))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one line on stdout, one on stderr: {lines:?}"
    );
    assert!(lines.iter().all(|l| l.vsn == "stdout-chatter"), "{lines:?}");
}

#[tokio::test]
async fn a_component_importing_what_the_host_lacks_is_refused_naming_the_import() {
    let node = Node::new(Policy::default()).expect("node");
    let error = node
        .load_file("extra", guest("kv-extra-import"))
        .await
        .expect_err("refused at load");
    let LoadError::WorldMismatch { cause, .. } = &error else {
        panic!("expected a world mismatch, got {error}");
    };
    assert!(
        cause.contains("hotswap:otp/stopwatch"),
        "the import is named: {error}"
    );
}

#[tokio::test]
async fn fuel_bounds_a_call_deterministically_where_the_node_counts_it() {
    let fueled = Node::with_options(hotswap::NodeOptions {
        fuel: true,
        ..hotswap::NodeOptions::default()
    })
    .expect("node");
    fueled
        .load_file("hostile", guest("hostile-spin"))
        .await
        .expect("load");
    let policy = Policy {
        fuel_per_call: Some(50_000_000),
        ..tight()
    };
    fueled
        .spawn(
            SpawnSpec::new("hostile")
                .name("spin")
                .policy(policy.clone()),
        )
        .await
        .expect("spawn");
    let spin = ProcessRef::from("spin");
    // Each call gets the whole budget again: many small calls are fine.
    for _ in 0..100 {
        assert_eq!(
            call_json(&fueled, &spin, json!({"op": "ping"})).await,
            json!("pong")
        );
    }
    let cause = trap_cause(&fueled, &spin, json!({"op": "spin"})).await;
    assert!(cause.contains("fuel"), "{cause}");

    let (node, _kv) = node_with_kv().await;
    let error = node
        .spawn(SpawnSpec::new("kv").policy(policy))
        .await
        .expect_err("this node counts no fuel");
    assert!(error.to_string().contains("fuel = true"), "{error}");
}

#[tokio::test]
async fn a_policy_no_process_could_run_under_is_refused_before_anything_starts() {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(42)).await;
    let before = node.ps().len();
    let error = node
        .spawn(SpawnSpec::new("kv").name("no-mailbox").policy(Policy {
            mailbox_capacity: 0,
            ..Policy::default()
        }))
        .await
        .expect_err("refused");
    assert!(matches!(error, hotswap::SpawnError::Policy(_)), "{error}");
    assert!(error.to_string().contains("mailbox_capacity"), "{error}");
    assert_eq!(node.ps().len(), before, "nothing was spawned");
    assert!(node.whereis("no-mailbox").is_none());
    let error = hotswap::Node::new(Policy {
        message_time_limit: Duration::from_millis(u64::MAX),
        ..Policy::default()
    })
    .err()
    .expect("refused");
    assert!(
        error.to_string().contains("message_time_limit_ms"),
        "{error}"
    );
    neighbour_is_fine(&node, &kv).await;
}

/// A node whose pool has `slots` instance slots, each memory at most 32 MiB, which is
/// also its processes' default limit.
fn node_with_pool(slots: u32) -> hotswap::Node {
    node_with(hotswap::Allocation::pooled(slots, 32 << 20))
}

/// A node of `allocation` whose processes may use 32 MiB.
fn node_with(allocation: hotswap::Allocation) -> hotswap::Node {
    hotswap::Node::with_options(hotswap::NodeOptions {
        allocation,
        default_policy: Policy {
            memory_limit: 32 << 20,
            ..Policy::default()
        },
        ..hotswap::NodeOptions::default()
    })
    .expect("node")
}

#[tokio::test]
async fn a_memory_limit_beyond_the_pools_memories_is_refused_at_spawn() {
    let node = node_with_pool(8);
    node.load_file("kv", guest("kv-v0")).await.expect("load");
    let error = node
        .spawn(SpawnSpec::new("kv").policy(Policy {
            memory_limit: 64 << 20,
            ..Policy::default()
        }))
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "the process's policy is not valid: memory_limit is 67108864 bytes, but this node's instance pool holds memories of at most 33554432 bytes"
    );
    assert!(node.ps().is_empty(), "nothing was spawned");
}

async fn spawn_kv_at(node: &Node, vsn: &str) -> ProcessRef {
    let pid = node
        .spawn(SpawnSpec::new("kv").vsn(vsn))
        .await
        .expect("spawn");
    ProcessRef::from(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_back_to_back_wait_for_the_slot_the_last_one_frees() {
    // One process and one spare slot: each swap needs the slot that the instance retired
    // by the swap before it holds until it is dropped, off the actor's task.
    let node = node_with_pool(2);
    let v0 = node.load_file("kv", guest("kv-v0")).await.expect("load");
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("load");
    let kv = spawn_kv_at(&node, "0").await;
    put(&node, &kv, "a", json!(1)).await;
    for i in 0..100 {
        let to = if i % 2 == 0 { v1.clone() } else { v0.clone() };
        node.swap(&kv, to, SwapOptions::default())
            .await
            .unwrap_or_else(|error| panic!("swap {i}: {error}"));
    }
    assert_eq!(vsn(&node, &kv), "0");
    assert_eq!(
        get(&node, &kv, "a").await,
        json!(1),
        "the state came through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_kept_busy_frees_the_slot_of_the_instance_its_swap_retired() {
    // One spare slot again, but the mailbox never empties: the instance a swap retires
    // must still give its slot back, or the next swap waits for it in vain.
    let node = node_with_pool(2);
    let v0 = node.load_file("kv", guest("kv-v0")).await.expect("load");
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("load");
    let kv = spawn_kv_at(&node, "0").await;
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood = tokio::spawn({
        let (node, kv, flooding) = (node.clone(), kv.clone(), flooding.clone());
        async move {
            // Faster than the guest serves: the mailbox stays full, and a full mailbox
            // refuses the cast, which is not counted.
            let mut accepted = 0u64;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..64 {
                    let put = format!(r#"{{"op":"put","key":"n","value":{}}}"#, accepted + 1);
                    if node.cast(&kv, put.into_bytes()).is_ok() {
                        accepted += 1;
                    }
                }
                tokio::task::yield_now().await;
            }
            accepted
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..6 {
        let to = if i % 2 == 0 { v1.clone() } else { v0.clone() };
        node.swap(&kv, to, SwapOptions::default())
            .await
            .unwrap_or_else(|error| panic!("swap {i} of a busy process: {error}"));
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let accepted = flood.await.expect("flood task");
    assert!(accepted > 0, "the flood got casts in");
    // Let the process work through the casts still queued (a call now would find the
    // mailbox full): every accepted cast is served, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let handled = node.process(&kv).expect("alive").describe().handled;
        if handled == accepted {
            break;
        }
        assert!(
            handled < accepted,
            "{handled} casts served, {accepted} accepted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{handled} of {accepted} accepted casts served within a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(vsn(&node, &kv), "0");
    assert_eq!(
        get(&node, &kv, "n").await,
        json!(accepted),
        "every accepted cast was served, in order, across the swaps"
    );
}

#[tokio::test]
async fn a_spawn_into_a_pool_full_of_live_processes_is_refused_naming_the_pool() {
    let node = node_with_pool(2);
    node.load_file("kv", guest("kv-v0")).await.expect("load");
    let first = spawn_kv_at(&node, "0").await;
    spawn_kv_at(&node, "0").await;
    let error = node.spawn(SpawnSpec::new("kv")).await.expect_err("no slot");
    assert_eq!(
        error.to_string(),
        "cannot instantiate kv vsn 0: maximum concurrent limit of 2 for component instances reached, and no slot came free within 1s"
    );
    put(&node, &first, "a", json!(1)).await;
    assert_eq!(
        get(&node, &first, "a").await,
        json!(1),
        "the others serve on"
    );
    assert_eq!(node.ps().len(), 2);
}

/// A `hostile-memory-bomb` process, of the module loaded as "bomb".
async fn spawn_bomb(node: &Node) -> ProcessRef {
    let pid = node.spawn(SpawnSpec::new("bomb")).await.expect("spawn");
    ProcessRef::from(pid)
}

/// Loads `hostile-memory-bomb` as "bomb", spawns one that fills 8 MiB of its memory, and
/// stops it.
async fn a_bomb_wrote_8_mib_and_stopped(node: &Node) {
    node.load_file("bomb", guest("hostile-memory-bomb"))
        .await
        .expect("load");
    let bomb = spawn_bomb(node).await;
    let filled = call_raw(node, &bomb, json!({"op": "grow", "mib": 8})).await;
    assert_eq!(filled.expect("filled"), json!(8));
    node.stop(&bomb, "done").await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_told_to_keep_nothing_gives_back_every_page_a_stopped_process_wrote() {
    let node = node_with(hotswap::Allocation::Pooled {
        instances: 1,
        max_memory: 32 << 20,
        keep_resident: 0,
    });
    a_bomb_wrote_8_mib_and_stopped(&node).await;
    // The instance is dropped off the stopping task: wait until its memory slot is free.
    let metrics = node.engine().pooling_allocator_metrics().expect("pooled");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metrics.memories() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped process's memory slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        metrics.unused_memory_bytes_resident(),
        0,
        "bytes the freed slot kept resident"
    );

    let second = spawn_bomb(&node).await;
    let not_zero = call_raw(&node, &second, json!({"op": "unwritten", "mib": 12})).await;
    assert_eq!(not_zero.expect("read"), json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_one_process_wrote_reads_as_zero_in_the_next_process_of_its_pool_slot() {
    // One instance slot: the second process gets the memory slot the first one filled
    // (wasmtime reuses the one its module last had), which the pool resets in place rather
    // than handing back to the kernel, where the kernel can list written pages.
    let node = node_with_pool(1);
    a_bomb_wrote_8_mib_and_stopped(&node).await;
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        // The instance is dropped off the stopping task: give it a moment.
        let metrics = node.engine().pooling_allocator_metrics().expect("pooled");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while metrics.unused_memory_bytes_resident() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the freed slot kept none of the pages it wrote"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let second = spawn_bomb(&node).await;
    let not_zero = call_raw(&node, &second, json!({"op": "unwritten", "mib": 12})).await;
    assert_eq!(
        not_zero.expect("read"),
        json!(0),
        "bytes the first process wrote, read by the second"
    );
}
