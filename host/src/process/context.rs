//! What a process's wasmtime `Store` holds: the host-side state of one guest instance.
//!
//! Each instance (the serving one, and during a swap the new one being prepared) has its own
//! `Store` and so its own `ProcessContext`: a trap poisons a whole store, and keeping them
//! apart is what lets a failed swap leave the old instance untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::process::Pid;
use crate::registry::Registry;
use crate::sandbox::{GuestOutput, Policy};

/// The store data of one guest instance.
pub struct ProcessContext {
    /// The process this instance belongs to (stable across swaps).
    pub pid: Pid,
    /// The module and version of this instance, for log lines.
    pub module: Arc<str>,
    pub vsn: Arc<str>,
    /// The node's processes, names and timers, for `whereis`, `send` and `send-after`.
    pub registry: Arc<Registry>,
    /// The guest call in progress and when it must end; read by the epoch callback.
    pub budget: Option<CallBudget>,
    pub limits: StoreLimits,
    /// The guest's stderr, when it goes to the log: its last lines explain a trap.
    stderr: Option<GuestOutput>,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// The time budget of the guest call in progress.
#[derive(Debug, Clone, Copy)]
pub struct CallBudget {
    /// The export being run, as the WIT names it (`handle-call`, `code-change`, ...).
    pub callback: &'static str,
    pub limit: Duration,
    pub deadline: Instant,
}

impl ProcessContext {
    pub fn new(
        pid: Pid,
        module: Arc<str>,
        vsn: Arc<str>,
        registry: Arc<Registry>,
        policy: &Policy,
    ) -> Result<Self, String> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(policy.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let (wasi, outputs) = policy
            .grants
            .wasi_context(registry.node(), pid, &module, &vsn)?;
        Ok(Self {
            pid,
            module,
            vsn,
            registry,
            budget: None,
            limits,
            stderr: outputs.stderr,
            wasi,
            table: ResourceTable::new(),
        })
    }

    /// Starts the budget of one guest call, and forgets what earlier calls wrote to stderr.
    /// Returns the call's deadline.
    pub fn begin_call(&mut self, callback: &'static str, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        self.budget = Some(CallBudget {
            callback,
            limit,
            deadline,
        });
        if let Some(stderr) = &self.stderr {
            stderr.clear_tail();
        }
        deadline
    }

    /// The last lines the guest wrote to stderr, if they were kept.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr
            .as_ref()
            .map(GuestOutput::tail)
            .unwrap_or_default()
    }
}

impl WasiView for ProcessContext {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
