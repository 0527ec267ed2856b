//! Control signals: requests about a process rather than to it, served before any
//! waiting user message but never in the middle of one, and served while suspended.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::{ControlError, SwapError};
use crate::optimistic_swap::{Adoption, Declined, MarkedSnapshot};
use crate::process::instance::GuestInstance;
use crate::process::suspension::Suspender;
use crate::swap::{SwapOptions, SwapReport};

/// A control signal. Signals travel boxed: the mailbox's queue of them then takes 8 bytes
/// a slot rather than 88, for a queue that is empty nearly always.
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
