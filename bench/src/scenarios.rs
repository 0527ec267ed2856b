//! The measurements, one function each. Every function builds what it needs on the node it
//! is given and returns one [`Metric`] (or a few).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hotswap::code::file_hashes::SETTLED;
use hotswap::{
    Direction, ModuleVersion, Node, NodeOptions, Pid, Policy, ProcessRef, SpawnSpec, SwapOptions,
};
use serde_json::json;
use tokio::task::JoinSet;

use crate::floor;
use crate::load::{LoadClients, Process};
use crate::memory::{available_bytes, proportional_bytes, resident_bytes, trim_allocator};
use crate::turns::{self, TakesTurns};
use hotswap_bench::stats::{Metric, Rounds, sample_buffer};

/// How long a call of the bench's may wait for its reply.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn get(key: &str) -> Vec<u8> {
    json!({"op": "get", "key": key}).to_string().into_bytes()
}

pub(crate) fn put(key: &str, value: u64) -> Vec<u8> {
    json!({"op": "put", "key": key, "value": value})
        .to_string()
        .into_bytes()
}

/// A fresh `kv` process on `version`, registered as `name` (for the log), and addressed by
/// its pid, as the BEAM side addresses its KV: a name costs a second lookup per message.
pub async fn spawn_kv(
    node: &Node,
    version: &ModuleVersion,
    name: &str,
    policy: Policy,
) -> Result<ProcessRef> {
    let pid = node
        .spawn(
            SpawnSpec::new(&*version.name)
                .vsn(&*version.vsn)
                .name(name)
                .policy(policy),
        )
        .await?;
    Ok(ProcessRef::from(pid))
}

/// How many rounds each messaging figure is measured in; its throughput is their median.
pub const ROUNDS: usize = 5;

/// Swap number `i` of a back-and-forth between `a` and `b`: up to `b` on even turns, down
/// to `a` on odd ones.
fn back_and_forth<'v>(
    i: u64,
    a: &'v Arc<ModuleVersion>,
    b: &'v Arc<ModuleVersion>,
) -> (&'v Arc<ModuleVersion>, SwapOptions) {
    let (to, direction) = if i.is_multiple_of(2) {
        (b, Direction::Upgrade)
    } else {
        (a, Direction::Downgrade)
    };
    let options = SwapOptions {
        direction,
        ..SwapOptions::default()
    };
    (to, options)
}

/// Round-trip latency of `get` calls from `clients` concurrent callers, `calls` in each of
/// [`ROUNDS`] rounds: the percentiles of every call, the throughput of the median round.
pub async fn call_rtt(
    node: &Node,
    version: &ModuleVersion,
    clients: usize,
    calls: usize,
) -> Result<Metric> {
    let target = spawn_kv(node, version, &format!("rtt-{clients}"), Policy::default()).await?;
    node.call(&target, put("a", 1), CALL_TIMEOUT).await?;
    for _ in 0..calls / 10 {
        node.call(&target, get("a"), CALL_TIMEOUT).await?;
    }
    // Built once and cloned for each call (`call` takes it by value), as the BEAM's client
    // sends a literal term that is copied to the server: what is measured is the call, not
    // serde_json writing the request.
    let request = get("a");
    let mut samples = Vec::with_capacity(calls * ROUNDS);
    let mut rates = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let buffers: Vec<_> = (0..clients)
            .map(|_| sample_buffer(calls / clients))
            .collect();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut buffer in buffers {
            let (node, target, request) = (node.clone(), target.clone(), request.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..calls / clients {
                    let t = Instant::now();
                    node.call(&target, request.clone(), CALL_TIMEOUT).await?;
                    buffer.push(t.elapsed());
                }
                anyhow::Ok(buffer)
            }));
        }
        let mut made = 0;
        for task in tasks {
            let round = task.await??;
            made += round.len();
            samples.extend(round);
        }
        rates.push(made as f64 / started.elapsed().as_secs_f64());
    }
    let mut metric = Metric::latency(&format!("call_rtt_{clients}"), &mut samples);
    let (throughput, rounds) = Rounds::median_of(&rates);
    metric.throughput_per_s = Some(throughput);
    metric.rounds = rounds;
    node.stop(&target, "bench done").await?;
    Ok(metric)
}

/// Casts per second, end to end, in each of [`ROUNDS`] rounds: `n` casts, then one call
/// that returns once all are served; the median round's rate. Beside it, taking turns round
/// by round, its floor: the same casts served by wasmtime alone ([`floor::Casts`]).
pub async fn cast_throughput(
    node: &Node,
    version: &ModuleVersion,
    n: usize,
) -> Result<[Metric; 2]> {
    let mut floor = floor::Casts::new(version, n).await?;
    let policy = Policy {
        mailbox_capacity: n + 16,
        ..Policy::default()
    };
    let target = spawn_kv(node, version, "casts", policy).await?;
    let mut casts = ProcessCasts { node, target, n };
    let turns = async {
        casts.warm_up().await?;
        turns::alternate(&mut casts, &mut floor, ROUNDS).await
    }
    .await;
    // Stopped whatever the turns came to: the next measurement must not meet it.
    node.stop(&casts.target, "bench done").await?;
    let (rates, floor_rates) = turns?;
    let ours = Metric::median_rate("cast_throughput", "per_s", &rates, (n * ROUNDS) as u64);
    Ok([ours, floor.metric(&floor_rates)])
}

/// The puts of cast round `round` (from 0) of `n` casts: values that no earlier round put,
/// so that reading the last one back says that the round's casts were all served. With the
/// last value, as the reply a `get` then expects.
pub(crate) fn round_of_puts(round: usize, n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let first = (round * n) as u64;
    let last = first + n as u64 - 1;
    let puts = (first..=last).map(|i| put("k", i)).collect();
    (puts, last.to_string().into_bytes())
}

/// The rate of cast round `round` of `n` casts, served in `elapsed`, once the `get` that
/// ended it `read` back the round's `last` put; an error that says what it read otherwise.
pub(crate) fn round_rate(
    round: usize,
    n: usize,
    read: &[u8],
    last: &[u8],
    elapsed: Duration,
) -> Result<f64> {
    if read != last {
        bail!(
            "casts were lost: round {round} read back {:?}, not its last put {:?}",
            String::from_utf8_lossy(read),
            String::from_utf8_lossy(last)
        );
    }
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// The puts a cast measurement warms up with, as the BEAM's side does: a tenth as many
/// casts as a round has, then a call.
pub(crate) fn warm_up_puts(n: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..n / 10).map(|i| put("k", i as u64))
}

/// How long the call that ends a round of casts may wait for them to be served.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// Rounds of `n` casts to one process.
struct ProcessCasts<'n> {
    node: &'n Node,
    target: ProcessRef,
    n: usize,
}

impl ProcessCasts<'_> {
    async fn warm_up(&self) -> Result<()> {
        for message in warm_up_puts(self.n) {
            self.node.cast(&self.target, message)?;
        }
        self.node
            .call(&self.target, get("k"), ROUND_TIMEOUT)
            .await?;
        Ok(())
    }
}

impl TakesTurns for ProcessCasts<'_> {
    async fn turn(&mut self, round: usize) -> Result<f64> {
        let (puts, last) = round_of_puts(round, self.n);
        let started = Instant::now();
        for message in puts {
            self.node.cast(&self.target, message)?;
        }
        let read = self
            .node
            .call(&self.target, get("k"), ROUND_TIMEOUT)
            .await?;
        round_rate(round, self.n, &read, &last, started.elapsed())
    }
}

/// Fills `target` with numbered keys until its state is about `bytes` long.
async fn fill(node: &Node, target: &ProcessRef, bytes: usize) -> Result<usize> {
    // `"k000000":123456,` is 17 bytes of JSON per entry.
    let keys = (bytes / 17).max(1);
    for i in 0..keys {
        node.cast(target, put(&format!("k{i:06}"), i as u64))?;
        if i % 1000 == 999 {
            node.call(target, get("k"), CALL_TIMEOUT).await?;
        }
    }
    // A call queues behind the casts; a state read (a control request) would jump them.
    node.call(target, get("k"), CALL_TIMEOUT).await?;
    Ok(node.get_state(target).await?.len())
}

/// The pause of `swaps` swaps between `a` and `b` of a process holding about
/// `state_bytes` of state.
pub async fn swap_pause(
    node: &Node,
    name: &str,
    a: &Arc<ModuleVersion>,
    b: &Arc<ModuleVersion>,
    state_bytes: usize,
    swaps: usize,
) -> Result<Metric> {
    let policy = Policy {
        mailbox_capacity: 200_000,
        memory_limit: 256 << 20,
        // An interpreted guest may take seconds to write or read a megabyte of JSON: the
        // pause is what is measured here, not whether it fits the default limit.
        swap_time_limit: Duration::from_secs(60),
        message_time_limit: Duration::from_secs(60),
        ..Policy::default()
    };
    let target = spawn_kv(node, a, name, policy).await?;
    let actual = fill(node, &target, state_bytes).await?;
    let mut samples = Vec::with_capacity(swaps);
    for i in 0..swaps {
        let (to, options) = back_and_forth(i as u64, a, b);
        let report = node
            .swap(&target, to.clone(), options)
            .await
            .with_context(|| format!("{name}: swap {i}"))?;
        samples.push(report.pause);
    }
    node.stop(&target, "bench done").await?;
    let mut metric = Metric::latency(name, &mut samples);
    metric.state_bytes = Some(actual as u64);
    Ok(metric)
}

/// How often [`latency_under_load`] swaps the process, when it does.
pub const SWAP_EVERY: Duration = Duration::from_millis(10);

/// Call latency from 4 clients, each putting its own counter and checking that the
/// previous value comes back, for `duration`; with `swaps`, while the process is swapped
/// between `v0` and `v1` every [`SWAP_EVERY`] (`latency_under_swaps`), else on `v0` alone
/// (`latency_under_load`: what the same load costs without swaps, on the same machine).
/// With `swaps`, also what the swaps' pauses were made of, from their reports: every
/// pause (`swap_pause_under_load`), and in the classic ones, the old version's `snapshot`
/// and the new version's `code-change` (`swap_snapshot_under_load`,
/// `swap_code_change_under_load`).
pub async fn latency_under_load(
    node: &Node,
    v0: &Arc<ModuleVersion>,
    v1: &Arc<ModuleVersion>,
    duration: Duration,
    swaps: bool,
) -> Result<Vec<Metric>> {
    let name = if swaps {
        "latency_under_swaps"
    } else {
        "latency_under_load"
    };
    let target = spawn_kv(node, v0, name, Policy::default()).await?;
    let process = Process {
        node: node.clone(),
        target: target.clone(),
    };
    let clients = LoadClients::start(&process, duration);
    let deadline = clients.deadline;
    let mut swapped = 0u64;
    let (mut pauses, mut snapshots, mut code_changes) = (Vec::new(), Vec::new(), Vec::new());
    if swaps {
        let mut ticker = tokio::time::interval(SWAP_EVERY);
        while Instant::now() < deadline {
            ticker.tick().await;
            let (to, options) = back_and_forth(swapped, v0, v1);
            let report = node.swap(&target, to.clone(), options).await?;
            pauses.push(report.pause);
            if !report.migrated_before_pause {
                snapshots.push(report.snapshot);
                code_changes.push(report.code_change);
            }
            swapped += 1;
        }
    }
    let served = clients.finish().await?;
    node.stop(&target, "bench done").await?;
    let mut metric = served.metric(name);
    metric.swaps = Some(swapped);
    if !swaps {
        return Ok(vec![metric]);
    }
    let classic = snapshots.len();
    metric.method = Some(format!(
        "{classic} of the {swapped} swaps ran the classic way (snapshot and code-change in \
         the pause): the process had messages waiting, or served one during the migration"
    ));
    let mut pause = Metric::latency("swap_pause_under_load", &mut pauses);
    pause.method = Some(format!(
        "the pauses of the {swapped} swaps under the calls of latency_under_swaps"
    ));
    let in_classic = |name: &str, what: &str, samples: &mut [Duration]| {
        let mut metric = Metric::latency(name, samples);
        metric.method = Some(format!(
            "{what}, in the pauses of the {classic} classic swaps under the calls of \
             latency_under_swaps"
        ));
        metric
    };
    let snapshot = in_classic(
        "swap_snapshot_under_load",
        "the old version's snapshot",
        &mut snapshots,
    );
    let code_change = in_classic(
        "swap_code_change_under_load",
        "the new version's code-change",
        &mut code_changes,
    );
    Ok(vec![metric, pause, snapshot, code_change])
}

/// How long an idle process waits before it hibernates, in the hibernating runs.
pub const HIBERNATE_AFTER: Duration = Duration::from_millis(100);

/// What [`spawn_and_memory`] measured.
pub struct SpawnAndMemory {
    pub rate: Metric,
    /// Resident memory per process (RSS): shared image pages count once per process.
    pub resident: Metric,
    /// Proportional memory per process (PSS): shared pages split among their mappers.
    pub proportional: Metric,
    /// What the machine's available memory fell by, per process: PSS plus the kernel's
    /// page tables and mapping records.
    pub machine: Metric,
}

/// Processes spawned per second (each instantiated and `init`ed), and the memory each idle
/// one costs: awake, or (with `hibernating`) once every one has hibernated under a policy
/// with [`HIBERNATE_AFTER`]. The processes are stopped afterwards.
pub async fn spawn_and_memory(
    node: &Node,
    version: &ModuleVersion,
    n: usize,
    hibernating: bool,
) -> Result<SpawnAndMemory> {
    let policy = Policy {
        mailbox_capacity: 16,
        hibernate_after: hibernating.then_some(HIBERNATE_AFTER),
        ..Policy::default()
    };
    trim_allocator();
    let before = resident_bytes()?;
    let proportional_before = proportional_bytes()?;
    let available_before = available_bytes()?;
    let started = Instant::now();
    let mut pids = Vec::with_capacity(n);
    for _ in 0..n {
        let pid = node
            .spawn(
                SpawnSpec::new(&*version.name)
                    .vsn(&*version.vsn)
                    .policy(policy.clone()),
            )
            .await
            .with_context(|| format!("spawning process {} of {n}", pids.len() + 1))?;
        pids.push(pid);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    if hibernating {
        let deadline = Instant::now() + Duration::from_secs(60);
        while node.ps().iter().filter(|p| p.hibernating).count() < n {
            if Instant::now() > deadline {
                bail!("not every process hibernated within a minute");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the blocking pool finish freeing the instances.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let untrimmed = resident_bytes()?;
    trim_allocator();
    let after = resident_bytes()?;
    let proportional_after = proportional_bytes()?;
    let available_after = available_bytes()?;
    let kind = if hibernating { "hibernating" } else { "idle" };
    let rate = Metric::rate(&format!("spawn_rate_{}k", n / 1000), n, elapsed);
    let mut memory = Metric::value(
        &format!("memory_per_{kind}_process_{}k", n / 1000),
        "bytes",
        after.saturating_sub(before) as f64 / n as f64,
        n as u64,
    );
    let state = if hibernating {
        format!(
            "all hibernating (hibernate_after_ms = {}); ",
            HIBERNATE_AFTER.as_millis()
        )
    } else {
        String::new()
    };
    memory.method = Some(format!(
        "host RSS delta (/proc/self/statm) / processes, {state}after malloc_trim; {:.0} bytes before it",
        untrimmed.saturating_sub(before) as f64 / n as f64
    ));
    let mut proportional = Metric::value(
        &format!("pss_per_{kind}_process_{}k", n / 1000),
        "bytes",
        proportional_after.saturating_sub(proportional_before) as f64 / n as f64,
        n as u64,
    );
    proportional.method = Some(format!(
        "host PSS delta (/proc/self/smaps_rollup) / processes, {state}after malloc_trim: pages \
         of the component's image that every process maps count once, not once per process"
    ));
    let mut machine = Metric::value(
        &format!("machine_memory_per_{kind}_process_{}k", n / 1000),
        "bytes",
        (available_before as f64 - available_after as f64) / n as f64,
        n as u64,
    );
    machine.method = Some(format!(
        "fall of the machine's MemAvailable (/proc/meminfo) / processes, {state}after \
         malloc_trim: PSS plus the page tables and mapping records the kernel keeps for them; \
         other processes on the machine move it too"
    ));
    stop_and_settle(node, pids).await?;
    Ok(SpawnAndMemory {
        rate,
        resident: memory,
        proportional,
        machine,
    })
}

/// Stops `pids`, and waits until their stores are freed: that happens on the blocking pool
/// after each process exits, and the next measurement must not see this one's memory going
/// away.
async fn stop_and_settle(node: &Node, pids: Vec<Pid>) -> Result<()> {
    for pid in pids {
        node.stop(&pid.into(), "bench done").await?;
    }
    while !node.ps().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// Processes spawned per second when one task per worker thread spawns at once, each its
/// share of `n`, as a node's callers would: the rate a node reaches on all its cores, where
/// [`spawn_and_memory`] times one caller spawning alone. The processes are stopped
/// afterwards.
pub async fn spawn_rate_per_core(node: &Node, version: &ModuleVersion, n: usize) -> Result<Metric> {
    let spawners = tokio::runtime::Handle::current().metrics().num_workers();
    let policy = Policy {
        mailbox_capacity: 16,
        ..Policy::default()
    };
    let started = Instant::now();
    // A `JoinSet`, so that when one spawner fails the others are stopped with it, and do not
    // spawn on into the next measurement.
    let mut spawners_at_work = JoinSet::new();
    for spawner in 0..spawners {
        let node = node.clone();
        let spec = SpawnSpec::new(&*version.name)
            .vsn(&*version.vsn)
            .policy(policy.clone());
        let share = share_of(n, spawners, spawner);
        spawners_at_work.spawn(async move {
            let mut pids = Vec::with_capacity(share);
            for _ in 0..share {
                let pid = node
                    .spawn(spec.clone())
                    .await
                    .with_context(|| format!("spawner {spawner}, process {}", pids.len() + 1))?;
                pids.push(pid);
            }
            anyhow::Ok(pids)
        });
    }
    let mut pids = Vec::with_capacity(n);
    while let Some(spawned) = spawners_at_work.join_next().await {
        pids.extend(spawned??);
    }
    let elapsed = started.elapsed();
    let mut rate = Metric::rate(&format!("spawn_rate_per_core_{}k", n / 1000), n, elapsed);
    rate.method = Some(format!(
        "{n} processes spawned by {spawners} tasks at once, one per worker thread"
    ));
    stop_and_settle(node, pids).await?;
    Ok(rate)
}

/// How many of `n` things spawner number `spawner` (from 0) of `spawners` makes: an equal
/// share, and the first spawners one more each until the remainder is gone.
pub(crate) fn share_of(n: usize, spawners: usize, spawner: usize) -> usize {
    n / spawners + usize::from(spawner < n % spawners)
}

/// Load time of a component, each time by a new node as a node's start would be: cold
/// (compiled now); `recent`, from the compile cache right after that compile; and `cached`,
/// from the compile cache once its entry is older than [`SETTLED`]. A cache entry is
/// digested whole on every load until then, and only when its stamp changes afterwards
/// (see `host/src/code/cache.rs`): `cached` is how a node's later starts load it.
pub async fn load_times(language: &str, file: &Path, policy: &Policy) -> Result<Vec<Metric>> {
    let cache = std::env::temp_dir().join(format!("hotswap-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let mut metrics = Vec::new();
    for (label, runs) in [("cold", 1), ("recent", 5), ("cached", 5)] {
        if label == "cached" {
            tokio::time::sleep(SETTLED + Duration::from_millis(500)).await;
        }
        let mut samples = Vec::new();
        for _ in 0..runs {
            let node = Node::with_options(NodeOptions {
                default_policy: policy.clone(),
                cache_dir: Some(cache.clone()),
                ..NodeOptions::default()
            })?;
            let started = Instant::now();
            node.load_file("kv", file).await?;
            samples.push(started.elapsed());
        }
        metrics.push(Metric::latency(
            &format!("load_{label}_{language}"),
            &mut samples,
        ));
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spawners_shares_add_up_and_the_first_take_the_remainder() {
        let shares: Vec<usize> = (0..3)
            .map(|spawner| share_of(100_000, 3, spawner))
            .collect();
        assert_eq!(shares, [33_334, 33_333, 33_333]);
        assert_eq!((0..2).map(|s| share_of(9, 2, s)).sum::<usize>(), 9);
    }
}
