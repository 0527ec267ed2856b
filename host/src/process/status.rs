//! What the handles and the actor of one process share: identity, counters and the exit
//! reason, readable without asking the actor (so `ps` never waits behind a busy guest).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::code::ModuleVersion;
use crate::optimistic_swap::Mark;
use crate::process::{ExitReason, Pid};
use crate::registry::NodeId;
use crate::sandbox::Policy;

pub(crate) struct ProcessStatus {
    pub pid: Pid,
    /// The node the process runs on, for log lines: pids restart at 1 in every node.
    pub node: NodeId,
    pub name: Option<String>,
    /// Limits and grants, applied to every instance of this process (swap targets too).
    pub policy: Policy,
    /// The version the mailbox feeds now; replaced at the commit of a swap.
    running: Mutex<Arc<ModuleVersion>>,
    /// Messages accepted into the mailbox, ever. Read before and after a swap's pause to
    /// count the messages that queued during it.
    pub enqueued: AtomicU64,
    /// Messages served, ever, counted as each starts (in the actor or in place): a caller
    /// that has its reply finds its call counted.
    pub handled: AtomicU64,
    /// Swaps committed, ever: with `handled`, what tells whether the state may have changed
    /// since a snapshot (see `optimistic_swap.rs`).
    pub commits: AtomicU64,
    /// Whether the actor is suspended (mirrored here for `ps`).
    pub suspended: AtomicBool,
    /// Whether the process is hibernating: its state kept as a blob, no instance.
    pub hibernating: AtomicBool,
    pub exit: OnceLock<ExitReason>,
}

impl ProcessStatus {
    pub fn new(
        pid: Pid,
        node: NodeId,
        name: Option<String>,
        policy: Policy,
        running: Arc<ModuleVersion>,
    ) -> Self {
        Self {
            pid,
            node,
            name,
            policy,
            running: Mutex::new(running),
            enqueued: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            suspended: AtomicBool::new(false),
            hibernating: AtomicBool::new(false),
            exit: OnceLock::new(),
        }
    }

    pub fn running(&self) -> Arc<ModuleVersion> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_running(&self, version: Arc<ModuleVersion>) {
        *self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = version;
    }

    pub fn exit_reason(&self) -> ExitReason {
        self.exit.get().cloned().unwrap_or(ExitReason::Shutdown)
    }

    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Where the process is now, for an optimistic swap's check.
    pub fn mark(&self) -> Mark {
        Mark {
            handled: Some(self.handled.load(Ordering::Acquire)),
            commits: self.commits(),
        }
    }

    pub fn enqueued(&self) -> u64 {
        self.enqueued.load(Ordering::Acquire)
    }
}

/// One line of `ps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub name: Option<String>,
    pub module: String,
    pub vsn: String,
    /// Messages waiting in the mailbox.
    pub mailbox: usize,
    pub mailbox_capacity: usize,
    /// Messages served so far.
    pub handled: u64,
    /// Suspended processes queue user messages without serving them.
    pub suspended: bool,
    /// Hibernating processes hold their state as a blob and no instance until a message
    /// wakes them (see `Policy::hibernate_after`).
    #[serde(default)]
    pub hibernating: bool,
}
