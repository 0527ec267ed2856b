//! The tail latency of a bare tokio server, for comparison with a process's: four client
//! tasks call one server task through a channel and a oneshot for S seconds, each spinning
//! 1 µs after its call (as ours build their next request), and the server does about 2 µs
//! of work per call:
//! `cargo run --release -p hotswap-bench --example server_ping -- S clock|loop|wasm|wasm-async`.
//!
//! - `clock`: spins until the clock says the time has passed;
//! - `loop`: a Rust loop of as many iterations as that took at the start of the run (see
//!   `calibrate`; each run prints its counts);
//! - `wasm`: a wasm function doing a loop, called synchronously on a node's engine;
//! - `wasm-async`: the same function called on a fiber, yielding at epoch ticks as a
//!   process's guest calls do.
//!
//! Fixed work takes longer when this shared machine is busy, and a spin bounded by the
//! clock does not: only the last three model a guest's work. Prints p50, p99 and p99.9.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hotswap::{Allocation, Node, NodeOptions};
use hotswap_bench::stats::{Metric, sample_buffer};
use tokio::sync::{mpsc, oneshot};
use wasmtime::{Instance, Module, Store, TypedFunc};

/// A loop of `n` iterations, returning `n`.
const SPIN_WAT: &str = r#"(module (func (export "spin") (param i64) (result i64) (local i64)
    (loop $again
        (local.set 1 (i64.add (local.get 1) (i64.const 1)))
        (br_if $again (i64.lt_s (local.get 1) (local.get 0))))
    (local.get 1)))"#;

/// What the server does for each call.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    Clock,
    Loop,
    Wasm,
    WasmAsync,
}

/// The server's work per call.
const WORK: Duration = Duration::from_micros(2);

fn wasm_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}

/// The number of iterations of `spin` (wasm) and of a Rust loop that take about [`WORK`]:
/// the fastest of five timings of each, at the start of the run. This machine's speed
/// moves between runs and within one (24 runs found from 800 to 2,950 wasm iterations,
/// and from 530 to 5,980 Rust ones): compare the modes in interleaved runs only.
async fn calibrate(
    store: &mut Store<()>,
    spin: &TypedFunc<i64, i64>,
) -> anyhow::Result<(i64, i64)> {
    const PROBE: i64 = 1_000_000;
    let (mut wasm, mut rust) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let started = Instant::now();
        spin.call_async(&mut *store, PROBE)
            .await
            .map_err(wasm_error)?;
        wasm = wasm.min(started.elapsed());
        let started = Instant::now();
        rust_loop(PROBE);
        rust = rust.min(started.elapsed());
    }
    let iterations =
        |took: Duration| (PROBE as f64 * WORK.as_secs_f64() / took.as_secs_f64()) as i64;
    Ok((iterations(wasm), iterations(rust)))
}

fn rust_loop(n: i64) {
    let mut i = 0i64;
    while i < n {
        i = std::hint::black_box(i + 1);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .map_or(Ok(4), |s| s.parse())
        .context("S, the seconds to run, is a whole number")?;
    let work = match args.next().as_deref() {
        None | Some("clock") => Work::Clock,
        Some("loop") => Work::Loop,
        Some("wasm") => Work::Wasm,
        Some("wasm-async") => Work::WasmAsync,
        Some(other) => bail!("clock, loop, wasm or wasm-async, not {other:?}"),
    };
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(10, 64 << 20),
        ..NodeOptions::default()
    })?;
    let engine = node.engine().clone();
    let module = Module::new(&engine, SPIN_WAT).map_err(wasm_error)?;
    let mut store = Store::new(&engine, ());
    // Far beyond any run: no epoch tick interrupts the calibration, nor the `wasm` mode.
    store.set_epoch_deadline(1 << 40);
    let instance = Instance::new_async(&mut store, &module, &[])
        .await
        .map_err(wasm_error)?;
    let spin = instance
        .get_typed_func::<i64, i64>(&mut store, "spin")
        .map_err(wasm_error)?;
    let (wasm_iterations, rust_iterations) = calibrate(&mut store, &spin).await?;
    if work == Work::WasmAsync {
        store.epoch_deadline_async_yield_and_update(1);
    }

    let (requests, mut served) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
    let server = tokio::spawn(async move {
        while let Some(reply) = served.recv().await {
            match work {
                Work::Clock => {
                    let started = Instant::now();
                    while started.elapsed() < WORK {}
                }
                Work::Loop => rust_loop(rust_iterations),
                Work::Wasm => {
                    spin.call(&mut store, wasm_iterations).map_err(wasm_error)?;
                }
                Work::WasmAsync => {
                    store.set_epoch_deadline(1);
                    spin.call_async(&mut store, wasm_iterations)
                        .await
                        .map_err(wasm_error)?;
                }
            }
            let _ = reply.send(());
        }
        anyhow::Ok(())
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let requests = requests.clone();
        // Room for 250,000 calls a second, over twice the most a client has made.
        let mut samples = sample_buffer(250_000 * seconds.max(1) as usize);
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let started = Instant::now();
                let (reply, replied) = oneshot::channel();
                requests.send(reply).context("the server stopped")?;
                replied.await.context("the server dropped a call")?;
                samples.push(started.elapsed());
                let next = Instant::now();
                while next.elapsed() < Duration::from_micros(1) {}
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for client in clients {
        match client.await? {
            Ok(made) => samples.extend(made),
            // A client fails when the server has stopped: its error says why.
            Err(error) if server.is_finished() => return Err(server.await?.err().unwrap_or(error)),
            Err(error) => return Err(error),
        }
    }
    let latency = Metric::latency("call", &mut samples);
    let (Some(p50), Some(p99), Some(p999)) = (latency.p50, latency.p99, latency.p999) else {
        bail!("no call ended within {seconds} s");
    };
    println!(
        "{} calls ({wasm_iterations} wasm or {rust_iterations} Rust iterations a call): \
         p50 {p50:.1} µs, p99 {p99:.1}, p99.9 {p999:.1}",
        samples.len(),
    );
    Ok(())
}
