//! Control signals: requests about a process rather than to it, served before any
//! waiting user message but never in the middle of one.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::{ControlError, SwapError};
use crate::process::instance::GuestInstance;
use crate::swap::{SwapOptions, SwapReport};

pub(crate) enum Control {
    /// Hand the state to `next` (already instantiated, outside the pause) and commit.
    Swap {
        next: Box<GuestInstance>,
        options: SwapOptions,
        /// When the caller asked, for the report's total time.
        requested_at: Instant,
        reply: oneshot::Sender<Result<SwapReport, SwapError>>,
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
