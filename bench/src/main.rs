//! `just bench`: measures hotswap on this machine and, with `--with-beam` (or when the
//! BEAM's figures are already there: `just bench-beam` writes them), prints them side by
//! side with ratios and the goals of the performance issue. Writes the whole run as JSON.

mod beam;
mod floor;
mod load;
mod memory;
mod report;
mod scenarios;
mod turns;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use hotswap::{Allocation, ModuleVersion, Node, NodeOptions, Policy};

use crate::beam::BeamSide;
use crate::report::Run;
use hotswap_bench::stats::Metric;

#[derive(Debug, Parser)]
struct Args {
    /// Where the guest components are.
    #[arg(long, default_value = "guests/rust/target/wasm32-wasip2/release")]
    guests: PathBuf,
    /// Where the other languages' kv components are (kv_py.wasm, kv_js.wasm, kv_c.wasm).
    #[arg(long, default_value = "guests/out")]
    polyglot: PathBuf,
    /// The BEAM's figures: read from here (`just bench-beam` writes them), or, with
    /// `--with-beam`, written here.
    #[arg(long, default_value = "target/bench/beam.json")]
    beam: PathBuf,
    /// Measure the BEAM's side too, each group right before ours (needs `elixir` on PATH;
    /// `just bench-beam` installs it).
    #[arg(long)]
    with_beam: bool,
    /// The BEAM's side of the benchmark, for `--with-beam`.
    #[arg(long, default_value = "bench/beam/kv_bench.exs")]
    beam_script: PathBuf,
    /// Where to write this run.
    #[arg(long, default_value = "target/bench/hotswap.json")]
    out: PathBuf,
    /// Fewer samples and processes: a smoke run, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Run only these groups (messaging, swaps, processes, loading); all when not given.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Args {
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let scale = if args.quick { 10 } else { 1 };
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(2_000, 256 << 20),
        ..NodeOptions::default()
    })?;
    let load = |name: &str| args.guests.join(format!("{name}.wasm"));
    let v0 = node
        .load_file("kv", load("kv_v0"))
        .await
        .context("kv v0 (run `just guests`)")?;
    let v1 = node.load_file("kv", load("kv_v1")).await.context("kv v1")?;
    let scratch = args.out.parent().unwrap_or(std::path::Path::new("."));
    let mut beam_side = args.with_beam.then(|| {
        BeamSide::new(
            "elixir".into(),
            args.beam_script.clone(),
            scratch,
            args.quick,
        )
    });
    let mut metrics: Vec<Metric> = Vec::new();
    let mut record = |metric: Metric| {
        eprintln!("  measured {}", metric.name);
        metrics.push(metric);
    };

    if args.runs("messaging") {
        if let Some(beam) = &mut beam_side {
            beam.measure("messaging").await;
        }
        eprintln!("messaging ...");
        // Per round, of `scenarios::ROUNDS`.
        record(scenarios::call_rtt(&node, &v0, 1, 80_000 / scale).await?);
        record(scenarios::call_rtt(&node, &v0, 2, 80_000 / scale).await?);
        for metric in scenarios::cast_throughput(&node, &v0, 200_000 / scale).await? {
            record(metric);
        }
        record(floor::cheapest_call_rate(&v0, 200_000 / scale).await?);
    }

    if args.runs("swaps") {
        if let Some(beam) = &mut beam_side {
            beam.measure("swaps").await;
        }
        eprintln!("swaps ...");
        // 2,000 samples, so that the p99 (the goal) rests on the 20 slowest, not on the
        // second slowest of 200; about half a second.
        record(
            scenarios::swap_pause(&node, "swap_pause_rust_1kib", &v0, &v1, 1024, 2_000 / scale)
                .await?,
        );
        record(
            scenarios::swap_pause(
                &node,
                "swap_pause_rust_1mib",
                &v0,
                &v1,
                1 << 20,
                100 / scale,
            )
            .await?,
        );
        for (language, file) in polyglot(&args) {
            let version: Arc<ModuleVersion> =
                node.load_file(&format!("kv_{language}"), &file).await?;
            record(
                scenarios::swap_pause(
                    &node,
                    &format!("swap_pause_{language}_1kib"),
                    &version,
                    &version,
                    1024,
                    100 / scale,
                )
                .await?,
            );
            // Fewer samples: an interpreted guest takes a tenth of a second or more to write
            // or read a megabyte of JSON, where the Rust one takes a few milliseconds.
            record(
                scenarios::swap_pause(
                    &node,
                    &format!("swap_pause_{language}_1mib"),
                    &version,
                    &version,
                    1 << 20,
                    (20 / scale).max(2),
                )
                .await?,
            );
        }
        let under = Duration::from_secs(if args.quick { 1 } else { 5 });
        // The same load without swaps first, for comparison with the tail under swaps.
        for swaps in [false, true] {
            for metric in scenarios::latency_under_load(&node, &v0, &v1, under, swaps).await? {
                record(metric);
            }
        }
    }

    drop(node);
    if args.runs("processes") {
        if let Some(beam) = &mut beam_side {
            beam.measure("processes").await;
        }
        eprintln!("processes ...");
        memory::allow_many_mappings(110_000);
        // 100,000 processes spawned by one task per worker thread, first, before the runs
        // of 100,000 processes below leave their memory to this process's allocator (the
        // BEAM's side spawns them in a fresh VM); then as many instances made by wasmtime
        // alone in the same way, the floor under that rate. Each on a fresh node, the one
        // freed before the other starts: together they would slow each other's mappings.
        {
            let n = 100_000 / scale;
            let (node, v0) = node_for_processes(n, &load("kv_v0")).await?;
            match scenarios::spawn_rate_per_core(&node, &v0, n).await {
                Ok(rate) => record(rate),
                Err(error) => eprintln!("  {n} processes spawned per core: {error:#}"),
            }
        }
        {
            let n = 100_000 / scale;
            let (_node, v0) = node_for_processes(n, &load("kv_v0")).await?;
            // The processes' freed memory goes back to the kernel first: reused, it would
            // spare the floor page faults that the processes took.
            memory::trim_allocator();
            match floor::spawn_rate_per_core(&v0, n).await {
                Ok(rate) => record(rate),
                Err(error) => eprintln!("  {n} instances by wasmtime alone: {error:#}"),
            }
        }
        for n in [10_000, 100_000] {
            let n = n / scale;
            let (node, v0) = node_for_processes(n, &load("kv_v0")).await?;
            match scenarios::spawn_and_memory(&node, &v0, n, false).await {
                Ok(measured) => {
                    record(measured.rate);
                    record(measured.resident);
                    record(measured.proportional);
                    record(measured.machine);
                }
                Err(error) => eprintln!("  {n} processes: {error:#}"),
            }
        }
        // Again with hibernation on: the same processes, once every one has hibernated.
        for n in [10_000, 100_000] {
            let n = n / scale;
            let (node, v0) = node_for_processes(n, &load("kv_v0")).await?;
            match scenarios::spawn_and_memory(&node, &v0, n, true).await {
                Ok(measured) => {
                    record(measured.resident);
                    record(measured.proportional);
                    record(measured.machine);
                }
                Err(error) => eprintln!("  {n} hibernating processes: {error:#}"),
            }
        }
    }

    if args.runs("loading") {
        eprintln!("loading ...");
        let mut files = vec![("rust".to_string(), load("kv_v0"))];
        files.extend(polyglot(&args));
        for (language, file) in files {
            for metric in scenarios::load_times(&language, &file, &Policy::default()).await? {
                record(metric);
            }
        }
    }

    let run = Run {
        runtime: "hotswap".into(),
        metrics,
        ..Run::default()
    };
    let (beam, beam_failures) = match beam_side {
        Some(side) => {
            let (beam, failures) = side.finish();
            match &beam {
                Some(beam) => write_json(&args.beam, beam)?,
                // An earlier run's figures must not pass for this one's next time.
                None => beam::remove_stale(&args.beam)?,
            }
            (beam, failures)
        }
        None => {
            let beam = std::fs::read(&args.beam)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            (beam, Vec::new())
        }
    };
    println!();
    report::print_table(&run, beam.as_ref());
    let goals = report::goals(&run, beam.as_ref(), args.runs("processes"));
    report::print_goals(&goals);
    match &beam {
        Some(beam) if args.with_beam => println!(
            "(the BEAM: {}, each group measured right before ours)",
            beam.describe()
        ),
        Some(beam) => println!(
            "(the BEAM: {}, read from {}, from an earlier run)",
            beam.describe(),
            args.beam.display()
        ),
        None if args.with_beam => println!("(the BEAM measured nothing)"),
        None => println!(
            "(no BEAM figures at {}: run `just bench` with Elixir installed for the comparison)",
            args.beam.display()
        ),
    }
    for failure in &beam_failures {
        println!("(the BEAM's {failure})");
    }
    write_json(&args.out, &run)?;
    println!("written to {}", args.out.display());
    Ok(())
}

/// A node of its own for `n` processes of the kv at `kv`, and that kv loaded: its pool is
/// sized for them and reserved up front, so that every processes measurement spawns into
/// fresh slots (a slot that an earlier instance used is cheaper to take).
async fn node_for_processes(n: usize, kv: &Path) -> Result<(Node, Arc<ModuleVersion>)> {
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(n as u32 + 16, 64 << 20),
        ..NodeOptions::default()
    })?;
    let kv = node.load_file("kv", kv).await?;
    Ok((node, kv))
}

/// Writes `run` as JSON at `path`, making its directory.
fn write_json(path: &Path, run: &Run) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(run)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The other languages' kv components that are built.
fn polyglot(args: &Args) -> Vec<(String, PathBuf)> {
    ["py", "js", "c"]
        .into_iter()
        .map(|language| {
            (
                language.to_string(),
                args.polyglot.join(format!("kv_{language}.wasm")),
            )
        })
        .filter(|(_, file)| file.exists())
        .collect()
}
