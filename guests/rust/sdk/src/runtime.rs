//! The host API of the `runtime` interface, other than logging (see [`log`](crate::log)):
//! who am I, who is registered where, sending messages, and timers.
//!
//! Thin wrappers that take borrowed data, and a [`TimerRef`] type so that a timer reference
//! is not mistaken for a pid. Every call is cheap and never blocks.

use serde::{Deserialize, Serialize};

use crate::Pid;
use crate::bindings::hotswap::otp::runtime;

/// A timer made by [`send_after`], to cancel with [`cancel_timer`]. Serialises as its number,
/// so that it can travel in a JSON reply and come back in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerRef(u64);

impl TimerRef {
    /// The timer reference the host gave, as a number.
    pub fn as_raw(self) -> u64 {
        self.0
    }

    /// A timer reference from its number (as read back from a message, say).
    pub fn from_raw(raw: u64) -> TimerRef {
        TimerRef(raw)
    }
}

/// This process's own pid. Stable across hot swaps.
pub fn self_pid() -> Pid {
    runtime::self_pid()
}

/// The pid registered under `name` on this node, if any.
pub fn whereis(name: &str) -> Option<Pid> {
    runtime::whereis(name)
}

/// Sends `message` to process `to`, where it arrives as `handle_info`, after every message
/// this process sent to `to` before. Fails, delivering nothing, when `to` is not alive or its
/// mailbox is full; the error is the host's reason.
pub fn send(to: Pid, message: &[u8]) -> Result<(), String> {
    runtime::send(to, message)
}

/// Sends `message` to process `to` as `handle_info` after `millis` milliseconds. If `to` is
/// gone by then, the message is dropped.
pub fn send_after(to: Pid, message: &[u8], millis: u64) -> TimerRef {
    TimerRef(runtime::send_after(to, message, millis))
}

/// Cancels a timer. True if it was pending and will now never fire; false if it already
/// fired, was cancelled, or never existed.
pub fn cancel_timer(timer: TimerRef) -> bool {
    runtime::cancel_timer(timer.0)
}
