//! Deadlines on timers that are reused rather than made for every message: a call's
//! timeout, the wall-clock backstop of a guest call that yields, and the idle time of a
//! lending process that may hibernate.
//!
//! A fresh tokio timer (what `tokio::time::timeout` and `sleep` make) is put in the
//! runtime's time driver when first polled and taken out when dropped: two trips through
//! the driver's lock, and, when the wheel was empty, a wake-up of the worker parked on the
//! driver so that it sleeps no longer than the new deadline. A call round trip is a few
//! microseconds; for calls, that bookkeeping was a fifth of its CPU (`call_profile`).
//!
//! Here each thread keeps a few timers that earlier waits left. tokio's timer wheel moves
//! a registered timer to a later deadline without its lock: the timer stays where it was
//! in the wheel, and when that earlier moment comes the driver sees the later deadline and
//! files it again. With deadlines seconds away, a timer taken for message after message
//! reaches the driver about once per deadline. (Built with `tokio_unstable`'s alternative
//! timer, a reset makes a new timer, as a fresh wait would.)
//!
//! What a kept timer costs while it waits for its next use:
//! - when its last deadline passes, it wakes the task that used it last, once, for
//!   nothing (tokio allows such wake-ups), and until then it holds that task's waker;
//! - it holds its runtime's handle: the timers of a runtime that has ended are dropped
//!   when the thread next waits under another runtime, or when it ends;
//! - under a paused test clock (`tokio::time::pause`), its deadline is one the clock may
//!   advance to when the runtime is idle, where a dropped timer would not be.
//!
//! Timers belong to one runtime (their driver), so the spares are kept with the id of the
//! runtime that made them, and are never handed to a wait under another runtime.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::task::coop;
use tokio::time::{Instant, Sleep};

/// How many spare timers a thread keeps: beyond that many waits at once on one thread, a
/// wait makes (and drops) its own timer, as `tokio::time::timeout` would.
const KEPT_PER_THREAD: usize = 8;

thread_local! {
    static SPARES: RefCell<Spares> = const { RefCell::new(Spares { runtime: None, timers: Vec::new() }) };
}

/// The timers a thread keeps for its next waits, and the runtime they belong to.
struct Spares {
    runtime: Option<Id>,
    timers: Vec<Pin<Box<Sleep>>>,
}

impl Spares {
    /// Makes `runtime` the owner of this thread's spares, and hands back the timers of the
    /// runtime that owned them before, for the caller to drop once it has let go of them.
    fn belong_to(&mut self, runtime: Id) -> Vec<Pin<Box<Sleep>>> {
        if self.runtime == Some(runtime) {
            return Vec::new();
        }
        self.runtime = Some(runtime);
        std::mem::take(&mut self.timers)
    }
}

/// The time ran out before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// `future`'s output, or [`Elapsed`] once `timeout` has passed: `tokio::time::timeout` on a
/// kept timer. A timeout too far away to be an instant (`Duration::MAX`) takes no timer.
pub(crate) fn timeout<F: Future>(timeout: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        deadline: Instant::now().checked_add(timeout),
        timer: None,
    }
}

/// `future`'s output, or [`Elapsed`] once `deadline` has come: `tokio::time::timeout_at` on
/// a kept timer.
pub(crate) fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        deadline: Some(deadline),
        timer: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`] and [`timeout_at`]. The wrapped future is polled first,
    /// and one that is ready at once takes no timer.
    ///
    /// A struct, not an `async fn`: an async fn keeps its argument, and then the pinned
    /// copy it moves the argument into, so every layer stored the wrapped future again. A
    /// guest call's future went from 368 bytes to 1,240 that way, and the future of
    /// serving one message, boxed for each message, grew past what malloc serves from its
    /// per-thread cache (`call_profile` spent 5% of its casts consolidating malloc's bins).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub(crate) struct Timeout<F> {
        #[pin]
        future: F,
        // `None`: too far away to be an instant, so it never comes.
        deadline: Option<Instant>,
        // Taken at the first poll that finds the future pending.
        timer: Option<Borrowed>,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let had_budget = coop::has_budget_remaining();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let Some(deadline) = *this.deadline else {
            return Poll::Pending;
        };
        // A future that spent the task's cooperative budget would leave none for the
        // timer, which would then never see its deadline: as tokio's `Timeout` does, the
        // timer is then polled outside the budget.
        let spent_by_future = had_budget && !coop::has_budget_remaining();
        let sleep = this
            .timer
            .get_or_insert_with(|| Borrowed::take(deadline))
            .sleep();
        let passed = if spent_by_future {
            std::pin::pin!(coop::unconstrained(sleep)).poll(cx)
        } else {
            sleep.poll(cx)
        };
        passed.map(|()| Err(Elapsed))
    }
}

/// A timer taken from this thread's spares (or made), set to a deadline, and given back to
/// the spares of whichever thread drops it.
struct Borrowed {
    runtime: Id,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Borrowed {
    fn take(deadline: Instant) -> Self {
        let runtime = Handle::current().id();
        let mut ended = Vec::new();
        let spare = SPARES
            .try_with(|spares| {
                let mut spares = spares.borrow_mut();
                ended = spares.belong_to(runtime);
                spares.timers.pop()
            })
            .ok()
            .flatten();
        drop(ended);
        let timer = match spare {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Self {
            runtime,
            timer: Some(timer),
        }
    }

    fn sleep(&mut self) -> Pin<&mut Sleep> {
        match &mut self.timer {
            Some(timer) => timer.as_mut(),
            None => unreachable!("a borrowed timer is only given back when dropped"),
        }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        // Dropped after the thread's storage lets go: dropping a timer takes its driver's
        // lock and may drop a task's waker, neither of which may come back here meanwhile.
        let mut unkept = Vec::new();
        let kept = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            unkept = spares.belong_to(self.runtime);
            if spares.timers.len() < KEPT_PER_THREAD {
                spares.timers.push(timer);
                None
            } else {
                Some(timer)
            }
        });
        // A thread that is ending has no storage left: its timer goes too.
        drop(kept);
        drop(unkept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn spares_kept() -> usize {
        SPARES.with(|spares| spares.borrow().timers.len())
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_never_completes_ends_at_its_deadline() {
        let started = Instant::now();
        let outcome = timeout(ms(250), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(started.elapsed(), ms(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_beyond_any_instant_waits_without_a_timer() {
        let slow = tokio::time::sleep(ms(100));
        assert_eq!(timeout(Duration::MAX, slow).await, Ok(()));
        assert_eq!(spares_kept(), 0, "no timer was made, so none was kept");
        tokio::select! {
            _ = timeout(Duration::MAX, std::future::pending::<()>()) => {
                panic!("a wait beyond any instant ended")
            }
            () = tokio::time::sleep(ms(60_000)) => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_takes_no_timer() {
        assert_eq!(timeout(ms(10), std::future::ready(7)).await, Ok(7));
        assert_eq!(spares_kept(), 0, "no timer was made, so none was kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_moved_later_does_not_fire_at_its_old_deadline() {
        let quick = tokio::time::sleep(ms(1));
        assert_eq!(timeout(ms(50), quick).await, Ok(()));
        assert_eq!(spares_kept(), 1, "the timer is kept for the next call");

        // Its registration still says 50 ms; the next call's deadline is later.
        let started = Instant::now();
        let slow = tokio::time::sleep(ms(400));
        assert_eq!(timeout(ms(1_000), slow).await, Ok(()));
        assert_eq!(started.elapsed(), ms(400));
        assert_eq!(spares_kept(), 1, "the same timer came back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_moved_earlier_fires_at_the_new_deadline() {
        let quick = tokio::time::sleep(ms(1));
        assert_eq!(timeout(ms(60_000), quick).await, Ok(()));
        let started = Instant::now();
        let outcome = timeout(ms(30), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(started.elapsed(), ms(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_that_fired_while_kept_serves_again() {
        let quick = tokio::time::sleep(ms(1));
        assert_eq!(timeout(ms(20), quick).await, Ok(()));
        // Past the kept timer's deadline: it fires with nobody waiting on it.
        tokio::time::sleep(ms(100)).await;
        let started = Instant::now();
        let slow = tokio::time::sleep(ms(50));
        assert_eq!(timeout(ms(200), slow).await, Ok(()));
        assert_eq!(started.elapsed(), ms(50));
        let outcome = timeout(ms(70), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_cut_short_leaves_its_timer_and_the_next_wait_keeps_its_own_deadline() {
        // A lending process's idle wait, ended early by a message.
        let idle_wait = |duration| timeout(duration, std::future::pending::<()>());
        tokio::select! {
            _ = idle_wait(ms(100)) => panic!("the idle wait ended before the message"),
            () = tokio::time::sleep(ms(30)) => {}
        }
        assert_eq!(spares_kept(), 1, "the timer is kept for the next wait");
        let started = Instant::now();
        assert_eq!(idle_wait(ms(100)).await, Err(Elapsed));
        assert_eq!(started.elapsed(), ms(100));
    }

    #[test]
    fn the_wrapped_future_is_stored_once() {
        // A future with 512 bytes of state, as a guest call's is.
        let call = async {
            let buffer = [7u8; 512];
            tokio::task::yield_now().await;
            buffer.len()
        };
        let call_size = std::mem::size_of_val(&call);
        let wrapped = timeout_at(Instant::now(), call);
        let overhead = std::mem::size_of_val(&wrapped) - call_size;
        assert!(
            overhead <= 64,
            "{overhead} bytes beside a {call_size}-byte future"
        );
    }

    #[tokio::test]
    async fn a_future_that_spends_its_task_budget_on_every_poll_still_times_out() {
        // Such a future is pending only because tokio's cooperative budget ran out (a
        // guest calling host functions that read from a busy channel). Polled after it
        // under the same spent budget, the timer would never say its deadline had passed.
        let busy = async {
            loop {
                tokio::task::coop::consume_budget().await;
            }
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(ms(2_000), timeout(ms(30), busy)).await;
        assert_eq!(
            outcome,
            Ok(Err(Elapsed)),
            "the inner deadline ended it, not the outer"
        );
        assert!(started.elapsed() >= ms(30), "it ended before its deadline");
    }

    #[test]
    fn timers_kept_under_one_runtime_are_not_used_under_the_next() {
        // Two runtimes, one after the other, on this one thread: the first one's timers
        // die with it (polling one would panic), and are let go of, with the handle to
        // their runtime, at the first wait under the second.
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let quick = tokio::time::sleep(ms(1));
                assert_eq!(timeout(ms(5_000), quick).await, Ok(()));
                let outcome = timeout(ms(20), std::future::pending::<()>()).await;
                assert_eq!(outcome, Err(Elapsed));
                let owner = SPARES.with(|spares| spares.borrow().runtime);
                assert_eq!(owner, Some(Handle::current().id()));
                assert_eq!(spares_kept(), 1, "one timer served both waits");
            });
            drop(runtime);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_keeps_a_bounded_number_of_timers() {
        // Tasks of a current-thread runtime: all on this thread, all waiting at once.
        let calls: Vec<_> = (0..KEPT_PER_THREAD as u64 + 4)
            .map(|i| {
                let quick = tokio::time::sleep(ms(1 + i));
                tokio::spawn(timeout(ms(1_000), quick))
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.expect("the call's task"), Ok(()));
        }
        assert_eq!(spares_kept(), KEPT_PER_THREAD);
    }
}
