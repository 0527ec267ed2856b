//! The hot swap protocol, after OTP's `sys:change_code`, made transactional.
//!
//! The caller prepares the new instance in a fresh `Store` before anything pauses (see
//! `Node::swap`); the actor then, between two messages, takes the old instance's
//! `snapshot`, hands it to the new instance's `code-change`, and commits only if that
//! succeeds. The pause is those two guest calls; a failure at either drops the new
//! instance and leaves the old one serving, untouched (a trap in the *old* instance's
//! `snapshot` is the one exception: that instance is dead, and so is the process).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::bindings::Change;
use crate::error::SwapError;
use crate::process::Pid;
use crate::process::actor::{Flow, ProcessActor};
use crate::process::instance::GuestInstance;

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
    /// How long the mailbox was not served: `snapshot` plus `code-change` plus the commit.
    #[serde(with = "micros", rename = "pause_us")]
    pub pause: Duration,
    /// From the request to the reply, loading and instantiating included.
    #[serde(with = "micros", rename = "total_us")]
    pub total: Duration,
    /// Messages that arrived while the process was paused; served right after.
    pub queued_during_pause: u64,
    /// Size of the state blob handed over.
    pub state_bytes: usize,
}

/// Runs in the actor, between two messages: the pause.
pub(crate) async fn migrate_and_commit(
    actor: &mut ProcessActor,
    mut next: GuestInstance,
    options: SwapOptions,
    requested_at: Instant,
    reply: oneshot::Sender<Result<SwapReport, SwapError>>,
) -> Flow {
    let paused_at = Instant::now();
    let queued_before = actor.status.enqueued();
    let pid = actor.status.pid;
    let limit = actor.status.policy.swap_time_limit;
    let from = actor.instance.module().clone();
    let to = next.module().clone();

    let state = match actor.instance.snapshot(limit).await {
        Ok(Ok(state)) => state,
        Ok(Err(reason)) => {
            let _ = reply.send(Err(SwapError::SnapshotRefused {
                pid,
                module: from.name.to_string(),
                from: from.vsn.to_string(),
                reason,
            }));
            retire(next);
            return Flow::Continue;
        }
        Err(trap) => {
            let _ = reply.send(Err(SwapError::SnapshotTrapped {
                pid,
                module: from.name.to_string(),
                from: from.vsn.to_string(),
                cause: trap.cause.clone(),
            }));
            retire(next);
            return Flow::Exit(trap.into());
        }
    };

    let change = match options.direction {
        Direction::Upgrade => Change::Upgrade(from.vsn.to_string()),
        Direction::Downgrade => Change::Downgrade(from.vsn.to_string()),
    };
    let refusal = match next
        .code_change(&change, &state, &options.extra, limit)
        .await
    {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(SwapError::CodeChangeRefused {
            pid,
            module: to.name.to_string(),
            from: from.vsn.to_string(),
            to: to.vsn.to_string(),
            reason,
        }),
        Err(trap) => Some(SwapError::CodeChangeTrapped {
            pid,
            module: to.name.to_string(),
            from: from.vsn.to_string(),
            to: to.vsn.to_string(),
            cause: trap.cause,
        }),
    };
    if let Some(error) = refusal {
        tracing::warn!(pid, module = %from.name, vsn = %from.vsn, %error, "swap rolled back");
        let _ = reply.send(Err(error));
        retire(next);
        return Flow::Continue;
    }

    // Commit: from here on the mailbox feeds the new instance.
    let old = std::mem::replace(&mut actor.instance, next);
    actor.status.set_running(to.clone());
    let pause = paused_at.elapsed();
    let report = SwapReport {
        pid,
        name: actor.status.name.clone(),
        module: to.name.to_string(),
        from_vsn: from.vsn.to_string(),
        to_vsn: to.vsn.to_string(),
        direction: options.direction,
        pause,
        total: requested_at.elapsed(),
        queued_during_pause: actor.status.enqueued() - queued_before,
        state_bytes: state.len(),
    };
    tracing::info!(
        pid,
        module = %to.name,
        from = %from.vsn,
        to = %to.vsn,
        pause_us = pause.as_micros() as u64,
        queued = report.queued_during_pause,
        "swapped"
    );
    let _ = reply.send(Ok(report));
    retire(old);
    Flow::Continue
}

/// Drops an instance that no longer serves, off the actor's task: freeing a Store is work
/// that nobody waits for.
fn retire(instance: GuestInstance) {
    tokio::task::spawn_blocking(move || drop(instance));
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e6)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let us = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(us.max(0.0) / 1e6))
    }
}
