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
//!   holds no staged release, and has no swapped-out instance to drop.
//! - **The same idle time.** Under a hibernation policy, every call given back restarts
//!   the process's idle time, and the lending actor takes its instance back to hibernate
//!   once nothing has been served for `hibernate_after` (a call in progress then puts the
//!   next look off by up to that much again). A process that does not hibernate reads no
//!   clock for it.
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
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::CallError;
use crate::process::actor::{Parts, ProcessActor, record_exit, task_panicked};
use crate::process::deadline;
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
    /// Waiting for a caller, while the actor, on `runtime`, waits for work. `idle_since`:
    /// when the last call ended (or the actor lent it), for an actor that times idleness
    /// (a hibernation policy), else `None`. On tokio's clock, which a test may pause.
    Idle {
        instance: I,
        runtime: Id,
        idle_since: Option<Instant>,
    },
    /// Serving a caller's call.
    Lent { runtime: Id, times_idleness: bool },
    /// Back from a call that ended the process, or gone with it (`instance` is `None` when
    /// the call was abandoned mid-way): the actor exits with `reason`.
    Ended {
        instance: Option<I>,
        reason: Box<ExitReason>,
    },
}

/// What an actor that times idleness finds when its idle time may be up.
#[derive(Debug, PartialEq)]
pub(crate) enum Idleness<I = Box<GuestInstance>> {
    /// Idle for the whole time: the instance, back with the actor.
    Over(I),
    /// A call ended since: idle until this moment at the earliest.
    Until(Instant),
    /// Not idle: a caller holds the instance, the process is ending, the actor has it, or
    /// it does not time idleness.
    Busy,
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
    /// Leaves the instance for callers; `idle_since` is `Some(now)` when the actor times
    /// idleness, so that every call given back restarts that time.
    pub fn lend(&mut self, instance: I, runtime: Id, idle_since: Option<Instant>) {
        *self = Self::Idle {
            instance,
            runtime,
            idle_since,
        };
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
                idle_since,
            } if lender == runtime => {
                *self = Self::Lent {
                    runtime,
                    times_idleness: idle_since.is_some(),
                };
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
            (
                Self::Lent {
                    runtime,
                    times_idleness,
                },
                Some(instance),
                None,
            ) => Self::Idle {
                instance,
                runtime,
                idle_since: times_idleness.then(Instant::now),
            },
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

    /// The instance, back with the actor, if no call has been given back for `idle_after`
    /// by `now`; else when that may be.
    pub fn reclaim_if_idle(&mut self, idle_after: Duration, now: Instant) -> Idleness<I> {
        match std::mem::take(self) {
            Self::Idle {
                instance,
                idle_since: Some(since),
                ..
            } if now.saturating_duration_since(since) >= idle_after => Idleness::Over(instance),
            Self::Idle {
                instance,
                runtime,
                idle_since: Some(since),
            } => {
                *self = Self::Idle {
                    instance,
                    runtime,
                    idle_since: Some(since),
                };
                Idleness::Until(since + idle_after)
            }
            other => {
                *self = other;
                Idleness::Busy
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
    // Taking the actor apart and putting it back together keeps only what `awake` sets
    // and what `Parts` carries: `may_lend` is what makes that everything.
    debug_assert!(
        actor.may_lend(),
        "lending an actor that is in the middle of something"
    );
    let (mut parts, instance) = actor.into_parts();
    // The actor is a task of this runtime.
    parts.mailbox.lend(instance, Handle::current().id(), None);
    let returned = parts.mailbox.take_back().await;
    taken_back(parts, returned)
}

/// How often a lending actor whose guest refused to write its state looks again whether
/// it has served a message since, at most: it hibernates no sooner than that.
const REFUSAL_RECHECK: Duration = Duration::from_secs(1);

/// What became of an actor lent under a hibernation policy.
pub(crate) enum Lent {
    /// Work arrived: the actor, to serve it.
    Back(ProcessActor),
    /// Nothing was served for its policy's `hibernate_after`: the actor, to hibernate.
    Idle(ProcessActor),
    /// A lent call ended the process (every caller told why).
    Ended,
}

/// [`lend`], for a process that hibernates once no call has been served for `after`:
/// lends until it has work, or until it has been idle that long, calls in place included.
pub(crate) async fn lend_until_idle(actor: ProcessActor, after: Duration) -> Lent {
    debug_assert!(
        actor.may_lend(),
        "lending an actor that is in the middle of something"
    );
    let (mut parts, instance) = actor.into_parts();
    let lent_at = Instant::now();
    parts
        .mailbox
        .lend(instance, Handle::current().id(), Some(lent_at));
    // A guest that refused to write its state is asked again only once it has served
    // another message.
    let handled = || parts.status.handled.load(Ordering::Relaxed);
    let refused_at = parts.hibernation_refused.then(handled);
    let mut check_at = lent_at + after;
    loop {
        if let Ok(returned) = deadline::timeout_at(check_at, parts.mailbox.take_back()).await {
            parts.hibernation_refused = refused_at == Some(handled());
            return match taken_back(parts, returned) {
                Some(actor) => Lent::Back(actor),
                None => Lent::Ended,
            };
        }
        let now = Instant::now();
        if refused_at == Some(handled()) {
            check_at = now + after.max(REFUSAL_RECHECK);
            continue;
        }
        match parts.mailbox.reclaim_if_idle(after, now) {
            Idleness::Over(instance) => {
                parts.hibernation_refused = false;
                return Lent::Idle(parts.reunite(instance));
            }
            Idleness::Until(then) => check_at = then,
            // Given back, it restarts the idle time.
            Idleness::Busy => check_at = now + after,
        }
    }
}

/// The actor again, from what its lending ended with; `None` if that was its end.
fn taken_back(parts: Parts, returned: Returned) -> Option<ProcessActor> {
    match returned {
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
        slot.lend("kv", ours, None);
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
        slot.lend("kv", ours, None);
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
        slot.lend("kv", ours, None);
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
        slot.lend("kv", ours, None);
        assert_eq!(slot.borrow(ours), Some("kv"));
        slot.give_back(None, None);
        let lost = Some(Returned::Ended {
            instance: None,
            reason: Box::new(abandoned()),
        });
        assert_eq!(slot.take_back(false), lost);
        assert_eq!(Slot::<&str>::default().take_back(true), lost);
    }

    #[test]
    fn an_actor_timing_idleness_takes_its_instance_back_only_after_a_quiet_spell() {
        let ours = runtime();
        let after = Duration::from_millis(100);
        let lent_at = Instant::now();
        let mut slot = Slot::<&str>::default();
        slot.lend("kv", ours, Some(lent_at));
        assert_eq!(
            slot.reclaim_if_idle(after, lent_at + after / 2),
            Idleness::Until(lent_at + after),
            "idle for half the time"
        );
        assert_eq!(slot.borrow(ours), Some("kv"));
        assert_eq!(
            slot.reclaim_if_idle(after, lent_at + 2 * after),
            Idleness::Busy,
            "a caller holds it"
        );
        // So that the call given back ends strictly after the lending, whatever the
        // clock's grain.
        std::thread::sleep(Duration::from_millis(2));
        let call_ended = Instant::now();
        slot.give_back(Some("kv"), None);
        let Idleness::Until(then) = slot.reclaim_if_idle(after, lent_at + after) else {
            panic!("the call that ended restarts the idle time");
        };
        assert!(then >= call_ended + after, "{then:?}");
        assert_eq!(slot.reclaim_if_idle(after, then), Idleness::Over("kv"));
        assert_eq!(slot.borrow(ours), None, "the actor has it again");
    }

    #[test]
    fn an_actor_that_does_not_time_idleness_is_never_found_idle() {
        let ours = runtime();
        let mut slot = Slot::<&str>::default();
        slot.lend("kv", ours, None);
        let much_later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            slot.reclaim_if_idle(Duration::ZERO, much_later),
            Idleness::Busy
        );
        assert_eq!(slot.borrow(ours), Some("kv"), "still lent to callers");
    }
}
