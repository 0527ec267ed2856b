//! The one wasmtime `Engine` of a node, its configuration, and the epoch ticker.
//!
//! Epoch interruption is how the host keeps control of guest code: a background thread
//! advances the engine's epoch every [`EPOCH_TICK`], and each store's deadline callback
//! (set in `process/instance.rs`) either yields to the scheduler or, past the call's time
//! limit, traps. The ticker thread stops when the last `Engine` handle is gone.
//!
//! A node that runs many processes uses the pooling allocator: every instance slot is
//! reserved up front (address space only), memories are copy-on-write images of the
//! component's data, and instantiating is a few page-table operations. A pool of up to
//! 4,096 instances reserves the whole 4 GiB a 32-bit memory can address, so that guard pages
//! catch every stray access and guest code checks no bounds; a larger one (100,000 slots
//! do not fit in the address space that way), or a process whose address space is limited
//! (`ulimit -v`), keeps each reservation to the largest memory a process may have, and
//! guests pay an explicit bounds check on memory accesses.
//!
//! A slot given back (a process stopped, swapped out or hibernating) keeps the pages
//! its instance wrote, up to [`KEEP_RESIDENT`] (or the node's own bound) per memory and
//! per table, reset in place to the component's initial contents, rather than handing
//! them back to the kernel: the next instance in that slot (the next swap's target, a
//! wake, a spawn) then takes no page fault on them, and as long as the instance wrote
//! no more than that, the drop unmaps nothing, so it sends no TLB shootdown to the
//! threads serving messages. Finding the written pages takes Linux's `PAGEMAP_SCAN`
//! (6.7 and later); without it the reset would rewrite the lowest addresses whether
//! written or not, so the pool then gives every page back, as before.

use std::thread;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::NodeError;

/// How often the epoch advances: the granularity of time limits and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// How the engine allocates instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Allocation {
    /// Each instance maps its own memory when it is made: no up-front cost, fine for a
    /// node with a few hundred processes.
    #[default]
    OnDemand,
    /// Slots for `instances` component instances, each memory at most `max_memory` bytes.
    /// A process holds one; a swap holds a second until the old one is dropped, a moment
    /// after the commit (an instantiation waits up to a second for a slot to come free).
    /// A release holds a second for every process it moves. A slot given back keeps up to
    /// `keep_resident` bytes of the pages its instance wrote, per memory and per table, for
    /// the next instance (see [`KEEP_RESIDENT`], the default); 0 gives them all back.
    Pooled {
        instances: u32,
        max_memory: usize,
        keep_resident: usize,
    },
}

impl Allocation {
    /// A pool of `instances` slots, each memory at most `max_memory` bytes, whose freed
    /// slots keep [`KEEP_RESIDENT`].
    pub fn pooled(instances: u32, max_memory: usize) -> Self {
        Self::Pooled {
            instances,
            max_memory,
            keep_resident: KEEP_RESIDENT,
        }
    }
}

/// A reservation that covers every address a 32-bit memory can form.
const FULL_RESERVATION: u64 = 4 << 30;

/// How much of the 128 TiB user address space the memory pool may reserve: beyond it
/// (more than 4,096 instances), memories get small reservations and bounds-checked code.
const ADDRESS_SPACE_FOR_MEMORIES: u64 = 32 << 40;

/// Upper bounds per component, generous enough for componentize-py and componentize-js
/// guests (tens of core modules) as well as Rust and C ones.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 16;

/// How much of a given-back memory slot's written pages (and, separately, of a table
/// slot's) stays resident for the next instance, where the kernel can list written pages,
/// unless the node sets its own (`Allocation::Pooled::keep_resident`, or
/// `pool_keep_resident_kib` in a node config).
/// A Rust guest writes tens of KiB; a Python or JavaScript one writes megabytes and keeps
/// only this much. The pool has two memory slots and three table slots per instance slot
/// (`new_engine`), and the slots ever used are about the most instances alive at once plus
/// wasmtime's 100 warm spares; each keeps at most this much while unused. A hibernating
/// process's slot keeps what its instance wrote until another instance takes the slot.
///
/// Measured (`hotswap-bench --only swaps`, three alternating pairs, and a probe that timed
/// the phases of a swap under four callers): the preparation of a swap's target went from a
/// median of 68-80 µs to 31-58 µs, dropping the old instance from 40-47 µs to 23-37 µs, and
/// the 1 KiB swap pause from a p50 of 7.1-7.8 µs to 3.6-5.2 µs. The idle process's memory is
/// unchanged; a hibernating one's PSS went from 3.9 to 7.3 KB at 100,000 processes.
pub const KEEP_RESIDENT: usize = 1 << 20;

/// Builds the engine every process of a node runs on, and starts its epoch ticker. With
/// `fuel`, guest code counts the instructions it runs, so that a policy can bound each call
/// deterministically (at some cost to every guest's speed).
pub fn new_engine(allocation: Allocation, fuel: bool) -> Result<Engine, NodeError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Component-model async (futures, streams) is not part of the contract; leaving it
        // out makes every guest call about 2.5x cheaper.
        .concurrency_support(false)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .consume_fuel(fuel);
    if let Allocation::Pooled {
        instances,
        max_memory,
        keep_resident,
    } = allocation
    {
        let mut pool = PoolingAllocationConfig::default();
        // Rust guests use 3 core instances, 1 memory and 2 tables; Python and JavaScript
        // ones use more, and take more of these totals.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(3))
            // A store keeps the fiber stack of its last call for the next one, so every
            // process holds one: a stack per instance slot.
            .total_stacks(instances)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(max_memory);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(keep_resident)
                .table_keep_resident(keep_resident);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let memories = u64::from(instances.saturating_mul(2));
        if memories.saturating_mul(FULL_RESERVATION) <= ADDRESS_SPACE_FOR_MEMORIES {
            config.memory_reservation(FULL_RESERVATION);
            match Engine::new(&config) {
                Ok(engine) => return Ok(started(engine)),
                Err(error) => tracing::info!(
                    error = %format!("{error:#}"),
                    "cannot reserve 4 GiB per memory; using small reservations"
                ),
            }
        }
        config
            .memory_reservation(max_memory as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
    }
    let engine = Engine::new(&config).map_err(|e| NodeError::Engine(format!("{e:#}")))?;
    Ok(started(engine))
}

/// `engine`, with its epoch ticker running.
fn started(engine: Engine) -> Engine {
    start_epoch_ticker(&engine);
    engine
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = thread::Builder::new()
        .name("hotswap-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker no deadline ever fires; that is worth shouting about, but a
        // node that cannot spawn a thread will fail louder elsewhere.
        tracing::error!(error = %e, "cannot start the epoch ticker: guest time limits are off");
    }
}
