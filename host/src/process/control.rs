//! Control signals: requests about a process rather than to it, served before any
//! waiting user message but never in the middle of one, and served while suspended.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::error::{ControlError, SwapError};
use crate::optimistic_swap::{Adoption, Declined, MarkedSnapshot};
use crate::process::instance::GuestInstance;
use crate::process::suspension::Suspender;
use crate::swap::{SwapOptions, SwapReport};

/// Control signals travel boxed: a tokio channel allocates its slots 32 at a time, and 32
/// signals inline (88 bytes each) would cost every process 2.8 KB of heap for a channel
/// that is empty nearly always. Boxed, the block is 288 bytes.
pub(crate) type ControlSender = mpsc::Sender<Box<Control>>;
pub(crate) type ControlReceiver = mpsc::Receiver<Box<Control>>;

/// The bound of a process's control channel: signals are rare, and their senders wait for
/// room.
pub(crate) const CONTROL_CAPACITY: usize = 16;

pub(crate) enum Control {
    /// Hand the state to `next` (already instantiated, outside the pause) and commit, in
    /// one pause.
    Swap {
        next: Box<GuestInstance>,
        options: SwapOptions,
        /// When the caller asked, for the report's total time.
        requested_at: Instant,
        reply: oneshot::Sender<Result<SwapReport, SwapError>>,
    },
    /// Take a snapshot and mark it (the first step of an optimistic swap).
    MarkedSnapshot {
        reply: oneshot::Sender<Result<MarkedSnapshot, SwapError>>,
    },
    /// Commit an instance that adopted the state at its mark, if the mark holds.
    Adopt {
        adoption: Box<Adoption>,
        reply: oneshot::Sender<Result<SwapReport, Declined>>,
    },
    /// Hand the state to `next` but do not commit yet: a release stages every process first.
    Stage {
        next: Box<GuestInstance>,
        options: SwapOptions,
        reply: oneshot::Sender<Result<(), SwapError>>,
    },
    /// Make the staged instance the one the mailbox feeds. `None` if nothing was staged.
    Commit {
        reply: oneshot::Sender<Option<SwapReport>>,
    },
    /// Drop the staged instance, if any; the current one serves on.
    Abort { reply: oneshot::Sender<()> },
    /// Stop serving user messages (they queue) until `by` resumes; control signals are
    /// still served.
    Suspend {
        by: Suspender,
        reply: oneshot::Sender<()>,
    },
    /// Let go of `by`'s hold: user messages are served again once no one holds them.
    Resume {
        by: Suspender,
        reply: oneshot::Sender<()>,
    },
    /// The current state blob (`snapshot`).
    GetState {
        reply: oneshot::Sender<Result<Vec<u8>, ControlError>>,
    },
    /// Run `terminate` and end the process.
    Stop {
        reason: String,
        reply: oneshot::Sender<()>,
    },
}
