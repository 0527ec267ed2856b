//! The node's table of live processes, its name registry and its timers.
//!
//! Pids come from a counter and are never reused. Names map to pids (OTP's `register` and
//! `whereis`); a process's name goes when the process does. Locks here are held for a map
//! operation only, never across an `.await` or a guest call.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;

use crate::error::{CallError, SpawnError};
use crate::process::{Pid, ProcessHandle};

/// How a process is named by a user: by pid, or by its registered name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProcessRef {
    Pid(Pid),
    Name(String),
}

impl FromStr for ProcessRef {
    type Err = std::convert::Infallible;

    /// A number is a pid; anything else is a name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.parse()
            .map(Self::Pid)
            .unwrap_or_else(|_| Self::Name(s.to_string())))
    }
}

impl fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pid(pid) => write!(f, "pid {pid}"),
            Self::Name(name) => write!(f, "named {name:?}"),
        }
    }
}

impl From<Pid> for ProcessRef {
    fn from(pid: Pid) -> Self {
        Self::Pid(pid)
    }
}

impl From<&str> for ProcessRef {
    fn from(name: &str) -> Self {
        Self::Name(name.to_string())
    }
}

/// Tells the nodes of one OS process apart, in log lines (the `node` field of guest lines
/// and of a process's `spawned` and `process exited`): pids restart at 1 in every node, so
/// a pid alone does not say whose process a line is about.
/// Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub u64);

static NEXT_NODE: AtomicU64 = AtomicU64::new(1);

/// A pending timer: who set it, and its task.
struct Timer {
    owner: Pid,
    task: AbortHandle,
}

/// The process and name tables are read for every message sent, so they hash with FxHash:
/// pids are a counter, and names are chosen by whoever spawns (a guest can only look them
/// up), so there is nobody to flood them with collisions.
pub struct Registry {
    node: NodeId,
    processes: RwLock<FxHashMap<Pid, ProcessHandle>>,
    names: RwLock<FxHashMap<String, Pid>>,
    next_pid: AtomicU64,
    /// Pending `send-after` timers, with the process that set each. A timer fires only if
    /// it can still remove itself from here, so a cancel and a firing never both succeed.
    timers: Mutex<HashMap<u64, Timer>>,
    next_timer: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            node: NodeId(NEXT_NODE.fetch_add(1, Ordering::Relaxed)),
            processes: RwLock::default(),
            names: RwLock::default(),
            // 0 is OUTSIDE, the pid of callers that are not processes.
            next_pid: AtomicU64::new(1),
            timers: Mutex::default(),
            next_timer: AtomicU64::new(1),
        }
    }
}

impl Registry {
    /// The node these tables belong to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    pub(crate) fn allocate_pid(&self) -> Pid {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `name` could be registered now.
    pub(crate) fn check_name_free(&self, name: &str) -> Result<(), SpawnError> {
        match read(&self.names).get(name) {
            Some(&pid) => Err(SpawnError::NameTaken {
                name: name.to_string(),
                pid,
            }),
            None => Ok(()),
        }
    }

    /// Adds a live process, and its name if it has one.
    pub(crate) fn register(&self, handle: ProcessHandle) -> Result<(), SpawnError> {
        let pid = handle.pid();
        if let Some(name) = handle.name() {
            let mut names = write(&self.names);
            if let Some(&owner) = names.get(name) {
                return Err(SpawnError::NameTaken {
                    name: name.to_string(),
                    pid: owner,
                });
            }
            names.insert(name.to_string(), pid);
        }
        write(&self.processes).insert(pid, handle);
        Ok(())
    }

    /// Removes a process that has ended (idempotent).
    pub(crate) fn unregister(&self, pid: Pid) {
        if let Some(handle) = write(&self.processes).remove(&pid)
            && let Some(name) = handle.name()
        {
            let mut names = write(&self.names);
            if names.get(name) == Some(&pid) {
                names.remove(name);
            }
        }
    }

    pub fn lookup(&self, pid: Pid) -> Option<ProcessHandle> {
        read(&self.processes).get(&pid).cloned()
    }

    pub fn whereis(&self, name: &str) -> Option<Pid> {
        read(&self.names).get(name).copied()
    }

    pub fn resolve(&self, target: &ProcessRef) -> Option<ProcessHandle> {
        match target {
            ProcessRef::Pid(pid) => self.lookup(*pid),
            ProcessRef::Name(name) => self.lookup(self.whereis(name)?),
        }
    }

    /// Every live process, by pid.
    pub fn all(&self) -> Vec<ProcessHandle> {
        let mut all: Vec<_> = read(&self.processes).values().cloned().collect();
        all.sort_by_key(ProcessHandle::pid);
        all
    }

    /// Delivers `message` to `to`'s `handle-info`.
    pub fn send_info(&self, to: Pid, message: Vec<u8>) -> Result<(), CallError> {
        let handle = self.lookup(to).ok_or_else(|| CallError::NoProcess {
            target: ProcessRef::Pid(to).to_string(),
        })?;
        handle.info(message)
    }

    /// Delivers `message` to `to`'s `handle-info` after `delay`, unless its `owner` cancels it
    /// first or exits. Must be called inside the tokio runtime.
    pub fn send_after(
        self: &Arc<Self>,
        owner: Pid,
        to: Pid,
        message: Vec<u8>,
        delay: Duration,
    ) -> u64 {
        let timer = self.next_timer.fetch_add(1, Ordering::Relaxed);
        let registry = Arc::clone(self);
        // Held while spawning, so the timer is in the table before it can fire.
        let mut timers = self.timers();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let still_pending = registry.timers().remove(&timer).is_some();
            if still_pending && let Err(error) = registry.send_info(to, message) {
                // As in Erlang, a timer for a process that is gone is dropped.
                tracing::debug!(to, timer, %error, "timer message dropped");
            }
        });
        timers.insert(
            timer,
            Timer {
                owner,
                task: task.abort_handle(),
            },
        );
        timer
    }

    /// Cancels a pending timer that `owner` set; true if it had not fired yet. A process
    /// cannot cancel another's timers: for it, they do not exist.
    pub fn cancel_timer(&self, owner: Pid, timer: u64) -> bool {
        let mut timers = self.timers();
        match timers.get(&timer) {
            Some(pending) if pending.owner == owner => {
                if let Some(pending) = timers.remove(&timer) {
                    pending.task.abort();
                }
                true
            }
            _ => false,
        }
    }

    /// Cancels every timer `owner` set: a process's timers end with it, as in Erlang.
    pub(crate) fn cancel_timers_of(&self, owner: Pid) {
        self.timers().retain(|_, pending| {
            let keep = pending.owner != owner;
            if !keep {
                pending.task.abort();
            }
            keep
        });
    }

    fn timers(&self) -> MutexGuard<'_, HashMap<u64, Timer>> {
        self.timers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// The maps are only ever changed by single insert/remove calls, so a lock poisoned by a
// panic elsewhere still guards a consistent map.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
