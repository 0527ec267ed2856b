//! Releases and module updates: many processes move all or nothing, and back.

use std::path::Path;
use std::time::Duration;

use hotswap::{Direction, Node, Policy, ProcessRef, Release, ReleaseError, SpawnSpec, SwapError};
use serde_json::{Value, json};

use crate::common::*;

/// Two `kv` processes and one `cache` process (the same component under another module
/// name), each holding a distinct state.
async fn three_processes() -> (Node, Vec<ProcessRef>) {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("kv", guest("kv-v0")).await.expect("kv v0");
    node.load_file("cache", guest("kv-v0"))
        .await
        .expect("cache v0");
    let mut refs = Vec::new();
    for (module, name) in [("kv", "kv-1"), ("kv", "kv-2"), ("cache", "cache")] {
        node.spawn(SpawnSpec::new(module).name(name))
            .await
            .expect("spawn");
        let target = ProcessRef::from(name);
        put(&node, &target, "owner", json!(name)).await;
        refs.push(target);
    }
    (node, refs)
}

async fn snapshot_all(node: &Node, refs: &[ProcessRef]) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for target in refs {
        all.push((vsn(node, target), state(node, target).await));
    }
    all
}

fn release(text: &str) -> Release {
    let dir = std::env::temp_dir().join(format!(
        "hotswap-release-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("release.toml");
    std::fs::write(&path, text).expect("write release");
    let release = Release::from_file(&path).expect("valid release");
    let _ = std::fs::remove_dir_all(&dir);
    release
}

fn file(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn a_release_with_one_failing_module_moves_nobody() {
    let (node, refs) = three_processes().await;
    let before = snapshot_all(&node, &refs).await;
    let bad = release(&format!(
        "name = \"bad\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\n[[module]]\nname = \"cache\"\nfile = \"{}\"\n",
        file(&guest("kv-v1")),
        file(&guest("kv-migrate-error"))
    ));
    let error = node.upgrade(&bad).await.expect_err("cache refuses");
    let ReleaseError::RolledBack { failures, .. } = &error else {
        panic!("expected a rollback, got {error}");
    };
    assert_eq!(failures.len(), 1, "{error}");
    assert!(
        matches!(&failures[0], SwapError::CodeChangeRefused { module, .. } if module == "cache"),
        "{error}"
    );
    assert_eq!(
        snapshot_all(&node, &refs).await,
        before,
        "every version and state kept"
    );
    for target in &refs {
        let info = node.process(target).expect("alive").describe();
        assert!(!info.suspended, "{} was resumed", target);
        put(&node, target, "after", json!(1)).await;
    }
    let error = node
        .downgrade()
        .await
        .expect_err("a failed release is not recorded");
    assert!(matches!(error, ReleaseError::NothingToDowngrade), "{error}");
}

#[tokio::test]
async fn a_release_can_move_every_process_of_a_node_sized_by_its_config() {
    let config = hotswap::config::NodeConfig::parse("max_processes = 40").expect("config");
    let node = Node::with_options(hotswap::NodeOptions {
        allocation: config.allocation(),
        default_policy: config.policy.clone(),
        ..hotswap::NodeOptions::default()
    })
    .expect("node");
    node.load_file("kv", guest("kv-v0")).await.expect("kv v0");
    let mut all = Vec::new();
    for i in 0..40 {
        let pid = node.spawn(SpawnSpec::new("kv")).await.expect("spawn");
        let target = ProcessRef::from(pid);
        put(&node, &target, "i", json!(i)).await;
        all.push(target);
    }
    let everyone = release(&format!(
        "name = \"everyone\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\n",
        file(&guest("kv-v1"))
    ));
    let report = node.upgrade(&everyone).await.expect("upgrade");
    assert_eq!(report.processes.len(), 40);
    for (i, target) in all.iter().enumerate() {
        assert_eq!(vsn(&node, target), "1");
        assert_eq!(get(&node, target, "i").await, json!(i));
    }
}

#[tokio::test]
async fn a_release_moves_every_process_and_downgrades_back() {
    let (node, refs) = three_processes().await;
    let good = release(&format!(
        "name = \"logging\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\nextra = \"hello\"\n[[module]]\nname = \"cache\"\nfile = \"{}\"\n",
        file(&guest("kv-v1")),
        file(&guest("kv-v1"))
    ));
    let report = node.upgrade(&good).await.expect("upgrade");
    assert_eq!(report.release, "logging");
    let moved: Vec<_> = report
        .processes
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.from_vsn.clone(),
                p.to_vsn.clone(),
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("kv-1".to_string(), "0".to_string(), "1".to_string()),
            ("kv-2".into(), "0".into(), "1".into()),
            ("cache".into(), "0".into(), "1".into())
        ],
        "in the release's order"
    );
    assert!(report.processes.iter().all(|p| p.pause <= report.pause));
    for moved in &report.processes {
        assert!(
            moved.pause >= moved.snapshot + moved.code_change,
            "each process's guest calls were in its pause: {moved:?}"
        );
        assert!(moved.code_change > Duration::ZERO, "{moved:?}");
    }
    for target in &refs {
        assert_eq!(vsn(&node, target), "1");
        let owner = get(&node, target, "owner").await;
        assert_eq!(
            owner,
            json!(
                target
                    .to_string()
                    .trim_start_matches("named ")
                    .trim_matches('"')
            )
        );
    }

    let again = node.upgrade(&good).await.expect("nothing to do");
    assert!(
        again.processes.is_empty(),
        "already on the release's versions"
    );

    let back = node.downgrade().await.expect("downgrade");
    assert_eq!(back.direction, Direction::Downgrade);
    assert_eq!(back.processes.len(), 3);
    for target in &refs {
        assert_eq!(vsn(&node, target), "0");
        assert!(get(&node, target, "owner").await.is_string());
    }
}

#[tokio::test]
async fn update_moves_every_process_of_one_module_only() {
    let (node, refs) = three_processes().await;
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("v1");
    let report = node
        .update_module(v1, b"extra".to_vec())
        .await
        .expect("update");
    assert_eq!(report.processes.len(), 2);
    assert_eq!(vsn(&node, &refs[0]), "1");
    assert_eq!(vsn(&node, &refs[1]), "1");
    assert_eq!(vsn(&node, &refs[2]), "0", "cache is another module");
}

#[test]
fn a_release_naming_a_module_twice_is_refused() {
    let dir = std::env::temp_dir().join(format!("hotswap-dup-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("release.toml");
    let text = "name = \"dup\"\n[[module]]\nname = \"kv\"\nvsn = \"1\"\n[[module]]\nname = \"kv\"\nvsn = \"0\"\n";
    std::fs::write(&path, text).expect("write");
    let error = Release::from_file(&path).expect_err("kv twice");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        error.to_string().contains("\"kv\" is named twice"),
        "{error}"
    );
}

#[tokio::test]
async fn a_release_whose_caller_gives_up_still_ends_and_resumes_everyone() {
    let node = Node::new(Policy {
        swap_time_limit: Duration::from_millis(500),
        ..Policy::default()
    })
    .expect("node");
    node.load_file("kv", guest("kv-v0")).await.expect("kv v0");
    let mut refs = Vec::new();
    for name in ["kv-1", "kv-2"] {
        node.spawn(SpawnSpec::new("kv").name(name))
            .await
            .expect("spawn");
        let target = ProcessRef::from(name);
        put(&node, &target, "owner", json!(name)).await;
        refs.push(target);
    }
    // A code-change that spins until the swap time limit: the caller gives up while both
    // processes are suspended and staging.
    let spinning = release(&format!(
        "name = \"spin\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\nextra = \"spin\"\n",
        file(&guest("hostile-migrate"))
    ));
    let caller = {
        let node = node.clone();
        tokio::spawn(async move { node.upgrade(&spinning).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    caller.abort();
    assert!(caller.await.is_err(), "the caller was cancelled");

    // The release rolls back at the time limit on its own, and resumes both.
    for (target, name) in refs.iter().zip(["kv-1", "kv-2"]) {
        let reply = node
            .call(
                target,
                br#"{"op":"get","key":"owner"}"#.to_vec(),
                Duration::from_secs(5),
            )
            .await
            .expect("served again after the rollback");
        assert_eq!(
            serde_json::from_slice::<Value>(&reply).expect("json"),
            json!(name)
        );
        assert_eq!(vsn(&node, target), "0");
    }
    assert!(
        node.ps().iter().all(|p| !p.suspended),
        "nobody stays suspended"
    );
}

#[tokio::test]
async fn a_hand_built_release_is_checked_like_a_file() {
    let node = Node::new(Policy::default()).expect("node");
    let twice = Release {
        name: "twice".into(),
        modules: vec![
            hotswap::release::ReleaseModule {
                name: "kv".into(),
                file: None,
                vsn: Some("0".into()),
                extra: String::new(),
            };
            2
        ],
    };
    let error = node.upgrade(&twice).await.expect_err("refused");
    assert!(matches!(error, ReleaseError::Invalid { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "release twice: module \"kv\" is named twice"
    );
}

/// `kv-1` on module `kv` and `kv-2` on module `cache`, both kv "0", with hostile-migrate
/// loaded (not yet running) under both names, for a release that names its vsn.
async fn two_modules_and_hostile_migrate() -> (Node, ProcessRef, ProcessRef) {
    let node = Node::new(Policy::default()).expect("node");
    for module in ["kv", "cache"] {
        node.load_file(module, guest("kv-v0")).await.expect("v0");
    }
    for (module, name) in [("kv", "kv-1"), ("cache", "kv-2")] {
        node.spawn(SpawnSpec::new(module).name(name))
            .await
            .expect("spawn");
    }
    for module in ["kv", "cache"] {
        node.load_file(module, guest("hostile-migrate"))
            .await
            .expect("hostile-migrate");
    }
    (node, ProcessRef::from("kv-1"), ProcessRef::from("kv-2"))
}

/// A release to hostile-migrate: `kv` adopts its state at once, `cache` works 200 ms first.
fn one_fast_one_slow() -> Release {
    release(
        "name = \"fast-and-slow\"\n\
         [[module]]\nname = \"kv\"\nvsn = \"hostile-migrate\"\n\
         [[module]]\nname = \"cache\"\nvsn = \"hostile-migrate\"\nextra = \"slow\"\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_between_stage_and_commit_waits_for_the_commit() {
    capture_guest_logs();
    let (node, fast, slow) = two_modules_and_hostile_migrate().await;
    let release = one_fast_one_slow();
    let upgrade = {
        let node = node.clone();
        tokio::spawn(async move { node.upgrade(&release).await })
    };
    // `kv-1` adopts its state at once and waits for the commit while `kv-2` migrates.
    logged(
        &node,
        node.whereis("kv-2").expect("registered"),
        "migrating slowly",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    node.resume(&fast).await.expect("an operator's resume");
    let late = {
        let (node, fast) = (node.clone(), fast.clone());
        tokio::spawn(async move { put(&node, &fast, "late", json!(1)).await })
    };
    // The put is queued behind the hold that only the commit lifts; then the migration ends.
    while node.process(&fast).expect("alive").describe().mailbox == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    open_slow_migration_gate(&node, "kv").await;
    upgrade
        .await
        .expect("release task")
        .expect("release commits");
    assert_eq!(late.await.expect("put"), Value::Null, "a fresh key");
    assert_eq!(vsn(&node, &fast), "hostile-migrate");
    assert_eq!(
        state(&node, &fast).await,
        json!({"entries": {"late": 1}}),
        "the put went to the committed instance, not to the one the commit replaced"
    );
    assert_eq!(vsn(&node, &slow), "hostile-migrate");
}

#[tokio::test]
async fn a_release_leaves_an_operators_suspension_alone() {
    let (node, fast, slow) = two_modules_and_hostile_migrate().await;
    // Nothing here needs the migration to take long.
    open_slow_migration_gate(&node, "kv").await;
    node.suspend(&fast).await.expect("suspend");
    node.upgrade(&one_fast_one_slow()).await.expect("release");
    let suspended: Vec<bool> = [&fast, &slow]
        .iter()
        .map(|target| node.process(target).expect("alive").describe().suspended)
        .collect();
    assert_eq!(
        suspended,
        [true, false],
        "kv-1 stays suspended, kv-2 is resumed"
    );
    node.resume(&fast).await.expect("resume");
    assert_eq!(put(&node, &fast, "a", json!(1)).await, Value::Null);
    assert_eq!(vsn(&node, &fast), "hostile-migrate");
}
