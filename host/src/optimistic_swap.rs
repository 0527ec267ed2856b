//! The optimistic swap: the state is migrated before the pause, and the pause only
//! commits, if nothing happened meanwhile.
//!
//! A classic swap (`swap.rs`) runs the old instance's `snapshot` and the new instance's
//! `code-change` in one pause. Here the actor takes the snapshot between two messages and
//! marks it with how many messages it had served and how many swaps it had committed. The
//! new instance then runs `code-change` on the caller's task, while the old one serves on.
//! Between two later messages, the actor commits the new instance only if the mark still
//! holds: no message was served since the snapshot, so the state the new instance adopted
//! is the one the old instance holds (a guest's state changes only in its callbacks, and
//! `snapshot` must not change it). The mailbox waits only for the snapshot and for the
//! commit, and the report's pause is the sum of the two.
//!
//! When a message was served in between, the new instance is dropped and the swap runs the
//! classic way. A process that already has messages waiting when the swap starts would
//! serve them while the state migrates, so `Node::swap` runs that swap the classic way at
//! once, with the instance it prepared. A `replace-state` needs no snapshot: its state
//! is migrated before the pause, and the commit only checks that no swap came first.
//!
//! The price: `code-change` may run twice for one swap, once on an instance that is then
//! dropped, as it already may run on an instance that a rollback drops. What it does
//! outside its own instance (a log line, a message sent) then happens twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::code::ModuleVersion;
use crate::error::SwapError;
use crate::process::ProcessHandle;
use crate::process::instance::GuestInstance;
use crate::registry::NodeId;
use crate::swap::{self, Migration, SwapOptions, SwapReport};

/// Where a process was when its state was read: messages served and swaps committed.
/// `handled` is `None` when the state does not come from the process (`replace-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub handled: Option<u64>,
    pub commits: u64,
}

impl Mark {
    /// Whether a process now at `now` still holds the state read at `self`.
    pub fn holds_at(&self, now: Mark) -> bool {
        self.commits == now.commits && self.handled.is_none_or(|h| Some(h) == now.handled)
    }
}

/// A snapshot taken between two messages, with its mark, how long the mailbox waited for
/// it, and how many messages arrived meanwhile.
pub(crate) struct MarkedSnapshot {
    pub state: Vec<u8>,
    /// The version that wrote it.
    pub from: Arc<ModuleVersion>,
    pub mark: Mark,
    pub pause: Duration,
    pub queued: u64,
}

/// A new instance that adopted the state at `mark`, for the actor to commit if it holds.
pub(crate) struct Adoption {
    pub next: Box<GuestInstance>,
    pub mark: Mark,
    pub options: SwapOptions,
    pub state_bytes: usize,
    /// How long the two guest calls took: the snapshot, which the mailbox already waited
    /// for, and the `code-change`, which it did not.
    pub migration: Migration,
    pub queued: u64,
    pub requested_at: Instant,
}

/// Completes the report of a committed adoption: the pause is the snapshot's wait (the
/// report's `snapshot`) plus the commit's (`commit_took`), and what queued in either; logs
/// it.
pub(crate) fn committed(
    node: NodeId,
    mut report: SwapReport,
    queued: u64,
    requested_at: Instant,
    commit_took: Duration,
    queued_at_commit: u64,
) -> SwapReport {
    report.pause = report.snapshot + commit_took;
    report.queued_during_pause = queued + queued_at_commit;
    report.total = requested_at.elapsed();
    report.migrated_before_pause = true;
    swap::log_committed(node, &report);
    report
}

/// Why an adoption was not committed.
pub(crate) enum Declined {
    /// The process served a message or committed a swap since the state was read.
    Stale,
    Failed(SwapError),
}

/// Swaps `handle` to `next` the optimistic way. `Ok(None)`: the process moved on while the
/// state was migrated; the caller swaps the classic way, with a fresh instance.
pub(crate) async fn swap(
    handle: &ProcessHandle,
    mut next: Box<GuestInstance>,
    options: SwapOptions,
    requested_at: Instant,
) -> Result<Option<SwapReport>, SwapError> {
    let limit = handle.status.policy.swap_time_limit;
    let snapshot = match &options.state {
        Some(state) => {
            // Commits first: a swap committed between the two reads changes the mark.
            let mark = Mark {
                handled: None,
                commits: handle.status.commits(),
            };
            MarkedSnapshot {
                state: state.clone(),
                from: handle.status.running(),
                mark,
                pause: Duration::ZERO,
                queued: 0,
            }
        }
        None => handle.marked_snapshot().await?,
    };
    let MarkedSnapshot {
        state,
        from,
        mark,
        pause: paused,
        queued,
    } = snapshot;
    let code_change = match swap::migrate(
        &mut next,
        &from,
        options.direction,
        &state,
        &options.extra,
        limit,
    )
    .await
    {
        Ok(took) => took,
        Err(error) => {
            tracing::warn!(node = handle.status.node.0, pid = handle.pid(), module = %from.name, vsn = %from.vsn, %error, "swap refused");
            return Err(error);
        }
    };
    let migration = Migration {
        snapshot: paused,
        code_change,
    };
    let adoption = Adoption {
        next,
        mark,
        options,
        state_bytes: state.len(),
        migration,
        queued,
        requested_at,
    };
    match handle.adopt(adoption).await {
        Ok(report) => Ok(Some(report)),
        Err(Declined::Stale) => Ok(None),
        Err(Declined::Failed(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_holds_until_a_message_or_a_commit() {
        let read = Mark {
            handled: Some(7),
            commits: 2,
        };
        assert!(read.holds_at(read));
        assert!(!read.holds_at(Mark {
            handled: Some(8),
            ..read
        }));
        assert!(!read.holds_at(Mark { commits: 3, ..read }));
        let replacing = Mark {
            handled: None,
            commits: 2,
        };
        assert!(replacing.holds_at(Mark {
            handled: Some(100),
            commits: 2
        }));
        assert!(!replacing.holds_at(Mark {
            handled: Some(7),
            commits: 3
        }));
    }
}
