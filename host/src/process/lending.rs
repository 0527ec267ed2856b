//! Calls served on the caller's task: an idle process lends its instance to a caller that
//! finds nothing queued before its call.
//!
//! Through the mailbox, a call is two task wake-ups, the actor's and then the caller's, and
//! on a multi-threaded runtime the second worker is woken for one of them in every few:
//! tokio runs a task woken by the running one on the same worker at most three times in a
//! row, then hands it to the queue that other workers steal from. `call_profile` measured
//! 3.5 µs of CPU a call, 0.3 context switches, and a quarter of the CPU in the kernel's
//! task switching; the guest's own work is a tenth of it. A call served in place is one
//! guest call and two lock round trips.
//!
//! What keeps the actor's guarantees:
//! - **One place at a time.** The instance is with the actor, in the mailbox's slot, or
//!   with exactly one call ([`Slot`]), and the slot is under the mailbox's lock.
//! - **Order.** A caller borrows only when no signal and no message is queued and the actor
//!   is waiting with nothing in hand: what the actor would have served next is this call.
//!   What arrives while it is served waits for it, as it would behind a message the actor
//!   serves: the instance is given back and the actor woken.
//! - **Only when nothing else is going on.** An actor lends only when it is not suspended,
//!   holds no staged release, has no swapped-out instance to drop, and has no hibernation
//!   policy (whose idle timer it keeps itself).
//! - **In place only while it takes no time.** The caller polls the guest call once, on
//!   its own task. Most calls end in that poll. One that does not (the guest yielded at an
//!   epoch tick, or waits in a host call) goes on in a task of its own on the process's
//!   runtime, and the caller waits for its answer as it would for the actor's: the process
//!   never depends on a caller polling it, and a caller that gives up (its timeout, or its
//!   future dropped) leaves the call to finish, then the instance is given back whole.
//! - **The same runtime.** Host calls of the guest (a `send-after` timer) start tasks on
//!   the runtime they run on, so only a caller on the actor's runtime borrows.
//! - **The same limits.** The call runs under the process's `message_time_limit`, counts
//!   in `handled` (so an optimistic swap sees that the state may have changed), and takes
//!   from the caller's tokio budget, so that a caller whose calls all end in place still
//!   yields.
//! - **The same end.** A trap unregisters the process before the caller hears of it; the
//!   actor then takes the instance back and exits with the reason, answering every call
//!   queued behind it. A panic in the host while a call is served in place is caught
//!   there: the caller gets the process's exit, as it would from a panicking actor.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use tokio::runtime::{Handle, Id};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::error::CallError;
use crate::process::actor::{ProcessActor, record_exit, task_panicked};
use crate::process::instance::GuestInstance;
use crate::process::mailbox::MailboxSender;
use crate::process::status::ProcessStatus;
use crate::process::{ExitReason, Pid};
use crate::swap;

/// Where a process's instance is while its actor waits. (Generic only for its tests.)
#[derive(Default)]
pub(crate) enum Slot<I = Box<GuestInstance>> {
    /// With the actor: it is serving, or does not lend.
    #[default]
    WithActor,
    /// Waiting for a caller, while the actor, on `runtime`, waits for work.
    Idle { instance: I, runtime: Id },
    /// Serving a caller's call.
    Lent { runtime: Id },
    /// Back from a call that ended the process, or gone with it (`instance` is `None` when
    /// the call was abandoned mid-way): the actor exits with `reason`.
    Ended {
        instance: Option<I>,
        reason: Box<ExitReason>,
    },
}

/// What a lending actor gets back.
#[derive(Debug, PartialEq)]
pub(crate) enum Returned<I = Box<GuestInstance>> {
    /// The instance, to serve what arrived.
    Instance(I),
    /// A call served on a caller's task ended the process.
    Ended {
        instance: Option<I>,
        reason: Box<ExitReason>,
    },
}

impl<I> Slot<I> {
    pub fn lend(&mut self, instance: I, runtime: Id) {
        *self = Self::Idle { instance, runtime };
    }

    /// Whether a caller holds the instance.
    pub fn is_lent(&self) -> bool {
        matches!(self, Self::Lent { .. })
    }

    /// The idle instance, for a caller on `runtime`.
    pub fn borrow(&mut self, runtime: Id) -> Option<I> {
        match std::mem::take(self) {
            Self::Idle {
                instance,
                runtime: lender,
            } if lender == runtime => {
                *self = Self::Lent { runtime };
                Some(instance)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// Takes back a lent instance: idle again, or the process's end.
    pub fn give_back(&mut self, instance: Option<I>, end: Option<ExitReason>) {
        *self = match (std::mem::take(self), instance, end) {
            (Self::Lent { runtime }, Some(instance), None) => Self::Idle { instance, runtime },
            (_, instance, end) => Self::Ended {
                instance,
                reason: Box::new(end.unwrap_or_else(abandoned)),
            },
        };
    }

    /// What the actor takes back: the instance if it is idle and there is work
    /// (`has_work`), the process's end whenever a call brought it; `None` while a caller
    /// holds the instance, or there is nothing to do.
    pub fn take_back(&mut self, has_work: bool) -> Option<Returned<I>> {
        match std::mem::take(self) {
            Self::Idle { instance, .. } if has_work => Some(Returned::Instance(instance)),
            Self::Ended { instance, reason } => Some(Returned::Ended { instance, reason }),
            // Never lent, so nothing to wait for: a caller never takes a slot it did not
            // find idle.
            Self::WithActor => Some(Returned::Ended {
                instance: None,
                reason: Box::new(abandoned()),
            }),
            waiting => {
                *self = waiting;
                None
            }
        }
    }
}

/// The end of a process whose instance was lost with a call dropped unfinished: the task
/// finishing it was dropped, as a runtime that shuts down drops its tasks.
fn abandoned() -> ExitReason {
    ExitReason::HostFault {
        cause: "a call served outside the process's task was dropped unfinished".into(),
    }
}

/// Lends the idle actor's instance to callers until it has work, then takes it back.
/// `None` when a lent call ended the process (every caller told why).
pub(crate) async fn lend(actor: ProcessActor) -> Option<ProcessActor> {
    // Taking the actor apart and putting it back together keeps only what `awake` sets:
    // `may_lend` is what makes that everything.
    debug_assert!(
        actor.may_lend(),
        "lending an actor that is in the middle of something"
    );
    let (mut parts, instance) = actor.into_parts();
    // The actor is a task of this runtime.
    let runtime = Handle::current().id();
    parts.mailbox.lend(instance, runtime);
    match parts.mailbox.take_back().await {
        Returned::Instance(instance) => Some(parts.reunite(instance)),
        Returned::Ended {
            instance: Some(instance),
            reason,
        } => {
            parts.reunite(instance).exit(*reason);
            None
        }
        Returned::Ended {
            instance: None,
            reason,
        } => {
            parts.exit_without_instance(*reason);
            None
        }
    }
}

/// An instance lent to one call, the duty to give it back, and the lender's runtime (the
/// caller's too), where a call that yields goes on.
pub(crate) struct Loan {
    instance: Box<GuestInstance>,
    lease: Lease,
    runtime: Handle,
}

/// The duty to give a lent instance back: done by [`Lease::give_back`]; dropped without
/// it (a panic in the host mid-call, or the call's task dropped by a runtime shutting
/// down), it tells the actor that the instance is lost and the process must end.
struct Lease {
    mailbox: Arc<MailboxSender>,
    given_back: bool,
}

impl Lease {
    fn give_back(mut self, instance: Box<GuestInstance>, end: Option<ExitReason>) {
        self.given_back = true;
        if let Some(unwanted) = self.mailbox.give_back(Some(instance), end) {
            // The process is gone (its runtime shut down): freed off this task, as an
            // exited process's instance is.
            swap::retire(unwanted);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.given_back {
            let reason = if std::thread::panicking() {
                task_panicked()
            } else {
                abandoned()
            };
            // Without an instance, nothing can come back to drop.
            let _ = self.mailbox.give_back(None, Some(reason));
        }
    }
}

/// The instance of `mailbox`'s process, if its actor lent it and nothing is queued: the
/// caller then serves its call with [`call_in_place`].
pub(crate) fn borrow(mailbox: &Arc<MailboxSender>) -> Option<Loan> {
    let runtime = Handle::try_current().ok()?;
    let instance = mailbox.borrow(runtime.id())?;
    Some(Loan {
        instance,
        lease: Lease {
            mailbox: mailbox.clone(),
            given_back: false,
        },
        runtime,
    })
}

/// What became of a call served in place.
pub(crate) enum InPlace {
    /// It ended in its first poll.
    Answered(Result<Vec<u8>, CallError>),
    /// It goes on in a task of its own, which answers here; the sender dropped unsent
    /// means that the process ended, as for a call the actor serves.
    Continues(oneshot::Receiver<Result<Vec<u8>, CallError>>),
}

type Call = Pin<Box<dyn Future<Output = Result<Vec<u8>, CallError>> + Send>>;

/// Serves `request` with a borrowed instance: polled once here, then, if the guest is not
/// done, in a task of its own (see the module's docs).
pub(crate) async fn call_in_place(
    loan: Loan,
    status: Arc<ProcessStatus>,
    request: Vec<u8>,
    caller: Pid,
) -> InPlace {
    let Loan {
        instance,
        lease,
        runtime,
    } = loan;
    let mut call: Call = Box::pin(serve(instance, lease, status, request, caller));
    let first = poll_fn(|cx| {
        // A panic unwinds through the call, whose lease then tells the actor; the caller
        // learns of it as from a panicking actor: its reply dropped.
        Poll::Ready(catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))))
    })
    .await;
    match first {
        Ok(Poll::Ready(answered)) => InPlace::Answered(answered),
        Ok(Poll::Pending) => {
            let (reply, answer) = oneshot::channel();
            let rest = async move {
                // The caller may have stopped waiting: its loss, not ours.
                let _ = reply.send(call.await);
            };
            runtime.spawn(rest.in_current_span());
            InPlace::Continues(answer)
        }
        Err(_panic) => {
            drop(call);
            InPlace::Continues(oneshot::channel().1)
        }
    }
}

async fn serve(
    mut instance: Box<GuestInstance>,
    lease: Lease,
    status: Arc<ProcessStatus>,
    request: Vec<u8>,
    caller: Pid,
) -> Result<Vec<u8>, CallError> {
    status.handled.fetch_add(1, Ordering::Relaxed);
    let limit = status.policy.message_time_limit;
    let outcome = instance.handle_call(&request, caller, limit).await;
    match outcome {
        Ok(answer) => {
            let answer =
                answer.map_err(|reason| CallError::refused(instance.module(), status.pid, reason));
            lease.give_back(instance, None);
            answer
        }
        Err(trap) => {
            // Gone from the registry before the caller hears of it, as in the actor.
            let reason = record_exit(&status, instance.registry(), trap.into());
            lease.give_back(instance, Some(reason.clone()));
            Err(CallError::Exited {
                pid: status.pid,
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of a runtime of its own.
    fn runtime() -> Id {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.handle().id()
    }

    #[test]
    fn only_an_idle_instance_is_lent_and_only_to_a_caller_on_its_runtime() {
        let (ours, other) = (runtime(), runtime());
        let mut slot = Slot::<&str>::default();
        assert_eq!(slot.borrow(ours), None, "the actor has it");
        slot.lend("kv", ours);
        assert_eq!(slot.borrow(other), None, "a caller on another runtime");
        assert!(!slot.is_lent());
        assert_eq!(slot.borrow(ours), Some("kv"));
        assert!(slot.is_lent());
        assert_eq!(
            slot.borrow(ours),
            None,
            "a second caller, while the first serves"
        );
    }

    #[test]
    fn the_actor_takes_its_instance_back_only_when_it_is_home_and_there_is_work() {
        let ours = runtime();
        let mut slot = Slot::<&str>::default();
        slot.lend("kv", ours);
        assert_eq!(slot.borrow(ours), Some("kv"));
        assert_eq!(slot.take_back(true), None, "a caller holds it");
        slot.give_back(Some("kv"), None);
        assert!(!slot.is_lent());
        assert_eq!(slot.take_back(false), None, "nothing to do: lent on");
        assert_eq!(slot.borrow(ours), Some("kv"), "and lent again");
        slot.give_back(Some("kv"), None);
        assert_eq!(slot.take_back(true), Some(Returned::Instance("kv")));
        assert_eq!(slot.borrow(ours), None, "the actor has it again");
    }

    #[test]
    fn a_call_that_ended_the_process_hands_the_actor_its_end_at_once() {
        let ours = runtime();
        let trapped = ExitReason::Trapped {
            callback: "handle-call".into(),
            cause: "wasm trap: unreachable".into(),
        };
        let mut slot = Slot::<&str>::default();
        slot.lend("kv", ours);
        assert_eq!(slot.borrow(ours), Some("kv"));
        slot.give_back(Some("kv"), Some(trapped.clone()));
        assert_eq!(slot.borrow(ours), None, "an ended process lends nothing");
        assert_eq!(
            slot.take_back(false),
            Some(Returned::Ended {
                instance: Some("kv"),
                reason: Box::new(trapped),
            })
        );
    }

    #[test]
    fn an_instance_lost_mid_call_or_never_lent_ends_the_process_as_a_host_fault() {
        let ours = runtime();
        let mut slot = Slot::<&str>::default();
        slot.lend("kv", ours);
        assert_eq!(slot.borrow(ours), Some("kv"));
        slot.give_back(None, None);
        let lost = Some(Returned::Ended {
            instance: None,
            reason: Box::new(abandoned()),
        });
        assert_eq!(slot.take_back(false), lost);
        assert_eq!(Slot::<&str>::default().take_back(true), lost);
    }
}
