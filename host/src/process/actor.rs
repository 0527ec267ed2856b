//! The task that owns a process's guest instance and serves its mailbox.
//!
//! The loop takes control signals first, then user messages, and runs each to completion
//! before taking the next: this is what makes a swap, a state read or a stop happen between
//! two messages, never inside one. A guest trap ends the loop with the trap as exit reason.
//! An idle process with nothing in hand (not suspended, no release staged, no swapped-out
//! instance to drop) lends its instance to the callers on its runtime, who serve their
//! calls in place (`lending.rs`), and takes it back when a message or a signal arrives. A
//! process whose policy says so hibernates once nothing has been served for its
//! `hibernate_after`, calls in place included (`hibernation.rs`), and comes back here, with
//! a fresh instance, at its next message or control signal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{CallError, ControlError, SwapError};
use crate::optimistic_swap::{self, Adoption, Declined, MarkedSnapshot};
use crate::process::control::Control;
use crate::process::envelope::Envelope;
use crate::process::hibernation;
use crate::process::instance::GuestInstance;
use crate::process::lending::{self, Lent};
use crate::process::mailbox::{self, MailboxReceiver, Received};
use crate::process::status::ProcessStatus;
use crate::process::suspension::Holds;
use crate::process::{ExitReason, ProcessHandle};
use crate::registry::Registry;
use crate::swap::{self, StageFailure, Staged};

pub(crate) struct ProcessActor {
    /// First, so dropped first: see [`PanicReason`].
    _fault_first: PanicReason,
    pub status: Arc<ProcessStatus>,
    /// The instance the mailbox feeds; replaced by a committed swap. Boxed, so that lending
    /// it to callers while idle (`lending.rs`) moves a pointer: inline, it would stay
    /// reserved in the task while it is lent, in every idle process.
    pub instance: Box<GuestInstance>,
    mailbox: MailboxReceiver,
    registry: Arc<Registry>,
    /// While anyone holds them, user messages wait in the mailbox; control signals are
    /// still served.
    holds: Holds,
    /// A new instance that accepted the state, waiting for its release to commit or abort.
    /// Boxed, like `retired`: each is there only for a moment around a swap, and inline they
    /// would make every idle process's task larger by an instance each.
    staged: Option<Box<Staged>>,
    /// The guest refused to write its state for hibernation; it stays awake until it has
    /// served another message.
    hibernation_refused: bool,
    /// The instance a swap replaced, dropped (off this task) once the mailbox is empty or
    /// the next message is served, whichever comes first: freeing a Store has no place in
    /// a swap's pause, nor in the reply to the first message after it.
    retired: Option<Box<GuestInstance>>,
}

/// Why [`ProcessActor::serve`] returned.
enum Pause {
    /// Nothing was served for the policy's `hibernate_after` (found while lending): hibernate.
    Idle,
    /// Nothing is queued, and nothing else is going on: lend the instance to callers.
    Lend,
    Exit(ExitReason),
}

/// What [`ProcessActor::serve`] found to do next.
enum Next {
    Signal(Box<Control>),
    Message(Envelope),
    /// Drop the instance a swap retired, now that the mailbox is empty.
    DropRetired,
    /// The mailbox's sending side is gone: nobody can reach the process any more.
    Closed,
}

/// What the loop does after a signal or a message.
pub(crate) enum Flow {
    Continue,
    Exit(ExitReason),
}

impl ProcessActor {
    /// Builds the actor around an instance that has already run `init`, and the handle
    /// that feeds it.
    pub fn new(
        status: Arc<ProcessStatus>,
        instance: GuestInstance,
        registry: Arc<Registry>,
    ) -> (ProcessHandle, Self) {
        let (sender, mailbox) = mailbox::mailbox(status.policy.mailbox_capacity);
        let handle = ProcessHandle::new(sender, status.clone());
        let actor = Self::awake(status, Box::new(instance), registry, mailbox);
        (handle, actor)
    }

    /// An actor serving `instance`, neither suspended nor in a release: a new process, or
    /// one back from hibernation.
    pub(super) fn awake(
        status: Arc<ProcessStatus>,
        instance: Box<GuestInstance>,
        registry: Arc<Registry>,
        mailbox: MailboxReceiver,
    ) -> Self {
        Self {
            _fault_first: PanicReason(status.clone()),
            status,
            instance,
            mailbox,
            registry,
            holds: Holds::default(),
            staged: None,
            hibernation_refused: false,
            retired: None,
        }
    }

    /// Keeps `old` to drop once the mailbox is empty or the next message is served (at
    /// once, off this task, if one is waiting already).
    pub(crate) fn retire(&mut self, old: Box<GuestInstance>) {
        if let Some(previous) = self.retired.replace(old) {
            swap::retire(previous);
        }
    }

    /// Takes the actor apart, for hibernation or lending: everything but the instance,
    /// which is returned beside it.
    pub(super) fn into_parts(mut self) -> (Parts, Box<GuestInstance>) {
        if let Some(retired) = self.retired.take() {
            swap::retire(retired);
        }
        let parts = Parts {
            _fault_first: self._fault_first,
            status: self.status,
            registry: self.registry,
            mailbox: self.mailbox,
            hibernation_refused: self.hibernation_refused,
        };
        (parts, self.instance)
    }

    /// Whether the process may lend its instance while nothing is queued: it serves
    /// messages, and is in the middle of nothing (a staged release, a swapped-out instance
    /// to drop). A hibernation policy's idle time is kept while lending
    /// (`lending::lend_until_idle`).
    pub(super) fn may_lend(&self) -> bool {
        !self.holds.any() && self.staged.is_none() && self.retired.is_none()
    }

    /// Serves the process until it stops or traps, then unregisters it and answers every
    /// call still queued with the exit reason.
    ///
    /// It works on `self` itself: an async fn keeps room for its arguments, so moving the
    /// actor into a local would store it twice in every process's task. That also fixes an
    /// order callers rely on: `_unregister`, a local, drops before the argument, so a
    /// panicking task writes its exit reason before the mailbox closes (see
    /// `handle::answered`). The actor's own first field does the same wherever else the
    /// mailbox is when a panic unwinds (see [`PanicReason`]).
    pub async fn run(mut self) {
        let _unregister = ExitGuard {
            status: self.status.clone(),
            registry: self.registry.clone(),
        };
        // Set when the lending actor found nothing served for its hibernation policy's time.
        // It hibernates at the top of the loop, not in the arm that learned it: awaited
        // there, the lending's result (an actor) would stay in every process's task, 72
        // bytes more (measured with `size_of_val`).
        let mut idle = false;
        loop {
            let pause = if std::mem::take(&mut idle) {
                Pause::Idle
            } else {
                self.serve().await
            };
            match pause {
                Pause::Exit(reason) => return self.exit(reason),
                Pause::Lend => match self.status.policy.hibernate_after {
                    None => match lending::lend(self).await {
                        Some(back) => self = back,
                        None => return,
                    },
                    // Boxed: its idle timer would otherwise take room in every task.
                    Some(after) => match Box::pin(lending::lend_until_idle(self, after)).await {
                        Lent::Back(back) => self = back,
                        Lent::Idle(back) => (self, idle) = (back, true),
                        Lent::Ended => return,
                    },
                },
                // Boxed, like control signals below: a task is as large as its largest
                // state, and rare paths should not make every idle process pay for theirs.
                Pause::Idle => match Box::pin(hibernation::hibernate(self)).await {
                    Some(woken) => self = woken,
                    None => return,
                },
            }
        }
    }

    /// Serves signals and messages until the process exits, or has nothing queued and
    /// nothing in hand, and so lends its instance.
    async fn serve(&mut self) -> Pause {
        loop {
            let next = if self.may_lend() {
                match self.mailbox.try_recv().await {
                    Some(Received::Signal(signal)) => Next::Signal(signal),
                    Some(Received::Message(envelope)) => Next::Message(envelope),
                    Some(Received::Disconnected) => Next::Closed,
                    None => return Pause::Lend,
                }
            } else {
                // The `select!` only chooses; the work is done after it. A guest call awaited
                // in one of its arms would take room beside the arms' own futures, in every
                // process's task.
                tokio::select! {
                    biased;
                    received = self.mailbox.recv(!self.holds.any()) => match received {
                        Received::Signal(signal) => Next::Signal(signal),
                        Received::Message(envelope) => Next::Message(envelope),
                        Received::Disconnected => Next::Closed,
                    },
                    () = std::future::ready(()), if self.retired.is_some() => Next::DropRetired,
                }
            };
            let flow = match next {
                Next::Signal(signal) => Box::pin(self.serve_control(*signal)).await,
                Next::Message(envelope) => {
                    // Boxed too, though it is the common path: serving a message is a
                    // 616-byte future, which an idle process's task would otherwise hold
                    // for its whole life. Under the 1,032 bytes that glibc's malloc serves
                    // from its per-thread cache, the allocation is cheap (see
                    // `deadline::Timeout` for when it was not).
                    let flow = Box::pin(self.serve_message(envelope)).await;
                    // A process kept busy would hold the instance (and its pool slot) for
                    // as long as its mailbox stays full, or until tokio's budget for one
                    // poll made the receive yield: a release right behind the swap needs
                    // that slot.
                    if let Some(retired) = self.retired.take() {
                        swap::retire(retired);
                    }
                    flow
                }
                Next::DropRetired => {
                    if let Some(retired) = self.retired.take() {
                        swap::retire(retired);
                    }
                    Flow::Continue
                }
                Next::Closed => Flow::Exit(ExitReason::Shutdown),
            };
            if let Flow::Exit(reason) = flow {
                return Pause::Exit(reason);
            }
        }
    }

    /// The guest refused to write its state for hibernation: stay awake for now.
    pub(super) fn stay_awake(&mut self) {
        self.hibernation_refused = true;
    }

    pub(super) async fn serve_message(&mut self, envelope: Envelope) -> Flow {
        self.hibernation_refused = false;
        self.status.handled.fetch_add(1, Ordering::Relaxed);
        let limit = self.status.policy.message_time_limit;
        let outcome = match envelope {
            Envelope::Call {
                request,
                caller,
                reply,
            } => match self.instance.handle_call(&request, caller, limit).await {
                Ok(answer) => {
                    let answer = answer.map_err(|reason| {
                        CallError::refused(self.instance.module(), self.status.pid, reason)
                    });
                    // The caller may have timed out and gone: its loss, not ours.
                    let _ = reply.send(answer);
                    Ok(())
                }
                Err(trap) => {
                    // Gone from the registry before the caller hears of it, so that what
                    // the caller does next already sees the process dead.
                    let reason = self.mark_exited(ExitReason::from(trap.clone()));
                    let _ = reply.send(Err(CallError::Exited {
                        pid: self.status.pid,
                        reason,
                    }));
                    Err(trap)
                }
            },
            Envelope::Cast(message) => self.instance.handle_cast(&message, limit).await,
            Envelope::Info(message) => self.instance.handle_info(&message, limit).await,
        };
        match outcome {
            Ok(()) => Flow::Continue,
            Err(trap) => Flow::Exit(trap.into()),
        }
    }

    pub(super) async fn serve_control(&mut self, signal: Control) -> Flow {
        match signal {
            Control::Swap {
                next,
                options,
                requested_at,
                reply,
            } => {
                if self.staged.is_some() {
                    // The release's commit would replace whatever this swap installs.
                    let _ = reply.send(Err(SwapError::Busy {
                        pid: self.status.pid,
                    }));
                    swap::abort_instance(next);
                    return Flow::Continue;
                }
                swap::swap_now(self, next, options, requested_at, reply).await
            }
            Control::MarkedSnapshot { reply } => {
                let (started, queued_before) = (Instant::now(), self.status.enqueued());
                let limit = self.status.policy.swap_time_limit;
                let from = self.instance.module().clone();
                match self.instance.snapshot(limit).await {
                    Ok(Ok(state)) => {
                        let _ = reply.send(Ok(MarkedSnapshot {
                            state,
                            from,
                            mark: self.status.mark(),
                            pause: started.elapsed(),
                            queued: self.status.enqueued() - queued_before,
                        }));
                        Flow::Continue
                    }
                    Ok(Err(reason)) => {
                        let error = swap::snapshot_refused(self.status.pid, &from, reason);
                        let _ = reply.send(Err(error));
                        Flow::Continue
                    }
                    Err(trap) => {
                        let error = swap::snapshot_trapped(self.status.pid, &from, &trap);
                        let exit = self.mark_exited(trap.into());
                        let _ = reply.send(Err(error));
                        Flow::Exit(exit)
                    }
                }
            }
            Control::Adopt { adoption, reply } => {
                let started = Instant::now();
                let queued_before = self.status.enqueued();
                let Adoption {
                    next,
                    mark,
                    options,
                    state_bytes,
                    migration,
                    queued,
                    requested_at,
                } = *adoption;
                if self.staged.is_some() {
                    swap::abort_instance(next);
                    let busy = SwapError::Busy {
                        pid: self.status.pid,
                    };
                    let _ = reply.send(Err(Declined::Failed(busy)));
                } else if !mark.holds_at(self.status.mark()) {
                    swap::abort_instance(next);
                    let _ = reply.send(Err(Declined::Stale));
                } else {
                    let from = self.instance.module().clone();
                    let direction = options.direction;
                    let staged = Staged::new(next, from, direction, state_bytes, migration);
                    let report = swap::commit(self, staged);
                    let queued_at_commit = self.status.enqueued() - queued_before;
                    let report = optimistic_swap::committed(
                        self.status.node,
                        report,
                        queued,
                        requested_at,
                        started.elapsed(),
                        queued_at_commit,
                    );
                    let _ = reply.send(Ok(report));
                }
                Flow::Continue
            }
            Control::Stage {
                next,
                options,
                reply,
            } => {
                if let Some(previous) = self.staged.take() {
                    swap::abort(*previous);
                }
                match swap::stage(self, next, options).await {
                    Ok(staged) => {
                        self.staged = Some(Box::new(staged));
                        let _ = reply.send(Ok(()));
                        Flow::Continue
                    }
                    Err(StageFailure { error, exit }) => {
                        let exit = exit.map(|reason| self.mark_exited(reason));
                        let _ = reply.send(Err(error));
                        exit.map_or(Flow::Continue, Flow::Exit)
                    }
                }
            }
            Control::Commit { reply } => {
                // Logged by the release, which knows each process's pause.
                let report = self.staged.take().map(|staged| swap::commit(self, *staged));
                let _ = reply.send(report);
                Flow::Continue
            }
            Control::Abort { reply } => {
                if let Some(staged) = self.staged.take() {
                    swap::abort(*staged);
                }
                let _ = reply.send(());
                Flow::Continue
            }
            Control::Suspend { by, reply } => {
                self.holds.suspend(by);
                self.status.suspended.store(true, Ordering::Release);
                let _ = reply.send(());
                Flow::Continue
            }
            Control::Resume { by, reply } => {
                self.holds.resume(by);
                let held = self.holds.any();
                self.status.suspended.store(held, Ordering::Release);
                let _ = reply.send(());
                Flow::Continue
            }
            Control::GetState { reply } => {
                match self
                    .instance
                    .snapshot(self.status.policy.swap_time_limit)
                    .await
                {
                    Ok(Ok(state)) => {
                        let _ = reply.send(Ok(state));
                        Flow::Continue
                    }
                    Ok(Err(reason)) => {
                        let version = self.instance.module();
                        let _ = reply.send(Err(ControlError::SnapshotRefused {
                            pid: self.status.pid,
                            module: version.name.to_string(),
                            vsn: version.vsn.to_string(),
                            reason,
                        }));
                        Flow::Continue
                    }
                    Err(trap) => {
                        let exit = self.mark_exited(trap.clone().into());
                        let version = self.instance.module();
                        let _ = reply.send(Err(ControlError::SnapshotTrapped {
                            pid: self.status.pid,
                            module: version.name.to_string(),
                            vsn: version.vsn.to_string(),
                            cause: trap.cause,
                        }));
                        Flow::Exit(exit)
                    }
                }
            }
            Control::Stop { reason, reply } => {
                let limit = self.status.policy.message_time_limit;
                if let Err(trap) = self.instance.terminate(&reason, limit).await {
                    tracing::warn!(
                        node = self.status.node.0,
                        pid = self.status.pid,
                        %trap,
                        "terminate failed; stopping anyway"
                    );
                }
                // Unregister before answering, so that the stopper sees the process gone.
                let reason = self.mark_exited(ExitReason::Stopped { reason });
                let _ = reply.send(());
                Flow::Exit(reason)
            }
        }
    }

    /// Records the exit reason (the first one recorded wins) and unregisters the process.
    pub(crate) fn mark_exited(&self, reason: ExitReason) -> ExitReason {
        record_exit(&self.status, &self.registry, reason)
    }

    pub(super) fn exit(mut self, reason: ExitReason) {
        let reason = self.mark_exited(reason);
        let version = self.status.running();
        let node = self.status.node.0;
        match &reason {
            ExitReason::Trapped { .. } => tracing::warn!(
                node,
                pid = self.status.pid,
                module = %version.name,
                vsn = %version.vsn,
                %reason,
                "process exited"
            ),
            _ => tracing::info!(
                node,
                pid = self.status.pid,
                module = %version.name,
                vsn = %version.vsn,
                %reason,
                "process exited"
            ),
        }
        let staged = self.staged.take();
        let (parts, instance) = self.into_parts();
        parts.close(&reason);
        // The Store can be large; dropping it is work that no caller waits for.
        tokio::task::spawn_blocking(move || drop((instance, staged)));
    }
}

/// What a process is besides its instance: kept while it hibernates or lends.
pub(super) struct Parts {
    /// First, so dropped first: see [`PanicReason`].
    pub _fault_first: PanicReason,
    pub status: Arc<ProcessStatus>,
    pub registry: Arc<Registry>,
    pub mailbox: MailboxReceiver,
    /// See [`ProcessActor`]'s field: a refusal stands across a lending in which no call
    /// was served.
    pub hibernation_refused: bool,
}

impl Parts {
    /// The actor again, serving `instance`.
    pub fn reunite(self, instance: Box<GuestInstance>) -> ProcessActor {
        let Self {
            _fault_first: _,
            status,
            registry,
            mailbox,
            hibernation_refused,
        } = self;
        let mut actor = ProcessActor::awake(status, instance, registry, mailbox);
        actor.hibernation_refused = hibernation_refused;
        actor
    }

    /// Ends a process whose instance was lost with a call that never ended (a panic in
    /// the host, or its task dropped): what [`ProcessActor::exit`] does, but for dropping
    /// the instance. The reason is a host fault, which the task's `ExitGuard` logs.
    pub fn exit_without_instance(self, reason: ExitReason) {
        let reason = record_exit(&self.status, &self.registry, reason);
        self.close(&reason);
    }

    /// Closes the mailbox of a process that exited for `reason`: every call still
    /// queued gets the reason; a control signal's requester sees its reply dropped.
    pub fn close(mut self, reason: &ExitReason) {
        let (signals, messages) = self.mailbox.close();
        for envelope in messages {
            envelope.refuse(self.status.pid, reason);
        }
        // Dropping a signal's reply sender tells its requester that the process is gone.
        drop(signals);
    }
}

/// Records `reason` as the exit reason of the process (the first one recorded wins),
/// unregisters it and cancels its timers.
pub(super) fn record_exit(
    status: &ProcessStatus,
    registry: &Registry,
    reason: ExitReason,
) -> ExitReason {
    let reason = status.exit.get_or_init(|| reason).clone();
    registry.unregister(status.pid);
    registry.cancel_timers_of(status.pid);
    reason
}

/// Makes sure a process whose task ends without [`ProcessActor::exit`] (a panic in the host
/// while serving it, or its runtime shutting down) is unregistered, with its timers
/// cancelled, instead of lingering in `ps` with a name nobody can reuse. After a normal
/// exit this finds the reason already recorded and changes nothing.
struct ExitGuard {
    status: Arc<ProcessStatus>,
    registry: Arc<Registry>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let pid = self.status.pid;
        let reason = self.status.exit.get_or_init(|| {
            if std::thread::panicking() {
                task_panicked()
            } else {
                ExitReason::Shutdown
            }
        });
        if matches!(reason, ExitReason::HostFault { .. }) {
            tracing::error!(node = self.status.node.0, pid, %reason, "process exited");
        }
        self.registry.unregister(pid);
        self.registry.cancel_timers_of(pid);
    }
}

/// Writes [`task_panicked`] as the exit reason if it is dropped while a panic unwinds, and
/// nothing otherwise. It is the first field of [`ProcessActor`] and of [`Parts`], and a
/// struct drops its fields in order: whichever future owns the process when a panic
/// unwinds through it (the actor's task, or the hibernation's, whose own locals unwind
/// before the task's guard is reached), the reason is written before the mailbox closes.
pub(super) struct PanicReason(Arc<ProcessStatus>);

impl Drop for PanicReason {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.exit.get_or_init(task_panicked);
        }
    }
}

/// The exit reason of a process whose task panicked in host code.
pub(super) fn task_panicked() -> ExitReason {
    ExitReason::HostFault {
        cause: "the task serving the process panicked".into(),
    }
}
