//! Hibernation, after OTP's `hibernate_after`: a process idle for its policy's
//! `hibernate_after` (calls served in place count, see `lending.rs`) gives back its
//! instance (its `Store`, linear memory and fiber stack) and keeps only its state, as
//! the bytes its `snapshot` wrote. The next signal or message wakes it: a fresh instance
//! of the same version adopts the state through `code-change` (an upgrade from its own
//! vsn, as for `replace-state`), then serves what woke it.
//!
//! What a hibernating process costs is its mailbox, its task and its state blob: a few
//! KiB instead of an instance. In a pooled node its pool slot also keeps the pages the
//! instance wrote, reset, until another instance takes the slot: at most
//! [`KEEP_RESIDENT`](crate::engine::KEEP_RESIDENT) per memory and per table. What waking
//! costs is an instantiation and a `code-change` on the first message, which is why it is
//! off unless a policy turns it on.
//!
//! A state read, and the snapshot of an optimistic swap, are answered from the blob without
//! waking: the blob is what `snapshot` wrote, and nothing has run since. A swap that
//! migrated that blob then wakes the process on its new instance, so swapping a sleeping
//! process instantiates once, not twice.
//!
//! A guest that refuses to write its state stays awake until it has served another
//! message. One that traps in `snapshot`, or cannot adopt its own state on waking, exits
//! with that as its reason, as it would have on a swap. A wake that finds the instance pool
//! full waits for a slot, as every instantiation does (`instance::POOL_SLOT_WAIT`); if none
//! comes free, the process exits with the reason, and its state is lost, as a crashed
//! process's is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::bindings::Change;
use crate::code::ModuleVersion;
use crate::optimistic_swap::{self, Adoption, Declined, MarkedSnapshot};
use crate::process::ExitReason;
use crate::process::actor::{Flow, Parts, ProcessActor, record_exit};
use crate::process::control::Control;
use crate::process::envelope::Envelope;
use crate::process::instance::GuestInstance;
use crate::process::mailbox::Received;
use crate::swap::{self, SwapReport};

/// A process without an instance: its parts, its version and its state.
struct Asleep {
    parts: Parts,
    version: Arc<ModuleVersion>,
    state: Vec<u8>,
}

/// What woke a hibernating process.
enum Wake {
    Signal(Control),
    Message(Envelope),
}

/// Puts an idle process to sleep until its next signal or message, then serves that with
/// a fresh instance. `None` when the process exited meanwhile (every caller told why).
pub(crate) async fn hibernate(mut actor: ProcessActor) -> Option<ProcessActor> {
    let limit = actor.status.policy.swap_time_limit;
    let state = match actor.instance.snapshot(limit).await {
        Ok(Ok(state)) => state,
        Ok(Err(reason)) => {
            tracing::debug!(
                node = actor.status.node.0,
                pid = actor.status.pid,
                %reason,
                "snapshot refused; not hibernating"
            );
            actor.stay_awake();
            return Some(actor);
        }
        Err(trap) => {
            actor.exit(trap.into());
            return None;
        }
    };
    let (parts, instance) = actor.into_parts();
    let version = instance.module().clone();
    // Freeing a Store is work that nobody waits for.
    tokio::task::spawn_blocking(move || drop(instance));
    parts.status.hibernating.store(true, Ordering::Release);
    tracing::debug!(
        node = parts.status.node.0,
        pid = parts.status.pid,
        state_bytes = state.len(),
        "hibernating"
    );
    Asleep {
        parts,
        version,
        state,
    }
    .sleep()
    .await
}

impl Asleep {
    async fn sleep(mut self) -> Option<ProcessActor> {
        let wake = loop {
            let signal = match self.parts.mailbox.recv(true).await {
                Received::Signal(signal) => *signal,
                Received::Message(envelope) => break Wake::Message(envelope),
                Received::Disconnected => {
                    self.exit(ExitReason::Shutdown, None);
                    return None;
                }
            };
            match signal {
                Control::GetState { reply } => {
                    let _ = reply.send(Ok(self.state.clone()));
                }
                Control::MarkedSnapshot { reply } => {
                    let _ = reply.send(Ok(MarkedSnapshot {
                        state: self.state.clone(),
                        from: self.version.clone(),
                        mark: self.parts.status.mark(),
                        pause: Duration::ZERO,
                        queued: 0,
                    }));
                }
                Control::Adopt { adoption, reply } => {
                    if adoption.mark.holds_at(self.parts.status.mark()) {
                        return Some(self.wake_adopting(*adoption, reply));
                    }
                    swap::abort_instance(adoption.next);
                    let _ = reply.send(Err(Declined::Stale));
                }
                signal => break Wake::Signal(signal),
            }
        };
        let instance = match self.restore().await {
            Ok(instance) => instance,
            Err(reason) => {
                self.exit(reason, Some(wake));
                return None;
            }
        };
        let mut actor = self.awaken(instance);
        let flow = match wake {
            Wake::Signal(signal) => actor.serve_control(signal).await,
            Wake::Message(envelope) => actor.serve_message(envelope).await,
        };
        match flow {
            Flow::Continue => Some(actor),
            Flow::Exit(reason) => {
                actor.exit(reason);
                None
            }
        }
    }

    /// Wakes the process on the instance an optimistic swap migrated its blob into: the
    /// swap's commit, with nothing to retire.
    fn wake_adopting(
        self,
        adoption: Adoption,
        reply: oneshot::Sender<Result<SwapReport, Declined>>,
    ) -> ProcessActor {
        let started = Instant::now();
        let to = adoption.next.module().clone();
        let direction = adoption.options.direction;
        let status = &self.parts.status;
        let report = swap::record_commit(
            status,
            &self.version,
            &to,
            direction,
            adoption.state_bytes,
            adoption.migration,
        );
        let report = optimistic_swap::committed(
            status.node,
            report,
            adoption.queued,
            adoption.requested_at,
            started.elapsed(),
            0,
        );
        // Awake before the reply, so that the swapper sees the process awake.
        let actor = self.awaken(adoption.next);
        let _ = reply.send(Ok(report));
        actor
    }

    /// The process awake again, serving `instance`.
    fn awaken(self, instance: Box<GuestInstance>) -> ProcessActor {
        self.parts
            .status
            .hibernating
            .store(false, Ordering::Release);
        self.parts.reunite(instance)
    }

    /// A fresh instance of the version the process slept on, holding its state again.
    async fn restore(&self) -> Result<Box<GuestInstance>, ExitReason> {
        let status = &self.parts.status;
        let policy = &status.policy;
        let failed = |callback: &str, cause: String| ExitReason::Trapped {
            callback: callback.to_string(),
            cause: format!("waking from hibernation: {cause}"),
        };
        let registry = self.parts.registry.clone();
        let mut instance = GuestInstance::instantiate(&self.version, status.pid, registry, policy)
            .await
            .map_err(|cause| failed("instantiate", cause))?;
        let own = Change::Upgrade(self.version.vsn.to_string());
        match instance
            .code_change(&own, &self.state, &[], policy.swap_time_limit)
            .await
        {
            Ok(Ok(())) => Ok(Box::new(instance)),
            Ok(Err(reason)) => Err(failed(
                "code-change",
                format!("the guest refused its own state: {reason}"),
            )),
            Err(trap) => Err(failed("code-change", trap.cause)),
        }
    }

    /// Ends a process that could not wake (or whose node is gone): what woke it and
    /// everything queued behind get the reason.
    fn exit(self, reason: ExitReason, wake: Option<Wake>) {
        let status = &self.parts.status;
        let reason = record_exit(status, &self.parts.registry, reason);
        status.hibernating.store(false, Ordering::Release);
        tracing::warn!(
            node = status.node.0,
            pid = status.pid,
            module = %self.version.name,
            vsn = %self.version.vsn,
            %reason,
            "process exited"
        );
        if let Some(Wake::Message(envelope)) = wake {
            envelope.refuse(status.pid, &reason);
        }
        self.parts.close(&reason);
    }
}
