//! Calls (or casts to) one kv process from one task as fast as it answers, and prints the
//! rate: `cargo run --release -p hotswap-bench --example call_profile -- N call|cast|queued`.
//! `queued` casts N puts to the process while it is suspended and times it from its resumption
//! until a call behind them returns: how fast the process serves a full mailbox, with no
//! sender beside it. Run it under `perf stat -e task-clock` to compare CPU per message between
//! builds: on this shared machine, wall-clock rates move more than the code does. With
//! `KV=FILE.wasm` it serves that kv component instead of the built v0 (an older build of it,
//! say); with `HIBERNATE_AFTER_MS=N` the process runs under a policy that hibernates it after
//! N ms idle.

use std::time::{Duration, Instant};

use hotswap::{Allocation, Node, NodeOptions, Policy, ProcessRef, SpawnSpec};

/// What the task sends, and what is timed.
#[derive(Clone, Copy)]
enum Mode {
    /// `get` calls, one after another.
    Call,
    /// `put` casts, then a call that returns once they are all served.
    Cast,
    /// `put` casts to the suspended process; timed from its resumption.
    Queued,
}

/// The kv component served, unless `KV=FILE.wasm` names another (such as an older build).
const KV: &str = "guests/rust/target/wasm32-wasip2/release/kv_v0.wasm";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(200_000), |n| n.parse())?;
    let mode = match args.next().as_deref() {
        None | Some("call") => Mode::Call,
        Some("cast") => Mode::Cast,
        Some("queued") => Mode::Queued,
        Some(other) => anyhow::bail!("call, cast or queued, not {other:?}"),
    };
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(100, 256 << 20),
        cache_dir: Some(std::env::temp_dir().join("hotswap-call-profile-cache")),
        ..NodeOptions::default()
    })?;
    let kv = node
        .load_file("kv", std::env::var("KV").unwrap_or_else(|_| KV.to_owned()))
        .await?;
    let hibernate_after = match std::env::var("HIBERNATE_AFTER_MS") {
        Ok(ms) => Some(Duration::from_millis(ms.parse()?)),
        Err(_) => None,
    };
    let policy = Policy {
        mailbox_capacity: n + 16,
        hibernate_after,
        ..Policy::default()
    };
    node.spawn(SpawnSpec::new("kv").vsn(&*kv.vsn).name("kv").policy(policy))
        .await?;
    let target = ProcessRef::from("kv");
    let get = br#"{"op":"get","key":"k"}"#.to_vec();
    let put = |i: usize| format!(r#"{{"op":"put","key":"k","value":{i}}}"#).into_bytes();
    // On a worker thread, as a process or a connection handler would be.
    let elapsed = tokio::spawn(async move {
        let mut started = Instant::now();
        match mode {
            Mode::Call => {
                for _ in 0..n {
                    node.call(&target, get.clone(), Duration::from_secs(10))
                        .await?;
                }
            }
            Mode::Cast => {
                for i in 0..n {
                    node.cast(&target, put(i))?;
                }
            }
            Mode::Queued => {
                node.suspend(&target).await?;
                for i in 0..n {
                    node.cast(&target, put(i))?;
                }
                started = Instant::now();
                node.resume(&target).await?;
            }
        }
        node.call(&target, get, Duration::from_secs(120)).await?;
        anyhow::Ok(started.elapsed())
    })
    .await??;
    let what = match mode {
        Mode::Call => "calls",
        Mode::Cast => "casts",
        Mode::Queued => "queued casts",
    };
    eprintln!(
        "{n} {what}: {:.0}/s ({:.2} us each)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}
