//! A process's mailbox: the control signals and the user messages waiting for its actor, in
//! two queues behind one lock.
//!
//! Signals are served first, between two messages, and also while messages are held (a
//! suspension, a release). They are not bounded: each comes from a requester that waits
//! for its answer, as Erlang's system messages do. Messages are bounded by the policy's
//! `mailbox_capacity`, and a full mailbox is the sender's error, never a wait.
//!
//! Why not two tokio channels, as before: a process keeps its mailbox for its whole life,
//! and a tokio channel is a 512-byte shared part plus a block of 32 slots allocated up
//! front, 2.6 KB for the two, a seventh of what an idle process held. These queues are one
//! allocation of under 200 bytes until the first message arrives, and one lock serves both,
//! which the actor checks together at every turn anyway.
//!
//! The receiver takes part in tokio's cooperative budget, as tokio's own channels do: a
//! process whose mailbox never empties still yields to the other tasks of its thread.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use tokio::sync::Notify;

use crate::process::control::Control;
use crate::process::envelope::Envelope;

/// A new mailbox that holds at most `capacity` user messages (at least one).
pub(crate) fn mailbox(capacity: usize) -> (MailboxSender, MailboxReceiver) {
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

struct Shared {
    queues: Mutex<Queues>,
    /// Wakes whoever waits for the mailbox to close ([`MailboxSender::closed`]).
    on_close: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while holding the lock, and the queues are consistent between
        // any two statements that do: a poisoned lock still holds good queues.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Queues {
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
pub(crate) struct MailboxSender {
    shared: Arc<Shared>,
}

impl MailboxSender {
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
        let waiting = queues.wants_messages.then(|| queues.receiver.take());
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
        let waiting = queues.receiver.take();
        drop(queues);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
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

impl Drop for MailboxSender {
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
pub(crate) struct MailboxReceiver {
    shared: Arc<Shared>,
}

impl MailboxReceiver {
    /// The next control signal or, if `messages` (no one holds them), the next user
    /// message; signals first.
    pub async fn recv(&mut self, messages: bool) -> Received {
        poll_fn(|cx| self.poll_recv(cx, messages)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, messages: bool) -> Poll<Received> {
        let budget = ready!(tokio::task::coop::poll_proceed(cx));
        let mut queues = self.shared.lock();
        let received = match queues.signals.pop_front() {
            Some(signal) => Some(Received::Signal(signal)),
            None if messages => queues.messages.pop_front().map(Received::Message),
            None => None,
        };
        if let Some(received) = received {
            budget.made_progress();
            return Poll::Ready(received);
        }
        if queues.sender_gone {
            return Poll::Ready(Received::Disconnected);
        }
        match &mut queues.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        queues.wants_messages = messages;
        Poll::Pending
    }

    /// Closes the mailbox of a process that has ended, and hands back what was still
    /// queued: the signals, then the messages, each in the order they arrived.
    pub fn close(&mut self) -> (VecDeque<Box<Control>>, VecDeque<Envelope>) {
        let mut queues = self.shared.lock();
        queues.closed = true;
        let signals = std::mem::take(&mut queues.signals);
        let messages = std::mem::take(&mut queues.messages);
        let waker = queues.receiver.take();
        drop(queues);
        drop(waker);
        self.shared.on_close.notify_waiters();
        (signals, messages)
    }
}

impl Drop for MailboxReceiver {
    fn drop(&mut self) {
        // Whatever was queued is dropped here, outside the lock: a call's requester then
        // sees its reply dropped, and waits for the close to read the exit reason.
        let queued = self.close();
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

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
        let (first, second) = waiting.await.expect("receiver task");
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
        assert_eq!(waiting.await.expect("receiver task"), "late");
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
        sender.closed().await;
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
        waiter.await.expect("waiter task");
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
}
