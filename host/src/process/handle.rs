//! The caller's side of a process: cheap to clone, talks to the actor through its mailbox.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::{CallError, ControlError, SwapError};
use crate::optimistic_swap::{Adoption, Declined, MarkedSnapshot};
use crate::process::control::Control;
use crate::process::deadline;
use crate::process::envelope::Envelope;
use crate::process::instance::GuestInstance;
use crate::process::lending::{self, InPlace};
use crate::process::mailbox::{MailboxSender, Refused};
use crate::process::status::ProcessStatus;
use crate::process::suspension::Suspender;
use crate::process::{ExitReason, Pid, ProcessInfo};
use crate::swap::{SwapOptions, SwapReport};

/// A handle is cloned for every message sent by name or pid; every clone shares the one
/// sending side of the mailbox, whose drop tells the actor that nobody can reach it.
#[derive(Clone)]
pub struct ProcessHandle {
    mailbox: Arc<MailboxSender>,
    pub(crate) status: Arc<ProcessStatus>,
}

impl ProcessHandle {
    pub(crate) fn new(mailbox: MailboxSender, status: Arc<ProcessStatus>) -> Self {
        Self {
            mailbox: Arc::new(mailbox),
            status,
        }
    }

    pub fn pid(&self) -> Pid {
        self.status.pid
    }

    pub fn name(&self) -> Option<&str> {
        self.status.name.as_deref()
    }

    /// Sends `request` to `handle-call` and waits up to `timeout` for the reply. A reply
    /// that the guest marked as an error is [`CallError::Refused`].
    ///
    /// A process with nothing queued serves the call on the caller's task, with the
    /// instance it lends while idle (`lending.rs`): the guest's work, and its log lines,
    /// happen there, inside the caller's tracing span. A call the guest does not end at
    /// once (it yields at an epoch tick, or waits in a host call) goes on in a task of its
    /// own, in the same span, and `timeout` counts from then: a call answered at once takes
    /// at most about one epoch tick of guest work.
    pub async fn call(
        &self,
        request: Vec<u8>,
        caller: Pid,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        // Before borrowing: a caller whose calls all end in place yields here in turn.
        tokio::task::coop::consume_budget().await;
        let answer = match lending::borrow(&self.mailbox) {
            Some(loan) => {
                let status = self.status.clone();
                match lending::call_in_place(loan, status, request, caller).await {
                    InPlace::Answered(answered) => return answered,
                    InPlace::Continues(answer) => answer,
                }
            }
            None => {
                let (reply, answer) = oneshot::channel();
                self.deliver(Envelope::Call {
                    request,
                    caller,
                    reply,
                })?;
                answer
            }
        };
        let reply = answered(answer, self.mailbox.closed());
        match deadline::timeout(timeout, reply).await {
            Ok(Some(result)) => result,
            Ok(None) => Err(self.exited()),
            Err(_) => Err(CallError::Timeout {
                pid: self.pid(),
                timeout,
            }),
        }
    }

    /// Queues `message` for `handle-cast`.
    pub fn cast(&self, message: Vec<u8>) -> Result<(), CallError> {
        self.deliver(Envelope::Cast(message))
    }

    /// Queues `message` for `handle-info`.
    pub fn info(&self, message: Vec<u8>) -> Result<(), CallError> {
        self.deliver(Envelope::Info(message))
    }

    fn deliver(&self, envelope: Envelope) -> Result<(), CallError> {
        match self.mailbox.post(envelope) {
            Ok(()) => {
                self.status.enqueued.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(Refused::Full) => Err(CallError::MailboxFull {
                pid: self.pid(),
                capacity: self.mailbox.capacity(),
            }),
            Err(Refused::Closed) => Err(self.exited()),
        }
    }

    fn exited(&self) -> CallError {
        CallError::Exited {
            pid: self.pid(),
            reason: self.status.exit_reason(),
        }
    }

    /// Hands a prepared instance to the actor, which migrates the state into it between
    /// two messages and commits or rolls back.
    pub(crate) async fn swap(
        &self,
        next: Box<GuestInstance>,
        options: SwapOptions,
        requested_at: Instant,
    ) -> Result<SwapReport, SwapError> {
        self.signal(|reply| Control::Swap {
            next,
            options,
            requested_at,
            reply,
        })
        .await
        .map_err(|reason| SwapError::Exited {
            pid: self.pid(),
            reason,
        })?
    }

    /// The state, marked with where the process was when it wrote it.
    pub(crate) async fn marked_snapshot(&self) -> Result<MarkedSnapshot, SwapError> {
        self.signal(|reply| Control::MarkedSnapshot { reply })
            .await
            .map_err(|reason| SwapError::Exited {
                pid: self.pid(),
                reason,
            })?
    }

    /// Commits an instance that adopted the state at its mark, if the mark still holds.
    pub(crate) async fn adopt(&self, adoption: Adoption) -> Result<SwapReport, Declined> {
        let adoption = Box::new(adoption);
        self.signal(|reply| Control::Adopt { adoption, reply })
            .await
            .map_err(|reason| {
                Declined::Failed(SwapError::Exited {
                    pid: self.pid(),
                    reason,
                })
            })?
    }

    /// Migrates the state into `next` without committing (a release's second phase).
    pub(crate) async fn stage(
        &self,
        next: Box<GuestInstance>,
        options: SwapOptions,
    ) -> Result<(), SwapError> {
        self.signal(|reply| Control::Stage {
            next,
            options,
            reply,
        })
        .await
        .map_err(|reason| SwapError::Exited {
            pid: self.pid(),
            reason,
        })?
    }

    /// Commits what [`stage`](Self::stage) prepared.
    pub(crate) async fn commit(&self) -> Result<Option<SwapReport>, ExitReason> {
        self.signal(|reply| Control::Commit { reply }).await
    }

    /// A release's way out when it cannot await (a guard's `drop`): queues, without
    /// waiting for the answers, a signal to drop what is staged and one to lift the
    /// release's hold. They are served after what the actor already has and before anything
    /// sent later, such as the next release's suspend. A process that has ended takes
    /// neither, and has nothing to resume.
    pub(crate) fn abort_and_resume_now(&self) {
        let abort = Control::Abort {
            reply: oneshot::channel().0,
        };
        let resume = Control::Resume {
            by: Suspender::Release,
            reply: oneshot::channel().0,
        };
        if self.mailbox.signal(Box::new(abort)).is_ok() {
            let _ = self.mailbox.signal(Box::new(resume));
        }
    }

    /// Drops what [`stage`](Self::stage) prepared, if anything.
    pub(crate) async fn abort(&self) -> Result<(), ExitReason> {
        self.signal(|reply| Control::Abort { reply }).await
    }

    /// Stops serving user messages after the one in hand; they queue until `resume`.
    /// Control requests are still served. Idempotent.
    pub async fn suspend(&self) -> Result<(), ControlError> {
        self.suspend_by(Suspender::Operator).await
    }

    /// Serves user messages again, unless a release holds them until it commits or aborts.
    /// Idempotent.
    pub async fn resume(&self) -> Result<(), ControlError> {
        self.resume_by(Suspender::Operator).await
    }

    pub(crate) async fn suspend_by(&self, by: Suspender) -> Result<(), ControlError> {
        self.signal(|reply| Control::Suspend { by, reply })
            .await
            .map_err(|reason| self.control_exited(reason))
    }

    pub(crate) async fn resume_by(&self, by: Suspender) -> Result<(), ControlError> {
        self.signal(|reply| Control::Resume { by, reply })
            .await
            .map_err(|reason| self.control_exited(reason))
    }

    /// The process's state blob, read between two messages.
    pub async fn get_state(&self) -> Result<Vec<u8>, ControlError> {
        self.signal(|reply| Control::GetState { reply })
            .await
            .map_err(|reason| self.control_exited(reason))?
    }

    /// Stops the process after the message in hand: `terminate` runs, then it exits.
    /// Messages still queued are answered with the exit reason.
    pub async fn stop(&self, reason: &str) -> Result<(), ControlError> {
        let reason = reason.to_string();
        self.signal(|reply| Control::Stop { reason, reply })
            .await
            .map_err(|reason| self.control_exited(reason))
    }

    /// Sends a control signal built around a reply channel and waits for the answer; the
    /// error is the exit reason when the process is gone (or goes) before answering.
    async fn signal<T>(
        &self,
        signal: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, ExitReason> {
        let (reply, answer) = oneshot::channel();
        if self.mailbox.signal(Box::new(signal(reply))).is_err() {
            return Err(self.status.exit_reason());
        }
        answered(answer, self.mailbox.closed())
            .await
            .ok_or_else(|| self.status.exit_reason())
    }

    fn control_exited(&self, reason: ExitReason) -> ControlError {
        ControlError::Exited {
            pid: self.pid(),
            reason,
        }
    }

    /// The exit reason, once the process has ended.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.status.exit.get().cloned()
    }

    /// Waits until the process has ended, and says why.
    pub async fn closed(&self) -> ExitReason {
        self.mailbox.closed().await;
        self.status.exit_reason()
    }

    /// Whether user messages wait in the mailbox of a process that is not suspended, or a
    /// call is being served on its caller's task, so that the process will serve a message
    /// right before or after any signal sent now. (A forecast: the mailbox may be empty by
    /// the time anyone acts on it.)
    pub(crate) fn has_messages_waiting(&self) -> bool {
        self.mailbox.busy() && !self.status.suspended.load(Ordering::Acquire)
    }

    pub fn describe(&self) -> ProcessInfo {
        let running = self.status.running();
        let capacity = self.mailbox.capacity();
        ProcessInfo {
            pid: self.pid(),
            name: self.status.name.clone(),
            module: running.name.to_string(),
            vsn: running.vsn.to_string(),
            mailbox: self.mailbox.len(),
            mailbox_capacity: capacity,
            handled: self.status.handled.load(Ordering::Relaxed),
            suspended: self.status.suspended.load(Ordering::Acquire),
            hibernating: self.status.hibernating.load(Ordering::Acquire),
        }
    }
}

/// The answer to a call or a control signal, or `None` once the process has ended without
/// giving it: then, and only then, its exit reason may be read. A reply dropped unsent
/// means the process is ending, and its exit reason is written before its mailbox closes
/// (`mailbox_closed`): by the actor before it answers, or, when the task serving it
/// panicked, by the first field of whatever holds the mailbox (`actor::PanicReason`), as
/// the unwinding drops it, after the request in progress. Reading the reason at once could
/// report a panic as a plain shutdown.
async fn answered<T>(
    answer: oneshot::Receiver<T>,
    mailbox_closed: impl Future<Output = ()>,
) -> Option<T> {
    match answer.await {
        Ok(value) => Some(value),
        Err(_) => {
            mailbox_closed.await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    #[tokio::test]
    async fn a_reply_dropped_before_the_exit_is_written_reports_the_exit_written_after() {
        let (reply, answer) = oneshot::channel();
        let (mailbox, receiver) = crate::process::mailbox::mailbox::<()>(1);
        let exit = Arc::new(OnceLock::new());
        let caller = {
            let exit = exit.clone();
            tokio::spawn(async move {
                let closed = mailbox.closed();
                let reply: Option<Result<Vec<u8>, CallError>> = answered(answer, closed).await;
                // What the caller reports: the reason written by the time it reads it.
                reply
                    .map(drop)
                    .ok_or_else(|| exit.get().cloned().unwrap_or(ExitReason::Shutdown))
            })
        };
        // A panic's unwinding: the call in progress goes first, then the guard writes the
        // reason, then the mailbox closes.
        drop(reply);
        tokio::task::yield_now().await;
        let fault = ExitReason::HostFault {
            cause: "the task serving the process panicked".into(),
        };
        exit.get_or_init(|| fault.clone());
        drop(receiver);
        assert_eq!(caller.await.expect("caller task"), Err(fault));
    }
}
