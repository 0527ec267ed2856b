//! Why a process ended.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The exit reason of a process, as its callers and `ps` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// Stopped on request (`stop`), after its `terminate` ran.
    Stopped { reason: String },
    /// The guest trapped (a wasm trap, a time limit, a memory limit) in `callback`.
    Trapped { callback: String, cause: String },
    /// The node is shutting down.
    Shutdown,
    /// The host failed while serving the process (a panic in its task): a bug in the node,
    /// never the guest's doing.
    HostFault { cause: String },
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped { reason } => write!(f, "stopped: {reason}"),
            Self::Trapped { callback, cause } => write!(f, "trapped in {callback}: {cause}"),
            Self::Shutdown => f.write_str("node shutdown"),
            Self::HostFault { cause } => write!(f, "host fault: {cause}"),
        }
    }
}

impl From<crate::process::instance::GuestTrap> for ExitReason {
    fn from(trap: crate::process::instance::GuestTrap) -> Self {
        Self::Trapped {
            callback: trap.callback.to_string(),
            cause: trap.cause,
        }
    }
}
