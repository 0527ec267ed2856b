//! A process's mailbox: the control signals and the user messages waiting for its actor, in
//! two queues behind one lock.
//!
//! Signals are served first, between two messages, and also while messages are held (a
//! suspension, a release). They are not bounded: they come from the node's own requests
//! (swaps, state reads, stops, releases), not from guests, and nearly every one has a
//! requester waiting for its answer, as Erlang's system messages do. Messages are bounded
//! by the policy's `mailbox_capacity`, and a full mailbox is the sender's error, never a
//! wait.
//!
//! A queue keeps the buffer it grew to, so a burst of messages would leave a process
//! holding room for all of them for the rest of its life: once the messages are served,
//! a buffer larger than [`KEPT_SLOTS`] is let go.
//!
//! Why not two tokio channels, as before: a process keeps its mailbox for its whole life,
//! and a tokio channel is a 512-byte shared part plus a block of 32 slots allocated up
//! front, 2.6 KB for the two, a seventh of what an idle process held. These queues are one
//! allocation of under 200 bytes until the first message arrives, and one lock serves both,
//! which the actor checks together at every turn anyway.
//!
//! The receiver takes part in tokio's cooperative budget, as tokio's own channels do: a
//! process whose mailbox never empties still yields to the other tasks of its thread.
//!
//! The same lock guards the slot where an idle actor leaves its instance for callers
//! (`lending.rs`): whether a caller may serve its own call is decided together with what is
//! queued, so that a call never passes a message or a signal sent before it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::runtime::Id;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::process::ExitReason;
use crate::process::control::Control;
use crate::process::envelope::Envelope;
use crate::process::instance::GuestInstance;
use crate::process::lending::{Idleness, Returned, Slot};

/// The most message slots an empty queue keeps for the next messages.
const KEPT_SLOTS: usize = 32;

/// A new mailbox that holds at most `capacity` user messages (at least one).
pub(crate) fn mailbox<I>(capacity: usize) -> (MailboxSender<I>, MailboxReceiver<I>) {
    let shared = Arc::new(Shared {
        queues: Mutex::new(Queues::default()),
        on_close: Notify::new(),
        capacity: capacity.max(1),
    });
    (
        MailboxSender {
            shared: shared.clone(),
        },
        MailboxReceiver { shared },
    )
}

struct Shared<I> {
    queues: Mutex<Queues<I>>,
    /// Wakes whoever waits for the mailbox to close ([`MailboxSender::closed`]).
    on_close: Notify,
    capacity: usize,
}

impl<I> Shared<I> {
    fn lock(&self) -> MutexGuard<'_, Queues<I>> {
        // The queues are consistent between any two statements made under the lock, so
        // one poisoned by a panic there (an allocation failing) still holds good queues.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Queues<I> {
    signals: VecDeque<Box<Control>>,
    messages: VecDeque<Envelope>,
    /// The actor's waker while it waits.
    receiver: Option<Waker>,
    /// Whether a message would be taken by the waiting actor (not while messages are
    /// held): only then does a new one wake it.
    wants_messages: bool,
    /// The sending side is gone: nobody can reach the process any more.
    sender_gone: bool,
    /// The process has ended: nothing more is accepted.
    closed: bool,
    /// Where the instance is while the actor waits: lent or not (`lending.rs`).
    slot: Slot<I>,
}

impl<I> Default for Queues<I> {
    fn default() -> Self {
        Self {
            signals: VecDeque::new(),
            messages: VecDeque::new(),
            receiver: None,
            wants_messages: false,
            sender_gone: false,
            closed: false,
            slot: Slot::default(),
        }
    }
}

impl<I> Queues<I> {
    /// Whether a lending actor has anything to take back its instance for: a signal, a
    /// message, or the news that nobody can reach it any more. (An actor lends only while
    /// it serves messages.) A caller finding work borrows nothing: it would pass it.
    fn has_work(&self) -> bool {
        !self.signals.is_empty() || !self.messages.is_empty() || self.sender_gone
    }

    /// The next signal or, if `messages`, the next message.
    fn next(&mut self, messages: bool) -> Option<Received> {
        match self.signals.pop_front() {
            Some(signal) => Some(Received::Signal(signal)),
            None if messages => self.messages.pop_front().map(Received::Message),
            None => None,
        }
    }

    /// Keeps the actor's waker, for whoever gives it work next.
    fn wait(&mut self, cx: &Context<'_>, messages: bool) -> Option<Waker> {
        self.wants_messages = messages;
        match &self.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => self.receiver.replace(cx.waker().clone()),
        }
    }
}

/// `queue`'s buffer if it is empty and larger than [`KEPT_SLOTS`], for the caller to free
/// once the lock is released.
fn spent_room<T>(queue: &mut VecDeque<T>) -> Option<VecDeque<T>> {
    (queue.is_empty() && queue.capacity() > KEPT_SLOTS).then(|| std::mem::take(queue))
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The mailbox holds its capacity already.
    Full,
    /// The process has ended.
    Closed,
}

/// What the actor takes out of its mailbox.
pub(crate) enum Received {
    Signal(Box<Control>),
    Message(Envelope),
    /// Nothing is queued and the sending side is gone: nobody can reach the process.
    Disconnected,
}

/// The side every handle of the process shares (behind one `Arc`): dropping it tells the
/// actor that nobody can reach it any more.
pub(crate) struct MailboxSender<I = Box<GuestInstance>> {
    shared: Arc<Shared<I>>,
}

impl<I> MailboxSender<I> {
    /// Queues a user message, unless the mailbox is full or closed.
    pub fn post(&self, envelope: Envelope) -> Result<(), Refused> {
        let mut queues = self.shared.lock();
        let refused = if queues.closed {
            Some(Refused::Closed)
        } else if queues.messages.len() >= self.shared.capacity {
            Some(Refused::Full)
        } else {
            None
        };
        if let Some(why) = refused {
            drop(queues);
            // Dropped outside the lock: a call's reply channel is in it.
            drop(envelope);
            return Err(why);
        }
        queues.messages.push_back(envelope);
        // While a caller holds the instance, the actor could do nothing but wait: the
        // caller wakes it when it gives the instance back.
        let wake = queues.wants_messages && !queues.slot.is_lent();
        let waiting = wake.then(|| queues.receiver.take());
        drop(queues);
        if let Some(Some(waker)) = waiting {
            waker.wake();
        }
        Ok(())
    }

    /// Queues a control signal; gives it back if the process has ended.
    pub fn signal(&self, signal: Box<Control>) -> Result<(), Box<Control>> {
        let mut queues = self.shared.lock();
        if queues.closed {
            return Err(signal);
        }
        queues.signals.push_back(signal);
        let waiting = (!queues.slot.is_lent())
            .then(|| queues.receiver.take())
            .flatten();
        drop(queues);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }

    /// The instance of an idle actor, if it lent it on `runtime` and nothing is queued:
    /// the caller serves its call itself, then gives it back (`lending.rs`).
    pub fn borrow(&self, runtime: Id) -> Option<I> {
        let mut queues = self.shared.lock();
        if queues.has_work() || queues.closed {
            return None;
        }
        queues.slot.borrow(runtime)
    }

    /// Gives back what [`borrow`](Self::borrow) lent, and wakes the actor if anything
    /// arrived meanwhile, or if the call ended the process (`end`, or no `instance` left).
    /// Hands the instance back to the caller, to drop, if the process has ended meanwhile
    /// (its runtime shut down), since nobody will take it back.
    #[must_use]
    pub fn give_back(&self, instance: Option<I>, end: Option<ExitReason>) -> Option<I> {
        let mut queues = self.shared.lock();
        if queues.closed {
            return instance;
        }
        let wake = end.is_some() || instance.is_none() || queues.has_work();
        queues.slot.give_back(instance, end);
        let waiting = wake.then(|| queues.receiver.take());
        drop(queues);
        if let Some(Some(waker)) = waiting {
            waker.wake();
        }
        None
    }

    /// Whether a message waits, or a call is being served in place: either way, what a
    /// signal sent now would find in hand.
    pub fn busy(&self) -> bool {
        let queues = self.shared.lock();
        !queues.messages.is_empty() || queues.slot.is_lent()
    }

    /// How many user messages the mailbox holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How many user messages wait.
    pub fn len(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Resolves once the process has ended and its mailbox is closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.on_close.notified();
            tokio::pin!(notified);
            // Registered before the check, so that a close in between still wakes it.
            notified.as_mut().enable();
            if self.shared.lock().closed {
                return;
            }
            notified.await;
        }
    }
}

impl<I> Drop for MailboxSender<I> {
    fn drop(&mut self) {
        let mut queues = self.shared.lock();
        queues.sender_gone = true;
        let waiting = queues.receiver.take();
        drop(queues);
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

/// The actor's side. Dropping it closes the mailbox.
pub(crate) struct MailboxReceiver<I = Box<GuestInstance>> {
    shared: Arc<Shared<I>>,
}

impl<I> MailboxReceiver<I> {
    /// The next control signal or, if `messages` (no one holds them), the next user
    /// message; signals first.
    pub async fn recv(&mut self, messages: bool) -> Received {
        poll_fn(|cx| self.poll_recv(cx, messages)).await
    }

    /// The next control signal or user message if one is queued, or `None` at once if
    /// nothing is: an actor that may lend its instance lends it rather than wait.
    pub async fn try_recv(&mut self) -> Option<Received> {
        poll_fn(|cx| self.poll_take(cx, true).map(Result::ok)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, messages: bool) -> Poll<Received> {
        match ready!(self.poll_take(cx, messages)) {
            Ok(received) => Poll::Ready(received),
            Err(mut queues) => {
                let replaced = queues.wait(cx, messages);
                drop(queues);
                drop(replaced);
                Poll::Pending
            }
        }
    }

    /// Takes the next signal or, if `messages`, the next message, or says that nobody can
    /// reach the process any more; `Err` with the queues, still locked, if there is
    /// nothing, for the caller to wait (or not) under the same lock.
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        messages: bool,
    ) -> Poll<Result<Received, MutexGuard<'_, Queues<I>>>> {
        let budget = ready!(tokio::task::coop::poll_proceed(cx));
        let mut queues = self.shared.lock();
        let received = match queues.next(messages) {
            Some(received) => received,
            None if queues.sender_gone => return Poll::Ready(Ok(Received::Disconnected)),
            None => return Poll::Ready(Err(queues)),
        };
        let spent = (
            spent_room(&mut queues.signals),
            spent_room(&mut queues.messages),
        );
        drop(queues);
        drop(spent);
        budget.made_progress();
        Poll::Ready(Ok(received))
    }

    /// Leaves the instance of an idle actor, serving on `runtime`, for callers to borrow
    /// until [`take_back`](Self::take_back). `idle_since` (now) when the actor times
    /// idleness: see [`reclaim_if_idle`](Self::reclaim_if_idle).
    pub fn lend(&mut self, instance: I, runtime: Id, idle_since: Option<Instant>) {
        self.shared.lock().slot.lend(instance, runtime, idle_since);
    }

    /// The lent instance, back with the actor, if no call has ended for `idle_after` (nor
    /// the lending begun) by `now`, and nothing has arrived meanwhile: a process with work
    /// is not idle, and [`take_back`](Self::take_back) is the way back for it.
    pub fn reclaim_if_idle(&mut self, idle_after: Duration, now: Instant) -> Idleness<I> {
        let mut queues = self.shared.lock();
        if queues.has_work() {
            return Idleness::Busy;
        }
        queues.slot.reclaim_if_idle(idle_after, now)
    }

    /// The lent instance, back once the actor has something to do (a signal, a message, a
    /// closed sending side) and no caller holds it, or at once if a call ended the process.
    pub async fn take_back(&mut self) -> Returned<I> {
        poll_fn(|cx| {
            let mut queues = self.shared.lock();
            let has_work = queues.has_work();
            if let Some(returned) = queues.slot.take_back(has_work) {
                return Poll::Ready(returned);
            }
            let replaced = queues.wait(cx, true);
            drop(queues);
            drop(replaced);
            Poll::Pending
        })
        .await
    }

    /// Closes the mailbox of a process that has ended, and hands back what was still
    /// queued: the signals, then the messages, each in the order they arrived.
    pub fn close(&mut self) -> (VecDeque<Box<Control>>, VecDeque<Envelope>) {
        let mut queues = self.shared.lock();
        queues.closed = true;
        let signals = std::mem::take(&mut queues.signals);
        let messages = std::mem::take(&mut queues.messages);
        let waker = queues.receiver.take();
        let idle = std::mem::take(&mut queues.slot);
        drop(queues);
        drop(waker);
        drop(idle);
        self.shared.on_close.notify_waiters();
        (signals, messages)
    }
}

impl<I> Drop for MailboxReceiver<I> {
    fn drop(&mut self) {
        // Whatever was queued is dropped here, outside the lock: a call's requester then
        // sees its reply dropped, and waits for the close to read the exit reason.
        let queued = self.close();
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// Long enough for any wake-up on a loaded machine; a lost one fails the test instead
    /// of hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    async fn within<T>(what: impl Future<Output = T>) -> T {
        tokio::time::timeout(PATIENCE, what)
            .await
            .expect("woken within the patience")
    }

    /// A mailbox whose lent "instance" is a name.
    fn mailbox(capacity: usize) -> (MailboxSender<&'static str>, MailboxReceiver<&'static str>) {
        super::mailbox(capacity)
    }

    /// The id of a runtime of its own.
    fn runtime() -> Id {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.handle().id()
    }

    /// A waker that counts its wakes.
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn cast(text: &str) -> Envelope {
        Envelope::Cast(text.as_bytes().to_vec())
    }

    fn abort() -> Box<Control> {
        Box::new(Control::Abort {
            reply: oneshot::channel().0,
        })
    }

    fn text(received: Received) -> String {
        match received {
            Received::Message(Envelope::Cast(bytes)) => String::from_utf8_lossy(&bytes).into(),
            Received::Message(_) => "another message".into(),
            Received::Signal(_) => "signal".into(),
            Received::Disconnected => "disconnected".into(),
        }
    }

    #[tokio::test]
    async fn signals_come_before_messages_and_messages_keep_their_order() {
        let (sender, mut receiver) = mailbox(8);
        for n in ["1", "2", "3"] {
            assert_eq!(sender.post(cast(n)), Ok(()));
        }
        assert!(sender.signal(abort()).is_ok());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(text(receiver.recv(true).await));
        }
        assert_eq!(seen, ["signal", "1", "2", "3"]);
        assert_eq!(sender.len(), 0);
    }

    #[tokio::test]
    async fn held_messages_wait_while_signals_are_served() {
        let (sender, mut receiver) = mailbox(8);
        assert_eq!(sender.post(cast("held")), Ok(()));
        let waiting = tokio::spawn(async move {
            let first = text(receiver.recv(false).await);
            let second = text(receiver.recv(true).await);
            (first, second)
        });
        tokio::task::yield_now().await;
        assert!(sender.signal(abort()).is_ok());
        let (first, second) = within(waiting).await.expect("receiver task");
        assert_eq!((first.as_str(), second.as_str()), ("signal", "held"));
    }

    #[tokio::test]
    async fn a_full_mailbox_refuses_messages_but_not_signals() {
        let (sender, mut receiver) = mailbox(2);
        assert_eq!(sender.post(cast("1")), Ok(()));
        assert_eq!(sender.post(cast("2")), Ok(()));
        assert_eq!(sender.post(cast("3")), Err(Refused::Full));
        assert!(sender.signal(abort()).is_ok());
        assert_eq!((sender.len(), sender.capacity()), (2, 2));
        assert_eq!(text(receiver.recv(true).await), "signal");
        assert_eq!(text(receiver.recv(true).await), "1");
        assert_eq!(sender.post(cast("3")), Ok(()));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_message() {
        let (sender, mut receiver) = mailbox(2);
        let waiting = tokio::spawn(async move { text(receiver.recv(true).await) });
        tokio::task::yield_now().await;
        assert_eq!(sender.post(cast("late")), Ok(()));
        assert_eq!(within(waiting).await.expect("receiver task"), "late");
    }

    #[test]
    fn a_message_does_not_wake_an_actor_whose_messages_are_held_and_a_signal_does() {
        let (sender, mut receiver) = mailbox(4);
        let wakes = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(receiver.poll_recv(&mut cx, false).is_pending());
        assert_eq!(sender.post(cast("held")), Ok(()));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "woken by a held message");
        assert!(sender.signal(abort()).is_ok());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "not woken by a signal");
        // The signal is served first; with messages allowed again, the held one is next,
        // and a message posted to an actor that waits for messages wakes it.
        assert!(matches!(
            receiver.poll_recv(&mut cx, false),
            Poll::Ready(Received::Signal(_))
        ));
        assert!(matches!(
            receiver.poll_recv(&mut cx, true),
            Poll::Ready(Received::Message(_))
        ));
        assert!(receiver.poll_recv(&mut cx, true).is_pending());
        assert_eq!(sender.post(cast("next")), Ok(()));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "not woken by an allowed message"
        );
    }

    #[tokio::test]
    async fn a_burst_of_messages_does_not_leave_its_room_behind() {
        let (sender, mut receiver) = mailbox(4_096);
        for _ in 0..4_096 {
            assert_eq!(sender.post(cast("x")), Ok(()));
        }
        assert!(receiver.shared.lock().messages.capacity() >= 4_096);
        for _ in 0..4_096 {
            assert_eq!(text(receiver.recv(true).await), "x");
        }
        assert!(receiver.shared.lock().messages.capacity() <= KEPT_SLOTS);
        // A mailbox that never holds more than a few keeps its buffer.
        for _ in 0..3 {
            assert_eq!(sender.post(cast("y")), Ok(()));
            assert_eq!(text(receiver.recv(true).await), "y");
        }
        assert!(receiver.shared.lock().messages.capacity() > 0);
    }

    #[tokio::test]
    async fn closing_hands_back_what_was_queued_and_refuses_the_rest() {
        let (sender, mut receiver) = mailbox(4);
        assert_eq!(sender.post(cast("1")), Ok(()));
        assert!(sender.signal(abort()).is_ok());
        let (signals, messages) = receiver.close();
        assert_eq!((signals.len(), messages.len()), (1, 1));
        assert_eq!(sender.post(cast("2")), Err(Refused::Closed));
        assert!(sender.signal(abort()).is_err());
        within(sender.closed()).await;
    }

    #[tokio::test]
    async fn dropping_the_receiver_closes_the_mailbox_for_whoever_waits() {
        let (sender, receiver) = mailbox(4);
        let sender = Arc::new(sender);
        let waiter = {
            let sender = sender.clone();
            tokio::spawn(async move { sender.closed().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(receiver);
        within(waiter).await.expect("waiter task");
        assert_eq!(sender.post(cast("late")), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_receiver_whose_sender_is_gone_is_told_once_the_queue_is_empty() {
        let (sender, mut receiver) = mailbox(4);
        assert_eq!(sender.post(cast("last")), Ok(()));
        drop(sender);
        assert_eq!(text(receiver.recv(true).await), "last");
        assert_eq!(text(receiver.recv(true).await), "disconnected");
    }

    #[tokio::test]
    async fn a_mailbox_that_never_empties_still_yields_to_the_scheduler() {
        let (sender, mut receiver) = mailbox(1_000);
        for _ in 0..1_000 {
            assert_eq!(sender.post(cast("x")), Ok(()));
        }
        // tokio's budget is 128 operations per poll: some receive must return pending.
        let mut pending = 0;
        let mut received = 0;
        while received < 1_000 {
            let polled = poll_fn(|cx| Poll::Ready(receiver.poll_recv(cx, true))).await;
            match polled {
                Poll::Ready(_) => received += 1,
                Poll::Pending => {
                    pending += 1;
                    tokio::task::yield_now().await;
                }
            }
        }
        assert!(pending > 0, "1,000 receives never yielded");
    }

    #[test]
    fn a_caller_borrows_only_what_an_idle_actor_lent_and_only_with_nothing_queued() {
        let (sender, mut receiver) = mailbox(4);
        let ours = runtime();
        assert_eq!(sender.borrow(ours), None, "nothing lent");
        receiver.lend("kv", ours, None);
        assert_eq!(sender.post(cast("first")), Ok(()));
        assert_eq!(sender.borrow(ours), None, "a message sent before the call");
        let _ = receiver.shared.lock().messages.pop_front();
        assert!(sender.signal(abort()).is_ok());
        assert_eq!(sender.borrow(ours), None, "a signal sent before the call");
        let _ = receiver.shared.lock().signals.pop_front();
        assert_eq!(sender.borrow(ours), Some("kv"));
        assert!(sender.busy(), "a call in progress is work in hand");
    }

    /// An actor that lent "kv" and waits to take it back, polled by hand, counting the
    /// wake-ups it gets.
    struct Lender {
        receiver: MailboxReceiver<&'static str>,
        wakes: Arc<Counting>,
        waker: Waker,
    }

    impl Lender {
        /// The lender, waiting, and its mailbox's sending side and runtime.
        fn waiting() -> (Self, MailboxSender<&'static str>, Id) {
            let (sender, mut receiver) = mailbox(4);
            let runtime = runtime();
            receiver.lend("kv", runtime, None);
            let wakes = Arc::new(Counting(AtomicUsize::new(0)));
            let waker = Waker::from(wakes.clone());
            let mut lender = Self {
                receiver,
                wakes,
                waker,
            };
            assert!(lender.take_back().is_pending(), "nothing to do yet");
            (lender, sender, runtime)
        }

        /// One poll of `take_back` (a fresh one each time: it keeps nothing between polls).
        fn take_back(&mut self) -> Poll<Returned<&'static str>> {
            let mut cx = Context::from_waker(&self.waker);
            std::pin::pin!(self.receiver.take_back()).poll(&mut cx)
        }

        fn wakes(&self) -> usize {
            self.wakes.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn what_arrives_during_a_call_in_place_wakes_the_actor_once_the_instance_is_back() {
        let (mut lender, sender, ours) = Lender::waiting();
        assert_eq!(sender.borrow(ours), Some("kv"));
        assert_eq!(sender.post(cast("during")), Ok(()));
        assert!(sender.signal(abort()).is_ok());
        assert_eq!(lender.wakes(), 0, "woken while it could only wait");
        assert!(lender.take_back().is_pending(), "still lent");
        assert_eq!(sender.give_back(Some("kv"), None), None);
        assert_eq!(lender.wakes(), 1, "not woken by the return");
        assert_eq!(lender.take_back(), Poll::Ready(Returned::Instance("kv")));
    }

    #[test]
    fn an_instance_back_with_nothing_arrived_is_lent_again_without_waking_the_actor() {
        let (mut lender, sender, ours) = Lender::waiting();
        for _ in 0..3 {
            assert_eq!(sender.borrow(ours), Some("kv"));
            assert_eq!(sender.give_back(Some("kv"), None), None);
        }
        assert_eq!(lender.wakes(), 0);
        assert!(lender.take_back().is_pending());
        assert_eq!(sender.post(cast("next")), Ok(()));
        assert_eq!(
            lender.wakes(),
            1,
            "not woken by a message to an idle lender"
        );
        assert_eq!(lender.take_back(), Poll::Ready(Returned::Instance("kv")));
    }

    #[test]
    fn a_call_that_ends_the_process_wakes_the_actor_with_the_reason() {
        let (mut lender, sender, ours) = Lender::waiting();
        let trapped = ExitReason::Trapped {
            callback: "handle-call".into(),
            cause: "wasm trap: unreachable".into(),
        };
        assert_eq!(sender.borrow(ours), Some("kv"));
        assert_eq!(sender.give_back(Some("kv"), Some(trapped.clone())), None);
        assert_eq!(lender.wakes(), 1);
        assert_eq!(
            lender.take_back(),
            Poll::Ready(Returned::Ended {
                instance: Some("kv"),
                reason: Box::new(trapped),
            })
        );
    }

    #[test]
    fn an_instance_back_after_the_process_ended_is_handed_to_the_caller_to_drop() {
        let (sender, mut receiver) = mailbox(4);
        let ours = runtime();
        receiver.lend("kv", ours, None);
        assert_eq!(sender.borrow(ours), Some("kv"));
        drop(receiver);
        assert_eq!(sender.give_back(Some("kv"), None), Some("kv"));
    }
}
