//! One guest instance in its own `Store`: instantiation, and each export of `server` run
//! under a time budget.
//!
//! Every call returns `Result<_, GuestTrap>`: `Err` means the guest trapped (or ran past its
//! budget, or past its memory limit) and this instance must never be called again. A
//! callback that returns a WIT `result` gives `Ok(Err(reason))` when the guest refused: the
//! instance is then still fine.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{PoolConcurrencyLimitError, Store, UpdateDeadline};

use crate::bindings::{Change, Process};
use crate::code::ModuleVersion;
use crate::engine::EPOCH_TICK;
use crate::process::Pid;
use crate::process::context::{CallBudget, ProcessContext};
use crate::process::deadline::{self, Elapsed};
use crate::registry::Registry;
use crate::sandbox::Policy;

/// A guest that trapped: which export, and why (a wasm trap, a deadline, a memory limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTrap {
    pub callback: &'static str,
    pub cause: String,
}

impl fmt::Display for GuestTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trapped in {}: {}", self.callback, self.cause)
    }
}

/// Raised from the epoch callback when a guest call runs past its time limit.
#[derive(Debug)]
struct DeadlineExceeded(CallBudget);

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exceeded {:?} in {}", self.0.limit, self.0.callback)
    }
}

impl std::error::Error for DeadlineExceeded {}

/// How long an instantiation waits for a slot of a full instance pool, trying again after
/// 1, 2, 4, ... 64 ms. Instances that were swapped out or exited are dropped off their
/// actor's task, a moment later: a spawn or a swap that comes right after must wait for
/// that slot, not fail. A pool still full after this is full of live instances. (A guest
/// of many core modules may find the pool's core-instance or memory slots full after its
/// first modules' start functions ran: those run again on the next attempt.)
pub const POOL_SLOT_WAIT: Duration = Duration::from_secs(1);

/// Why one attempt at instantiating failed.
enum Attempt {
    /// Every slot of the instance pool (or of its memories, tables or stacks) is taken.
    PoolFull(String),
    Failed(String),
}

impl From<String> for Attempt {
    fn from(cause: String) -> Self {
        Self::Failed(cause)
    }
}

/// A live instance of one module version, owned by exactly one process actor (or by a swap
/// that is preparing it).
pub struct GuestInstance {
    /// Fuel granted to each call, when the policy bounds it.
    fuel_per_call: Option<u64>,
    store: Store<ProcessContext>,
    bindings: Process,
    module: Arc<ModuleVersion>,
}

impl GuestInstance {
    /// Makes a fresh store for `pid` under `policy` and instantiates `module` in it, waiting
    /// up to [`POOL_SLOT_WAIT`] for a slot of a full pool. Does not call `init` or
    /// `code-change`: the caller decides which one the instance gets.
    pub async fn instantiate(
        module: &Arc<ModuleVersion>,
        pid: Pid,
        registry: Arc<Registry>,
        policy: &Policy,
    ) -> Result<Self, String> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            match Self::attempt(module, pid, registry.clone(), policy).await {
                Ok(instance) => return Ok(instance),
                Err(Attempt::PoolFull(_)) if started.elapsed() < POOL_SLOT_WAIT => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(64));
                }
                Err(Attempt::PoolFull(cause)) => {
                    return Err(format!(
                        "{cause}, and no slot came free within {POOL_SLOT_WAIT:?}"
                    ));
                }
                Err(Attempt::Failed(cause)) => return Err(cause),
            }
        }
    }

    async fn attempt(
        module: &Arc<ModuleVersion>,
        pid: Pid,
        registry: Arc<Registry>,
        policy: &Policy,
    ) -> Result<Self, Attempt> {
        let context = ProcessContext::new(
            pid,
            module.name.clone(),
            module.vsn.clone(),
            registry,
            policy,
        )?;
        let mut store = Store::new(module.engine(), context);
        store.limiter(|context| &mut context.limits);
        let fuel_per_call = policy.fuel_per_call;
        // Asked only of code that counts fuel: elsewhere `set_fuel` fails, and making a
        // wasmtime error takes a backtrace when RUST_BACKTRACE is set (16% of an
        // instantiation's time, measured under perf).
        match (fuel_per_call, module.counts_fuel) {
            (Some(_), false) => {
                return Err(Attempt::Failed(
                    "the policy sets fuel_per_call, but this node counts no fuel (set `fuel = true`)"
                        .into(),
                ));
            }
            // Topped up to this before every call (see `arm`).
            (Some(fuel), true) => store.set_fuel(fuel).map_err(|e| format!("{e:#}"))?,
            (None, true) => store.set_fuel(u64::MAX).map_err(|e| format!("{e:#}"))?,
            (None, false) => {}
        }
        store.epoch_deadline_callback(|context| match context.data().budget {
            Some(budget) if Instant::now() >= budget.deadline => {
                Err(wasmtime::Error::new(DeadlineExceeded(budget)))
            }
            // Within budget: let the other processes on this worker thread run, then go on.
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        // A component's start functions are guest code too: a hostile one that blocks in a
        // host call must not hang a spawn, a swap's preparation or a wake.
        let limit = policy.swap_time_limit;
        let backstop = arm(&mut store, "instantiate", limit, None);
        let bindings = guarded(backstop, module.pre.instantiate_async(&mut store)).await;
        store.data_mut().budget = None;
        let bindings = match bindings {
            Ok(Ok(bindings)) => bindings,
            Ok(Err(error)) => {
                let cause = describe("instantiate", &error, &store).cause;
                let pool_full = error.is::<PoolConcurrencyLimitError>();
                return Err(if pool_full {
                    Attempt::PoolFull(cause)
                } else {
                    Attempt::Failed(cause)
                });
            }
            Err(Elapsed) => {
                return Err(Attempt::Failed(format!(
                    "exceeded {limit:?} in instantiate (stuck in a host call, so the instance was abandoned)"
                )));
            }
        };
        Ok(Self {
            fuel_per_call,
            store,
            bindings,
            module: module.clone(),
        })
    }

    /// Instantiates `module` as the target of a swap, and calls it once (`vsn`) so that its
    /// first-touch costs (page faults on its memory image, the guest allocator's setup, the
    /// fiber stack) are paid here, before the pause, not inside `code-change`. Boxed, as a
    /// process holds its instance, so that the commit moves a pointer.
    pub async fn prepare_swap_target(
        module: &Arc<ModuleVersion>,
        pid: Pid,
        registry: Arc<Registry>,
        policy: &Policy,
    ) -> Result<Box<Self>, String> {
        let mut instance = Self::instantiate(module, pid, registry, policy).await?;
        instance
            .vsn(policy.swap_time_limit)
            .await
            .map_err(|trap| trap.to_string())?;
        Ok(Box::new(instance))
    }

    pub fn pid(&self) -> Pid {
        self.store.data().pid
    }

    pub fn module(&self) -> &Arc<ModuleVersion> {
        &self.module
    }

    /// The node's registry, as the guest's host calls see it.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.store.data().registry
    }

    pub async fn init(
        &mut self,
        args: &[u8],
        limit: Duration,
    ) -> Result<Result<(), String>, GuestTrap> {
        let backstop = arm(&mut self.store, "init", limit, self.fuel_per_call);
        let call = self
            .bindings
            .hotswap_otp_server()
            .call_init(&mut self.store, args);
        let result = guarded(backstop, call).await;
        self.settle("init", limit, result)
    }

    pub async fn handle_call(
        &mut self,
        request: &[u8],
        caller: Pid,
        limit: Duration,
    ) -> Result<Result<Vec<u8>, String>, GuestTrap> {
        let backstop = arm(&mut self.store, "handle-call", limit, self.fuel_per_call);
        let call =
            self.bindings
                .hotswap_otp_server()
                .call_handle_call(&mut self.store, request, caller);
        let result = guarded(backstop, call).await;
        self.settle("handle-call", limit, result)
    }

    pub async fn handle_cast(&mut self, message: &[u8], limit: Duration) -> Result<(), GuestTrap> {
        let backstop = arm(&mut self.store, "handle-cast", limit, self.fuel_per_call);
        let call = self
            .bindings
            .hotswap_otp_server()
            .call_handle_cast(&mut self.store, message);
        let result = guarded(backstop, call).await;
        self.settle("handle-cast", limit, result)
    }

    pub async fn handle_info(&mut self, message: &[u8], limit: Duration) -> Result<(), GuestTrap> {
        let backstop = arm(&mut self.store, "handle-info", limit, self.fuel_per_call);
        let call = self
            .bindings
            .hotswap_otp_server()
            .call_handle_info(&mut self.store, message);
        let result = guarded(backstop, call).await;
        self.settle("handle-info", limit, result)
    }

    pub async fn terminate(&mut self, reason: &str, limit: Duration) -> Result<(), GuestTrap> {
        let backstop = arm(&mut self.store, "terminate", limit, self.fuel_per_call);
        let call = self
            .bindings
            .hotswap_otp_server()
            .call_terminate(&mut self.store, reason);
        let result = guarded(backstop, call).await;
        self.settle("terminate", limit, result)
    }

    pub async fn snapshot(
        &mut self,
        limit: Duration,
    ) -> Result<Result<Vec<u8>, String>, GuestTrap> {
        let backstop = arm(&mut self.store, "snapshot", limit, self.fuel_per_call);
        let call = self
            .bindings
            .hotswap_otp_server()
            .call_snapshot(&mut self.store);
        let result = guarded(backstop, call).await;
        self.settle("snapshot", limit, result)
    }

    pub async fn code_change(
        &mut self,
        direction: &Change,
        state: &[u8],
        extra: &[u8],
        limit: Duration,
    ) -> Result<Result<(), String>, GuestTrap> {
        let backstop = arm(&mut self.store, "code-change", limit, self.fuel_per_call);
        let call = self.bindings.hotswap_otp_server().call_code_change(
            &mut self.store,
            direction,
            state,
            extra,
        );
        let result = guarded(backstop, call).await;
        self.settle("code-change", limit, result)
    }

    pub async fn vsn(&mut self, limit: Duration) -> Result<String, GuestTrap> {
        let backstop = arm(&mut self.store, "vsn", limit, self.fuel_per_call);
        let call = self.bindings.hotswap_otp_server().call_vsn(&mut self.store);
        let result = guarded(backstop, call).await;
        self.settle("vsn", limit, result)
    }

    fn settle<T>(
        &mut self,
        callback: &'static str,
        limit: Duration,
        result: Result<wasmtime::Result<T>, Elapsed>,
    ) -> Result<T, GuestTrap> {
        self.store.data_mut().budget = None;
        match result {
            Ok(result) => result.map_err(|e| describe(callback, &e, &self.store)),
            Err(Elapsed) => Err(GuestTrap {
                callback,
                cause: format!(
                    "exceeded {limit:?} in {callback} (stuck in a host call, so the instance was abandoned)"
                ),
            }),
        }
    }
}

/// Runs a guest call under a wall-clock limit too: the epoch deadline only fires while wasm
/// code runs, and a guest blocked inside a host call (a WASI sleep, a read) would escape it.
/// `Err(Elapsed)` when the call was abandoned; the instance must then never be called again.
///
/// Most calls run to their end without yielding; they finish on their first poll and take
/// no timer. A call that yields (at an epoch tick, or in a host call) takes a kept one
/// ([`deadline`]), measured from when the call was armed. A plain function, not an async
/// one, so that the call's future is stored once in the caller's (see [`deadline::Timeout`]).
fn guarded<F: Future>(backstop: tokio::time::Instant, call: F) -> deadline::Timeout<F> {
    deadline::timeout_at(backstop, call)
}

/// Starts the budget of one guest call: the epoch callback checks it at every tick. Returns
/// the wall-clock backstop for [`guarded`]: the epoch deadline normally ends a runaway call
/// first.
fn arm(
    store: &mut Store<ProcessContext>,
    callback: &'static str,
    limit: Duration,
    fuel: Option<u64>,
) -> tokio::time::Instant {
    let deadline = store.data_mut().begin_call(callback, limit);
    store.set_epoch_deadline(1);
    if let Some(fuel) = fuel {
        // Cannot fail: `instantiate` set fuel once already, so this node counts it.
        let _ = store.set_fuel(fuel);
    }
    tokio::time::Instant::from_std(deadline) + 10 * EPOCH_TICK + Duration::from_millis(50)
}

/// Names the cause of a guest failure in one line: the deadline, the trap code, or the
/// host error, without wasmtime's multi-line backtrace; then what the guest last wrote to
/// stderr, which for a panic or an exception says why.
fn describe(
    callback: &'static str,
    error: &wasmtime::Error,
    store: &Store<ProcessContext>,
) -> GuestTrap {
    let mut cause = if let Some(deadline) = error.downcast_ref::<DeadlineExceeded>() {
        deadline.to_string()
    } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        trap.to_string()
    } else {
        // Host-side failures (a memory limit, a missing resource) carry wasmtime's backtrace
        // as their outer context; the root is what went wrong.
        error.root_cause().to_string()
    };
    let said: Vec<String> = store
        .data()
        .stderr_tail()
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if !said.is_empty() {
        cause.push_str(" (guest stderr: ");
        cause.push_str(&said.join(" / "));
        cause.push(')');
    }
    GuestTrap { callback, cause }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_call_is_stored_once() {
        // A guest call's future is a few hundred bytes; every message's future holds one,
        // boxed, and each extra copy of it pushes that box out of malloc's thread cache.
        let call = async {
            let buffer = [7u8; 512];
            tokio::task::yield_now().await;
            Ok::<usize, wasmtime::Error>(buffer.len())
        };
        let call_size = std::mem::size_of_val(&call);
        let guarded = guarded(tokio::time::Instant::now(), call);
        let overhead = std::mem::size_of_val(&guarded) - call_size;
        assert!(
            overhead <= 64,
            "{overhead} bytes beside a {call_size}-byte call"
        );
    }
}
