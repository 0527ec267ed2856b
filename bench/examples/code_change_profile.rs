//! Where a `code-change` under load spends its time, with wasmtime alone: the small state
//! the bench's load leaves (4 keys) handed to kv v1's `code-change` on fresh instances, one
//! after another, timed three ways in turn:
//! - `hot`: with the caches as the round before left them, the same call having just run;
//! - `flushed`: after writing a buffer larger than the caches, as the bench's swaps under
//!   load find them (the code of `code-change` last ran one swap before, 10 ms of other work
//!   ago);
//! - `rehearsed`: flushed, then one `code-change` on a spare instance right before, which
//!   brings its code back but not the new instance's memory.
//!
//! `cargo run --release -p hotswap-bench --example code_change_profile -- [ROUNDS]`. Each
//! instance is made and called as the host prepares a swap's target (`vsn` first), in a
//! store of its own, with every import a trap (kv v1's `code-change` calls none).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hotswap::{Allocation, Node, NodeOptions};
use wasmtime::Store;
use wasmtime::component::{Func, InstancePre, Linker, Val};

const KV_V1: &str = "guests/rust/target/wasm32-wasip2/release/kv_v1.wasm";
const SERVER: &str = "hotswap:otp/server@0.1.0";

/// What the bench's 4 clients leave in the kv: one counter each.
const STATE: &[u8] = br#"{"entries":{"c0":123456,"c1":123457,"c2":123458,"c3":123459}}"#;

/// Larger than this machine's caches, so that writing it evicts what they held.
const FLUSH_BYTES: usize = 64 << 20;

#[derive(Clone, Copy, Debug)]
enum Mode {
    Hot,
    Flushed,
    Rehearsed,
}

const MODES: [Mode; 3] = [Mode::Hot, Mode::Flushed, Mode::Rehearsed];

/// Rounds of each mode left out of the figures: they warm up the pool's slots.
const WARM_UP_ROUNDS: usize = 10;

fn wasmtime_error(doing: &'static str) -> impl Fn(wasmtime::Error) -> anyhow::Error {
    move |error| anyhow!("{doing}: {error:#}")
}

/// A fresh instance in a store of its own, called once (`vsn`), and its `code-change`.
async fn prepared(pre: &InstancePre<()>) -> anyhow::Result<(Store<()>, Func)> {
    let mut store = Store::new(pre.engine(), ());
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .map_err(wasmtime_error("instantiating"))?;
    let server = instance
        .get_export_index(&mut store, None, SERVER)
        .with_context(|| format!("kv v1 exports no {SERVER}"))?;
    let mut export = |name: &str| {
        let index = instance
            .get_export_index(&mut store, Some(&server), name)
            .with_context(|| format!("kv v1 exports no {name}"))?;
        instance
            .get_func(&mut store, index)
            .with_context(|| format!("kv v1's {name} is not a function"))
    };
    let (vsn, code_change) = (export("vsn")?, export("code-change")?);
    let mut result = [Val::Bool(false)];
    vsn.call_async(&mut store, &[], &mut result)
        .await
        .map_err(wasmtime_error("vsn"))?;
    Ok((store, code_change))
}

/// One `code-change` of [`STATE`], and how long the call took.
async fn code_change(store: &mut Store<()>, code_change: Func) -> anyhow::Result<Duration> {
    let change = Val::Variant("upgrade".into(), Some(Box::new(Val::String("0".into()))));
    let state = Val::List(STATE.iter().copied().map(Val::U8).collect());
    let params = [change, state, Val::List(Vec::new())];
    let mut result = [Val::Bool(false)];
    store.set_epoch_deadline(1);
    let started = Instant::now();
    code_change
        .call_async(&mut *store, &params, &mut result)
        .await
        .map_err(wasmtime_error("code-change"))?;
    let took = started.elapsed();
    match &result[0] {
        Val::Result(Ok(_)) => Ok(took),
        refused => Err(anyhow!("code-change refused the state: {refused:?}")),
    }
}

/// Writes a byte in every cache line of `buffer`.
fn flush(buffer: &mut [u8], round: usize) {
    for line in buffer.iter_mut().step_by(64) {
        *line = line.wrapping_add(round as u8 | 1);
    }
    std::hint::black_box(buffer);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(Ok(3_000), |n| n.parse())
        .context("ROUNDS is a count")?;
    anyhow::ensure!(
        rounds > WARM_UP_ROUNDS,
        "ROUNDS must be over {WARM_UP_ROUNDS}: the first {WARM_UP_ROUNDS} warm up the pool"
    );
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(64, 64 << 20),
        ..NodeOptions::default()
    })?;
    let v1 = node
        .load_file("kv", KV_V1)
        .await
        .context("kv v1 (run `just guests`)")?;
    let mut linker = Linker::new(v1.engine());
    linker
        .define_unknown_imports_as_traps(v1.component())
        .map_err(wasmtime_error("linking traps"))?;
    let pre = linker
        .instantiate_pre(v1.component())
        .map_err(wasmtime_error("pre-instantiating"))?;
    let mut buffer = vec![0u8; FLUSH_BYTES];
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds.saturating_mul(MODES.len()) {
        let mode = MODES[round % MODES.len()];
        let (mut store, call) = prepared(&pre).await?;
        if !matches!(mode, Mode::Hot) {
            flush(&mut buffer, round);
        }
        if matches!(mode, Mode::Rehearsed) {
            let (mut spare, rehearsal) = prepared(&pre).await?;
            code_change(&mut spare, rehearsal).await?;
        }
        let took = code_change(&mut store, call).await?;
        if round >= WARM_UP_ROUNDS * MODES.len() {
            samples[round % MODES.len()].push(took);
        }
    }
    for (mode, samples) in MODES.iter().zip(&mut samples) {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{:<10} code-change p10 {:5.1}  p50 {:5.1}  p90 {:5.1}  p99 {:5.1} us  ({} calls)",
            format!("{mode:?}").to_lowercase(),
            at(0.10),
            at(0.50),
            at(0.90),
            at(0.99),
            samples.len()
        );
    }
    Ok(())
}
