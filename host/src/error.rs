//! The typed errors of the library, one enum per operation.
//!
//! Every variant carries what an operator needs to act on it: the pid, the module and the
//! version it is about, and the cause in words. Guest failures come in two kinds that the
//! enums keep apart: a guest that *returns* an error (a WIT `result`, the instance is fine)
//! and a guest that *traps* (the instance, and its whole `Store`, is unusable afterwards).

use std::path::PathBuf;
use std::time::Duration;

use crate::code::ModuleVersion;
use crate::process::{ExitReason, Pid};
use crate::sandbox::PolicyError;

/// A component could not be loaded as a module version.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a WebAssembly file (it does not start with the `\\0asm` magic)")]
    NotWasm { what: String },
    #[error(
        "{what} is a core WebAssembly module, not a component: build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule { what: String },
    #[error("{what} is not a valid component: {cause}")]
    Compile { what: String, cause: String },
    #[error("{what} does not fit the `hotswap:otp/process` world: {cause}")]
    WorldMismatch { what: String, cause: String },
    #[error("{what}: `vsn` failed: {cause}")]
    Vsn { what: String, cause: String },
    #[error("module name {name:?} is not valid: {why}")]
    BadName { name: String, why: &'static str },
}

/// A process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("no module named {module:?} is loaded")]
    NoSuchModule { module: String },
    #[error("module {module} has no version {vsn:?} loaded")]
    NoSuchVersion { module: String, vsn: String },
    #[error("the name {name:?} is already registered to pid {pid}")]
    NameTaken { name: String, pid: Pid },
    #[error("the process's policy is not valid: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot instantiate {module} vsn {vsn}: {cause}")]
    Instantiate {
        module: String,
        vsn: String,
        cause: String,
    },
    #[error("{module} vsn {vsn}: init refused: {reason}")]
    InitRefused {
        module: String,
        vsn: String,
        reason: String,
    },
    #[error("{module} vsn {vsn}: init trapped: {cause}")]
    InitTrapped {
        module: String,
        vsn: String,
        cause: String,
    },
}

/// A message could not be delivered, or a call got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no process {target}")]
    NoProcess { target: String },
    #[error("pid {pid}: mailbox full ({capacity} messages)")]
    MailboxFull { pid: Pid, capacity: usize },
    #[error("pid {pid} exited: {reason}")]
    Exited { pid: Pid, reason: ExitReason },
    #[error("pid {pid}: no reply within {timeout:?}")]
    Timeout { pid: Pid, timeout: Duration },
    /// The guest answered the call with an error: the process lives on.
    #[error("pid {pid} ({module} vsn {vsn}) replied with an error: {reason}")]
    Refused {
        pid: Pid,
        module: String,
        vsn: String,
        reason: String,
    },
}

impl CallError {
    /// The guest of `version` answered a call with an error.
    pub(crate) fn refused(version: &ModuleVersion, pid: Pid, reason: String) -> Self {
        Self::Refused {
            pid,
            module: version.name.to_string(),
            vsn: version.vsn.to_string(),
            reason,
        }
    }
}

/// Why a hot swap was refused. In every case but `Exited` and `SnapshotTrapped`, the old
/// instance serves on with its state and its version, untouched.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no process {target}")]
    NoProcess { target: String },
    #[error("pid {pid}: the new version could not be loaded: {source}")]
    Load {
        pid: Pid,
        #[source]
        source: LoadError,
    },
    #[error("pid {pid} is a {current} process and cannot be swapped to module {requested}")]
    WrongModule {
        pid: Pid,
        current: String,
        requested: String,
    },
    #[error("pid {pid}: cannot instantiate {module} vsn {vsn}: {cause}")]
    Instantiate {
        pid: Pid,
        module: String,
        vsn: String,
        cause: String,
    },
    #[error(
        "pid {pid}: {module} vsn {to} refused the state of vsn {from} in code-change: {reason}"
    )]
    CodeChangeRefused {
        pid: Pid,
        module: String,
        from: String,
        to: String,
        reason: String,
    },
    #[error("pid {pid}: {module} vsn {to} trapped in code-change from vsn {from}: {cause}")]
    CodeChangeTrapped {
        pid: Pid,
        module: String,
        from: String,
        to: String,
        cause: String,
    },
    /// The old instance could not write its state; it serves on, untouched.
    #[error("pid {pid}: {module} vsn {from} refused to write its state in snapshot: {reason}")]
    SnapshotRefused {
        pid: Pid,
        module: String,
        from: String,
        reason: String,
    },
    /// The old instance trapped while writing its snapshot: it cannot serve any more, so
    /// the process has exited. Nothing was committed.
    #[error("pid {pid}: {module} vsn {from} trapped in snapshot, the process exited: {cause}")]
    SnapshotTrapped {
        pid: Pid,
        module: String,
        from: String,
        cause: String,
    },
    #[error("pid {pid} exited before the swap ran: {reason}")]
    Exited { pid: Pid, reason: ExitReason },
    /// A release has staged a new instance for this process and not yet committed it; a
    /// swap now would be undone by that commit.
    #[error("pid {pid} is in the middle of a release; swap it after the release ends")]
    Busy { pid: Pid },
}

/// A control request (state read, stop) could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no process {target}")]
    NoProcess { target: String },
    #[error("pid {pid} exited: {reason}")]
    Exited { pid: Pid, reason: ExitReason },
    #[error("pid {pid} ({module} vsn {vsn}) refused to write its state in snapshot: {reason}")]
    SnapshotRefused {
        pid: Pid,
        module: String,
        vsn: String,
        reason: String,
    },
    #[error("pid {pid} ({module} vsn {vsn}) trapped in snapshot, the process exited: {cause}")]
    SnapshotTrapped {
        pid: Pid,
        module: String,
        vsn: String,
        cause: String,
    },
}

/// A node could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot set up the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot set up the host functions: {0}")]
    Linker(String),
    #[error("the default policy is not valid: {0}")]
    Policy(#[from] PolicyError),
}
