//! Swaps one idle kv process between v0 and v1 many times and prints the pause's spread:
//! `cargo run --release -p hotswap-bench --example swap_profile -- SWAPS [KEYS]` (60 keys are
//! about 1 KiB of state, 57,000 about 0.9 MB). Says how many swaps went the classic way. A
//! focused companion of `just bench`'s swaps group, for profiling. With `KV=FILE.wasm` (such
//! as `guests/out/kv_js.wasm`) the process swaps between two loads of that component instead,
//! under the default policy's time limits.

use std::time::Duration;

use hotswap::{
    Allocation, Direction, Node, NodeOptions, Policy, ProcessRef, SpawnSpec, SwapOptions,
};

const GUESTS: &str = "guests/rust/target/wasm32-wasip2/release";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let swaps: usize = args.next().map_or(Ok(2_000), |n| n.parse())?;
    let keys: usize = args.next().map_or(Ok(60), |n| n.parse())?;
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(2_000, 256 << 20),
        ..NodeOptions::default()
    })?;
    let (v0, v1) = match std::env::var("KV") {
        Ok(file) => {
            let kv = node.load_file("kv", file).await?;
            (kv.clone(), kv)
        }
        Err(_) => (
            node.load_file("kv", format!("{GUESTS}/kv_v0.wasm")).await?,
            node.load_file("kv", format!("{GUESTS}/kv_v1.wasm")).await?,
        ),
    };
    let policy = Policy {
        memory_limit: 256 << 20,
        mailbox_capacity: keys + 16,
        ..Policy::default()
    };
    node.spawn(SpawnSpec::new("kv").vsn(&*v0.vsn).name("kv").policy(policy))
        .await?;
    let kv = ProcessRef::from("kv");
    for i in 0..keys {
        let put = format!(r#"{{"op":"put","key":"k{i:06}","value":{i}}}"#);
        node.cast(&kv, put.into_bytes())?;
    }
    let get = br#"{"op":"get","key":"k"}"#.to_vec();
    node.call(&kv, get, Duration::from_secs(60)).await?;
    let state = node.get_state(&kv).await?.len();

    let (mut pauses, mut classic) = (Vec::with_capacity(swaps), 0);
    for i in 0..swaps {
        let (to, direction) = if i % 2 == 0 {
            (&v1, Direction::Upgrade)
        } else {
            (&v0, Direction::Downgrade)
        };
        let options = SwapOptions {
            direction,
            ..SwapOptions::default()
        };
        let report = node.swap(&kv, to.clone(), options).await?;
        pauses.push(report.pause);
        classic += usize::from(!report.migrated_before_pause);
    }
    pauses.sort();
    let at = |q: f64| pauses[((pauses.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{swaps} swaps of {state} bytes ({classic} classic): pause p50 {:?} p90 {:?} p95 {:?} p98 {:?} p99 {:?} max {:?}",
        at(0.5),
        at(0.9),
        at(0.95),
        at(0.98),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
