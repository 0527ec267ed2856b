//! The floors: what wasmtime alone does with the kv, on a node's own engine, measured in the
//! same run as the host's figures that they bound.
//!
//! Two of the goals have not moved under any change to the host: the spawn rate and
//! the cast throughput. A floor takes the host out of such a figure. A spawn without the
//! host is an instantiation and an `init`; a cast without it is a `handle-cast` call, one
//! after another on one instance. Every floor calls as the host does: asynchronously, on a
//! fiber, with the store's epoch deadline set one tick ahead before each call, so that a
//! call yields when an epoch tick falls within it. It runs on the node's engine and
//! instance pool, with the component the node compiled, and leaves out all that is the
//! host's: the WASI context and the host API (every import traps here; kv v0 calls none in
//! these exports), the store's limits and time budgets, the mailbox, the registry and the
//! process's task. A host figure cannot pass its floor by more than the machine's noise:
//! when the floor falls short of a goal, no change to the host can meet it, and the goal
//! needs a faster guest, a cheaper instantiation or another contract.
//!
//! The tail under swaps has no floor. One instance shared by the load's 4 clients through a
//! fair `Mutex` (tried in session 19) had a worse p99.9 than the host, which lends an idle
//! process's instance to its caller: it bounded nothing.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use hotswap::ModuleVersion;
use tokio::task::JoinSet;
use wasmtime::Store;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Linker, Lower, TypedFunc,
};

use crate::scenarios::{ROUNDS, get, round_of_puts, round_rate, share_of, warm_up_puts};
use crate::turns::TakesTurns;
use hotswap_bench::stats::Metric;

/// The interface whose exports are the gen_server's callbacks, of any `hotswap:otp` version.
const SERVER: &str = "hotswap:otp/server";

/// A wasmtime error as an `anyhow` one, saying what was being done.
fn wasmtime_error(doing: &'static str) -> impl Fn(wasmtime::Error) -> anyhow::Error {
    move |error| anyhow!("{doing}: {error:#}")
}

/// `store`, with its epoch deadline one tick ahead, as the host arms a store before each
/// call (`host/src/process/instance.rs`, `arm`): the call yields only when an epoch tick
/// falls within it.
fn armed(store: &mut Store<()>) -> &mut Store<()> {
    store.set_epoch_deadline(1);
    store
}

/// The kv of one node, ready to instantiate without the host.
struct Floor {
    pre: InstancePre<()>,
    init: ComponentExportIndex,
    handle_call: ComponentExportIndex,
    handle_cast: ComponentExportIndex,
    vsn: ComponentExportIndex,
}

/// What `handle-call` returns: a reply, or the guest's refusal.
type Reply = Result<Vec<u8>, String>;

/// One instance made by [`Floor::spawn`], in the store it lives in.
struct Spawned {
    store: Store<()>,
    instance: Instance,
}

impl Spawned {
    /// The export at `index` of the instance, typed; `name` names it in an error.
    fn export<Params, Results>(
        &mut self,
        index: ComponentExportIndex,
        name: &'static str,
    ) -> Result<TypedFunc<Params, Results>>
    where
        Params: ComponentNamedList + Lower,
        Results: ComponentNamedList + Lift,
    {
        let typed = self.instance.get_typed_func(&mut self.store, index);
        typed.map_err(|error| anyhow!("typing {name}: {error:#}"))
    }
}

impl Floor {
    /// `version`'s component on its node's engine, with every import a trap.
    fn new(version: &ModuleVersion) -> Result<Self> {
        // A store of code that counts fuel would need fuel before each call, as the host
        // gives it; the floors measure a node that counts none, as the bench's are.
        ensure!(
            !version.counts_fuel(),
            "the floors need a node without fuel; {} {} counts it",
            version.name,
            version.vsn
        );
        let component = version.component();
        let engine = version.engine();
        let mut linker = Linker::new(engine);
        linker
            .define_unknown_imports_as_traps(component)
            .map_err(wasmtime_error("linking traps for the host's imports"))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(wasmtime_error("pre-instantiating"))?;
        let server = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name)
            .find(|name| name.starts_with(SERVER))
            .with_context(|| format!("{} exports no {SERVER}", version.name))?
            .to_string();
        let interface = component
            .get_export_index(None, &server)
            .with_context(|| format!("{} has no {server}", version.name))?;
        let export = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .with_context(|| format!("{} exports no {server}#{name}", version.name))
        };
        Ok(Self {
            pre,
            init: export("init")?,
            handle_call: export("handle-call")?,
            handle_cast: export("handle-cast")?,
            vsn: export("vsn")?,
        })
    }

    /// A new instance in a store of its own, after an `init` with no arguments: what a
    /// spawn makes, without the host.
    async fn spawn(&self) -> Result<Spawned> {
        let mut store = Store::new(self.pre.engine(), ());
        // Past its deadline, a call yields and goes on, as the host's deadline callback
        // does within a call's budget.
        store.epoch_deadline_async_yield_and_update(1);
        let instance = self
            .pre
            .instantiate_async(armed(&mut store))
            .await
            .map_err(wasmtime_error("instantiating"))?;
        let mut spawned = Spawned { store, instance };
        let init = spawned.export::<(&[u8],), (Result<(), String>,)>(self.init, "init")?;
        let (initialised,) = init
            .call_async(armed(&mut spawned.store), (&[],))
            .await
            .map_err(wasmtime_error("init"))?;
        initialised.map_err(|reason| anyhow!("init refused: {reason}"))?;
        Ok(spawned)
    }

    /// `share` instances, one after another.
    async fn spawn_share(&self, share: usize) -> Result<Vec<Spawned>> {
        let mut spawned = Vec::with_capacity(share);
        for _ in 0..share {
            let instance = self
                .spawn()
                .await
                .with_context(|| format!("instance {} of {share}", spawned.len() + 1))?;
            spawned.push(instance);
        }
        Ok(spawned)
    }
}

/// Instances made and `init`ed per second by wasmtime alone, `n` of them, by one task per
/// worker thread at once, as `scenarios::spawn_rate_per_core` spawns processes. Each is
/// held until the last is made, as a process holds its own, then all are freed. Like the
/// processes, these should go to a fresh node, so that each takes a slot nothing used.
pub async fn spawn_rate_per_core(version: &ModuleVersion, n: usize) -> Result<Metric> {
    let spawners = tokio::runtime::Handle::current().metrics().num_workers();
    let floor = Arc::new(Floor::new(version)?);
    let started = Instant::now();
    // A `JoinSet`, so that when one spawner fails the others are stopped with it.
    let mut at_work = JoinSet::new();
    for spawner in 0..spawners {
        let floor = floor.clone();
        let share = share_of(n, spawners, spawner);
        at_work.spawn(async move {
            let spawned = floor.spawn_share(share).await;
            spawned.with_context(|| format!("spawner {spawner}"))
        });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(share) = at_work.join_next().await {
        held.extend(share??);
    }
    let elapsed = started.elapsed();
    // Off the clock, and off the workers, as the host frees its instances.
    tokio::task::spawn_blocking(move || drop(held)).await?;
    let name = format!("spawn_rate_per_core_wasmtime_alone_{}k", n / 1000);
    let mut rate = Metric::rate(&name, n, elapsed);
    rate.method = Some(format!(
        "{n} instances of the kv made and init-ed by {spawners} tasks at once, one per worker \
         thread, with wasmtime alone (no WASI, no host API, no process), asynchronously, on \
         a fresh node's engine and pool, all held until the last was made"
    ));
    Ok(rate)
}

/// Casts served by wasmtime alone, round by round: `n` puts a round, each a `handle-cast`
/// call on one instance, the same messages as `scenarios::cast_throughput` sends
/// (`round_of_puts`), after the same warm-up. Each round ends, as there, with a
/// `handle-call` that reads its last put back, so a round that served nothing fails.
pub struct Casts {
    store: Store<()>,
    handle_cast: TypedFunc<(Vec<u8>,), ()>,
    handle_call: TypedFunc<(Vec<u8>, u64), (Reply,)>,
    n: usize,
}

impl Casts {
    /// An instance of `version`, warmed up, for rounds of `n` casts.
    pub async fn new(version: &ModuleVersion, n: usize) -> Result<Self> {
        let floor = Floor::new(version)?;
        let mut spawned = floor.spawn().await?;
        let handle_cast = spawned.export(floor.handle_cast, "handle-cast")?;
        let handle_call = spawned.export(floor.handle_call, "handle-call")?;
        let mut casts = Self {
            store: spawned.store,
            handle_cast,
            handle_call,
            n,
        };
        for message in warm_up_puts(n) {
            casts.cast(message).await?;
        }
        casts.get().await?;
        Ok(casts)
    }

    /// One `handle-cast` call; the message is the guest's from here on, as a cast's is the
    /// process's.
    async fn cast(&mut self, message: Vec<u8>) -> Result<()> {
        self.handle_cast
            .call_async(armed(&mut self.store), (message,))
            .await
            .map_err(wasmtime_error("handle-cast"))
    }

    /// The value put last, read back with a `handle-call`.
    async fn get(&mut self) -> Result<Vec<u8>> {
        let (read,) = self
            .handle_call
            .call_async(armed(&mut self.store), (get("k"), 0))
            .await
            .map_err(wasmtime_error("handle-call"))?;
        read.map_err(|reason| anyhow!("the get was refused: {reason}"))
    }

    /// The figure of `rates`, the rounds' rates: their median.
    pub fn metric(&self, rates: &[f64]) -> Metric {
        let mut metric = Metric::median_rate(
            "cast_throughput_wasmtime_alone",
            "per_s",
            rates,
            (rates.len() * self.n) as u64,
        );
        metric.method = Some(
            "handle-cast called asynchronously in a loop on one instance, with wasmtime alone \
             (no mailbox, no process), taking turns round by round with the process's casts: \
             the guest's share of a cast"
                .into(),
        );
        metric
    }
}

impl TakesTurns for Casts {
    async fn turn(&mut self, round: usize) -> Result<f64> {
        let (puts, last) = round_of_puts(round, self.n);
        let started = Instant::now();
        for message in puts {
            self.cast(message).await?;
        }
        let read = self.get().await?;
        round_rate(round, self.n, &read, &last, started.elapsed())
    }
}

/// Calls of the cheapest export per second: `vsn`, which returns a constant string, called
/// asynchronously in a loop on one instance by wasmtime alone, `n` times in each of
/// [`ROUNDS`] rounds after as many to warm up; the median round's rate. It is about the
/// least that entering the guest costs, which the contract makes every cast pay: one
/// `handle-cast` call per message.
pub async fn cheapest_call_rate(version: &ModuleVersion, n: usize) -> Result<Metric> {
    let floor = Floor::new(version)?;
    let mut spawned = floor.spawn().await?;
    let vsn = spawned.export::<(), (String,)>(floor.vsn, "vsn")?;
    let store = &mut spawned.store;
    let mut rates = Vec::with_capacity(ROUNDS);
    let mut answered = String::new();
    for round in 0..=ROUNDS {
        let started = Instant::now();
        for _ in 0..n {
            let called = vsn.call_async(armed(store), ()).await;
            (answered,) = called.map_err(wasmtime_error("vsn"))?;
        }
        // Round 0 warms up.
        if round > 0 {
            rates.push(n as f64 / started.elapsed().as_secs_f64());
        }
    }
    ensure!(
        answered == *version.vsn,
        "vsn answered {answered:?}, where the node loaded {:?}",
        version.vsn
    );
    let mut metric = Metric::median_rate(
        "cheapest_call_wasmtime_alone",
        "per_s",
        &rates,
        (n * ROUNDS) as u64,
    );
    metric.method = Some(
        "vsn (a constant string) called asynchronously in a loop on one instance, with \
         wasmtime alone: about the least that entering the guest costs"
            .into(),
    );
    Ok(metric)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hotswap::{Allocation, ModuleVersion, Node, NodeOptions};

    use super::*;

    const KV: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guests/rust/target/wasm32-wasip2/release/kv_v0.wasm"
    );

    /// The kv on a node whose pool has room for `instances` component instances.
    async fn kv_on_a_pool_of(instances: u32) -> (Node, Arc<ModuleVersion>) {
        let node = Node::with_options(NodeOptions {
            allocation: Allocation::pooled(instances, 64 << 20),
            ..NodeOptions::default()
        })
        .expect("node");
        let kv = node
            .load_file("kv", KV)
            .await
            .expect("kv (run `just guests`)");
        (node, kv)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_spawn_floor_holds_every_instance_until_the_last_is_made() {
        let (_node, kv) = kv_on_a_pool_of(8).await;
        spawn_rate_per_core(&kv, 8)
            .await
            .expect("8 instances in 8 slots");
        // Held at once, a ninth finds no slot: a floor that dropped its instances as it went
        // would not be measuring what a spawn leaves behind.
        let error = spawn_rate_per_core(&kv, 9)
            .await
            .expect_err("9 instances in 8 slots");
        let error = format!("{error:#}");
        assert!(error.contains("instantiating"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cast_floor_reads_back_the_last_put_of_every_round() {
        let (_node, kv) = kv_on_a_pool_of(4).await;
        let mut casts = Casts::new(&kv, 100).await.expect("warmed up");
        for round in 0..3 {
            casts
                .turn(round)
                .await
                .expect("the round's last put read back");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cheapest_call_answers_the_loaded_version() {
        let (_node, kv) = kv_on_a_pool_of(4).await;
        let calls = cheapest_call_rate(&kv, 10).await.expect("vsn answered");
        assert_eq!(calls.name, "cheapest_call_wasmtime_alone");
    }
}
