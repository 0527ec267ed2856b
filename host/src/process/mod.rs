//! Processes: a guest instance driven by one tokio task, fed by one mailbox.
//!
//! [`ProcessHandle`] is the cheap, cloneable side that callers hold; the actor (in
//! `actor.rs`) owns the instance and its `Store` and serves control signals first, then
//! user messages, one at a time. Control requests (swap, state read, stop) are therefore
//! only ever handled between two messages, never inside one. While it has nothing to do,
//! the actor lends the instance to callers on its runtime, who serve their calls on their
//! own tasks, one at a time and in the same order; a call the guest does not end at once
//! goes on in a task of its own (`lending.rs`).

pub(crate) mod actor;
pub(crate) mod context;
pub(crate) mod control;
mod deadline;
pub(crate) mod envelope;
mod exit;
mod handle;
mod hibernation;
pub(crate) mod instance;
mod lending;
pub(crate) mod mailbox;
pub(crate) mod status;
pub(crate) mod suspension;

pub use exit::ExitReason;
pub use handle::ProcessHandle;
pub use status::ProcessInfo;

/// A process identifier: unique for the life of a node, never reused, stable across swaps.
/// `0` stands for "outside the node" (a caller that is not a process, such as the CLI).
pub type Pid = u64;

/// The pid a call carries when it comes from outside the node.
pub const OUTSIDE: Pid = 0;
