//! Deadlines on timers that are reused rather than made for every message: a call's
//! timeout, and the idle time after which a process hibernates.
//!
//! A fresh tokio timer (what `tokio::time::timeout` and `sleep` make) is put in the
//! runtime's time driver when first polled and taken out when dropped: two trips through
//! the driver's lock, and, when the wheel was empty, a wake-up of the worker parked on the
//! driver so that it sleeps no longer than the new deadline. A call round trip is a few
//! microseconds; for calls, that bookkeeping was a fifth of its CPU (`call_profile`).
//!
//! Here each worker thread keeps a few timers that earlier waits left. tokio moves a
//! registered timer to a later deadline without touching the driver: the timer stays where
//! it was in the wheel, and when that earlier moment comes the driver sees the later
//! deadline and files it again. With deadlines seconds away, a timer taken for message after
//! message reaches the driver about once per deadline. A timer that fires while it waits to
//! be reused wakes the task that used it last, once, for nothing; tokio allows such
//! wake-ups.
//!
//! Timers belong to one runtime (their driver), so the spares are kept with the id of the
//! runtime that made them, and a thread that enters another runtime starts afresh.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

/// How many spare timers a thread keeps: beyond that many waits at once on one thread, a
/// wait makes (and drops) its own timer, as `tokio::time::timeout` would.
const KEPT_PER_THREAD: usize = 8;

thread_local! {
    static SPARES: RefCell<Spares> = const { RefCell::new(Spares { runtime: None, timers: Vec::new() }) };
}

/// The timers a thread keeps for its next calls, and the runtime they belong to.
struct Spares {
    runtime: Option<Id>,
    timers: Vec<Pin<Box<Sleep>>>,
}

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// `future`'s output, or [`Elapsed`] if `deadline` comes first. Like `tokio::time::timeout_at`,
/// the future is polled first, and a future that is ready at once needs no timer.
pub(crate) async fn within<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
    if let Poll::Ready(output) = first {
        return Ok(output);
    }
    let mut timer = Borrowed::take(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.sleep().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Resolves at `deadline`, like `tokio::time::sleep_until`.
pub(crate) async fn sleep_until(deadline: Instant) {
    Borrowed::take(deadline).sleep().await;
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
        let spare = SPARES
            .try_with(|spares| {
                let mut spares = spares.borrow_mut();
                (spares.runtime == Some(runtime))
                    .then(|| spares.timers.pop())
                    .flatten()
            })
            .ok()
            .flatten();
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
        // Outside the thread's local storage (a thread ending), the timer is dropped.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.runtime != Some(self.runtime) {
                spares.runtime = Some(self.runtime);
                spares.timers.clear();
            }
            if spares.timers.len() < KEPT_PER_THREAD {
                spares.timers.push(timer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn after(millis: u64) -> Instant {
        Instant::now() + Duration::from_millis(millis)
    }

    fn spares_kept() -> usize {
        SPARES.with(|spares| spares.borrow().timers.len())
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_never_completes_ends_at_its_deadline() {
        let started = Instant::now();
        let outcome = within(after(250), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_takes_no_timer() {
        assert_eq!(within(after(10), std::future::ready(7)).await, Ok(7));
        assert_eq!(spares_kept(), 0, "no timer was made, so none was kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_moved_later_does_not_fire_at_its_old_deadline() {
        let quick = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within(after(50), quick).await, Ok(()));
        assert_eq!(spares_kept(), 1, "the timer is kept for the next call");

        // Its registration still says 50 ms; the next call's deadline is later.
        let started = Instant::now();
        let slow = tokio::time::sleep(Duration::from_millis(400));
        assert_eq!(within(after(1_000), slow).await, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_millis(400));
        assert_eq!(spares_kept(), 1, "the same timer came back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_moved_earlier_fires_at_the_new_deadline() {
        let quick = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within(after(60_000), quick).await, Ok(()));
        let started = Instant::now();
        let outcome = within(after(30), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_that_fired_while_kept_serves_again() {
        let quick = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within(after(20), quick).await, Ok(()));
        // Past the kept timer's deadline: it fires with nobody waiting on it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let slow = tokio::time::sleep(Duration::from_millis(50));
        assert_eq!(within(after(200), slow).await, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        let outcome = within(after(70), std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_cut_short_leaves_its_timer_and_the_next_sleep_keeps_its_own_deadline() {
        // A process's idle wait, ended early by a message.
        tokio::select! {
            () = sleep_until(after(100)) => panic!("the idle wait ended before the message"),
            () = tokio::time::sleep(Duration::from_millis(30)) => {}
        }
        assert_eq!(spares_kept(), 1, "the timer is kept for the next wait");
        let started = Instant::now();
        sleep_until(after(100)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[test]
    fn timers_kept_under_one_runtime_are_not_used_under_the_next() {
        // Two runtimes, one after the other, on this one thread: the first one's timers
        // die with it, and polling one would panic.
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let quick = tokio::time::sleep(Duration::from_millis(1));
                assert_eq!(within(after(5_000), quick).await, Ok(()));
                let outcome = within(after(20), std::future::pending::<()>()).await;
                assert_eq!(outcome, Err(Elapsed));
            });
            drop(runtime);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_keeps_a_bounded_number_of_timers() {
        // Tasks of a current-thread runtime: all on this thread, all waiting at once.
        let calls: Vec<_> = (0..KEPT_PER_THREAD as u64 + 4)
            .map(|i| {
                let quick = tokio::time::sleep(Duration::from_millis(1 + i));
                tokio::spawn(within(after(1_000), quick))
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.expect("the call's task"), Ok(()));
        }
        assert_eq!(spares_kept(), KEPT_PER_THREAD);
    }
}
