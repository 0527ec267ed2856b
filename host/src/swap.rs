//! The hot swap protocol, after OTP's `sys:change_code`, made transactional.
//!
//! The caller prepares the new instance in a fresh `Store` before anything pauses (see
//! `Node::swap`). This module holds the classic swap: the actor, between two messages,
//! takes the old instance's `snapshot`, hands it to the new instance's `code-change`
//! (*stage*), and *commits* only if that succeeded. A single swap stages and commits in one
//! pause; a release (`release.rs`) stages every process first and commits all of them or
//! none. The pause is those two guest calls; a failure at either drops the new instance and
//! leaves the old one serving, untouched (a trap in the *old* instance's `snapshot` is the
//! one exception: that instance is dead, and so is the process).
//!
//! A single swap first tries the optimistic way (`optimistic_swap.rs`), which runs
//! `code-change` before the pause, and comes here when the process moved on meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::bindings::Change;
use crate::code::ModuleVersion;
use crate::error::SwapError;
use crate::process::actor::{Flow, ProcessActor};
use crate::process::instance::{GuestInstance, GuestTrap};
use crate::process::status::ProcessStatus;
use crate::process::{ExitReason, Pid};
use crate::registry::NodeId;

/// Which way a swap goes; the new instance's `code-change` is told, with the vsn being left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Upgrade,
    Downgrade,
}

/// What the operator passes to a swap besides the new code.
#[derive(Debug, Clone, Default)]
pub struct SwapOptions {
    /// Free-form bytes for `code-change` (OTP's `Extra`); empty when not given.
    pub extra: Vec<u8>,
    pub direction: Direction,
    /// A state to hand over instead of the old instance's `snapshot` (`replace-state`).
    pub state: Option<Vec<u8>>,
}

/// What a committed swap reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SwapReport {
    pub pid: Pid,
    pub name: Option<String>,
    pub module: String,
    pub from_vsn: String,
    pub to_vsn: String,
    pub direction: Direction,
    /// How long the mailbox was not served: `snapshot` plus `code-change` plus the commit;
    /// `snapshot` plus the commit when `code-change` ran before the pause
    /// ([`migrated_before_pause`](Self::migrated_before_pause)); for a release, from this
    /// process's suspension to its resumption.
    #[serde(with = "micros", rename = "pause_us")]
    pub pause: Duration,
    /// From the request to the reply, loading and instantiating included.
    #[serde(with = "micros", rename = "total_us")]
    pub total: Duration,
    /// Messages that arrived while the process was paused; served right after.
    pub queued_during_pause: u64,
    /// Size of the state blob handed over.
    pub state_bytes: usize,
    /// Whether `code-change` ran before the pause, the process serving on meanwhile (an
    /// optimistic swap, see `optimistic_swap.rs`); the pause was then the snapshot and the
    /// commit only.
    #[serde(default)]
    pub migrated_before_pause: bool,
    /// How long the old version's `snapshot` took, in the pause; zero when it did not run
    /// (`replace-state`, or a hibernating process, whose state the node held).
    #[serde(with = "micros", rename = "snapshot_us", default)]
    pub snapshot: Duration,
    /// How long the new version's `code-change` took: in the pause, or before it when
    /// [`migrated_before_pause`](Self::migrated_before_pause).
    #[serde(with = "micros", rename = "code_change_us", default)]
    pub code_change: Duration,
}

/// How long the two guest calls that hand the state over took: the old version's
/// `snapshot` (zero when it did not run) and the new version's `code-change`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub snapshot: Duration,
    pub code_change: Duration,
}

/// A new instance that has accepted the state, waiting for the commit (or the abort) of
/// the swap or release it belongs to. The old instance is untouched until then.
pub(crate) struct Staged {
    instance: Box<GuestInstance>,
    from: Arc<ModuleVersion>,
    direction: Direction,
    state_bytes: usize,
    migration: Migration,
}

impl Staged {
    pub(crate) fn new(
        instance: Box<GuestInstance>,
        from: Arc<ModuleVersion>,
        direction: Direction,
        state_bytes: usize,
        migration: Migration,
    ) -> Self {
        Self {
            instance,
            from,
            direction,
            state_bytes,
            migration,
        }
    }
}

/// Why staging failed: the error for the requester, and the exit reason when the old
/// instance itself died (a trap in its `snapshot`).
pub(crate) struct StageFailure {
    pub error: SwapError,
    pub exit: Option<ExitReason>,
}

/// Steps 4-5, in the actor between two messages: hand the old instance's state (or the
/// replacement state) to `next`'s `code-change`. Nothing is committed.
pub(crate) async fn stage(
    actor: &mut ProcessActor,
    mut next: Box<GuestInstance>,
    options: SwapOptions,
) -> Result<Staged, StageFailure> {
    let (pid, node) = (actor.status.pid, actor.status.node.0);
    let limit = actor.status.policy.swap_time_limit;
    let from = actor.instance.module().clone();
    let refuse = |error: SwapError, next: Box<GuestInstance>| {
        tracing::warn!(node, pid, module = %from.name, vsn = %from.vsn, %error, "swap refused");
        retire(next);
        StageFailure { error, exit: None }
    };

    let snapshot_started = Instant::now();
    let (state, snapshot) = match options.state {
        Some(state) => (state, Duration::ZERO),
        None => match actor.instance.snapshot(limit).await {
            Ok(Ok(state)) => (state, snapshot_started.elapsed()),
            Ok(Err(reason)) => return Err(refuse(snapshot_refused(pid, &from, reason), next)),
            Err(trap) => {
                let mut failure = refuse(snapshot_trapped(pid, &from, &trap), next);
                failure.exit = Some(trap.into());
                return Err(failure);
            }
        },
    };

    let error = match migrate(
        &mut next,
        &from,
        options.direction,
        &state,
        &options.extra,
        limit,
    )
    .await
    {
        Ok(code_change) => {
            let migration = Migration {
                snapshot,
                code_change,
            };
            return Ok(Staged::new(
                next,
                from,
                options.direction,
                state.len(),
                migration,
            ));
        }
        Err(error) => error,
    };
    Err(refuse(error, next))
}

/// Hands `state`, written by a `snapshot` of `from`, to `next`'s `code-change`, and says
/// how long that took. The error names what the new version said or how it trapped.
pub(crate) async fn migrate(
    next: &mut GuestInstance,
    from: &ModuleVersion,
    direction: Direction,
    state: &[u8],
    extra: &[u8],
    limit: Duration,
) -> Result<Duration, SwapError> {
    let pid = next.pid();
    let to = next.module().clone();
    let change = match direction {
        Direction::Upgrade => Change::Upgrade(from.vsn.to_string()),
        Direction::Downgrade => Change::Downgrade(from.vsn.to_string()),
    };
    let started = Instant::now();
    match next.code_change(&change, state, extra, limit).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(reason)) => Err(SwapError::CodeChangeRefused {
            pid,
            module: to.name.to_string(),
            from: from.vsn.to_string(),
            to: to.vsn.to_string(),
            reason,
        }),
        Err(trap) => Err(SwapError::CodeChangeTrapped {
            pid,
            module: to.name.to_string(),
            from: from.vsn.to_string(),
            to: to.vsn.to_string(),
            cause: trap.cause,
        }),
    }
}

/// The old instance would not write its state.
pub(crate) fn snapshot_refused(pid: Pid, from: &ModuleVersion, reason: String) -> SwapError {
    SwapError::SnapshotRefused {
        pid,
        module: from.name.to_string(),
        from: from.vsn.to_string(),
        reason,
    }
}

/// The old instance trapped writing its state: the process is gone.
pub(crate) fn snapshot_trapped(pid: Pid, from: &ModuleVersion, trap: &GuestTrap) -> SwapError {
    SwapError::SnapshotTrapped {
        pid,
        module: from.name.to_string(),
        from: from.vsn.to_string(),
        cause: trap.cause.clone(),
    }
}

/// Step 6: from here on the mailbox feeds the staged instance. Returns the report with
/// the timings left for the caller to fill in; the old instance is dropped once the
/// mailbox is empty, not in the pause.
pub(crate) fn commit(actor: &mut ProcessActor, staged: Staged) -> SwapReport {
    let Staged {
        instance,
        from,
        direction,
        state_bytes,
        migration,
    } = staged;
    let to = instance.module().clone();
    let old = std::mem::replace(&mut actor.instance, instance);
    actor.retire(old);
    record_commit(&actor.status, &from, &to, direction, state_bytes, migration)
}

/// Records in `status` that the process now runs `to`, and reports it, with the pause and
/// the total left for the caller to fill in.
pub(crate) fn record_commit(
    status: &ProcessStatus,
    from: &ModuleVersion,
    to: &Arc<ModuleVersion>,
    direction: Direction,
    state_bytes: usize,
    migration: Migration,
) -> SwapReport {
    status.set_running(to.clone());
    status.commits.fetch_add(1, Ordering::AcqRel);
    SwapReport {
        pid: status.pid,
        name: status.name.clone(),
        module: to.name.to_string(),
        from_vsn: from.vsn.to_string(),
        to_vsn: to.vsn.to_string(),
        direction,
        pause: Duration::ZERO,
        total: Duration::ZERO,
        queued_during_pause: 0,
        state_bytes,
        migrated_before_pause: false,
        snapshot: migration.snapshot,
        code_change: migration.code_change,
    }
}

/// Discards a staged instance: the old one serves on.
pub(crate) fn abort(staged: Staged) {
    retire(staged.instance);
}

/// Discards a prepared instance that was never staged.
pub(crate) fn abort_instance(instance: Box<GuestInstance>) {
    retire(instance);
}

/// A single swap, in the actor: stage and commit in one pause.
pub(crate) async fn swap_now(
    actor: &mut ProcessActor,
    next: Box<GuestInstance>,
    options: SwapOptions,
    requested_at: Instant,
    reply: oneshot::Sender<Result<SwapReport, SwapError>>,
) -> Flow {
    let paused_at = Instant::now();
    let queued_before = actor.status.enqueued();
    match stage(actor, next, options).await {
        Ok(staged) => {
            let mut report = commit(actor, staged);
            report.pause = paused_at.elapsed();
            report.total = requested_at.elapsed();
            report.queued_during_pause = actor.status.enqueued() - queued_before;
            log_committed(actor.status.node, &report);
            let _ = reply.send(Ok(report));
            Flow::Continue
        }
        Err(StageFailure { error, exit }) => {
            let exit = exit.map(|reason| actor.mark_exited(reason));
            let _ = reply.send(Err(error));
            exit.map_or(Flow::Continue, Flow::Exit)
        }
    }
}

/// Logs a committed swap, once its pause is over.
pub(crate) fn log_committed(node: NodeId, report: &SwapReport) {
    tracing::info!(
        node = node.0,
        pid = report.pid,
        module = %report.module,
        from = %report.from_vsn,
        to = %report.to_vsn,
        pause_us = report.pause.as_micros() as u64,
        snapshot_us = report.snapshot.as_micros() as u64,
        code_change_us = report.code_change.as_micros() as u64,
        migrated_before_pause = report.migrated_before_pause,
        "swapped"
    );
}

/// Drops an instance that no longer serves, off the actor's task: freeing a Store is work
/// that nobody waits for.
pub(crate) fn retire(instance: Box<GuestInstance>) {
    tokio::task::spawn_blocking(move || drop(instance));
}

pub(crate) mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e6)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let us = f64::deserialize(d)?;
        Duration::try_from_secs_f64(us / 1e6).map_err(serde::de::Error::custom)
    }
}
