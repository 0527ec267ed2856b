//! What a process may use: its limits (memory, time per guest call, mailbox size) and the
//! capabilities it is granted. The default grants nothing: no files, no environment, no
//! arguments, no network; a guest reaches only the host API of its world, and what it
//! prints goes to the node's log.
//!
//! A policy applies to every instance of a process, the new instance prepared by a swap
//! included, so `code-change` runs under the same limits as the messages.

mod grants;
mod guest_output;

use std::time::Duration;

use serde::Deserialize;

pub use grants::{DirGrant, Grants, NetGrant, OutputMode};
pub use guest_output::{GuestOutput, Stream};

/// Limits and grants of one process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Largest linear memory (in bytes) an instance may grow to; growing past it traps.
    pub memory_limit: usize,
    /// Longest a single guest callback may run (`handle-call`, `init`, ...); in the config
    /// file, `message_time_limit_ms`. Past it the guest traps, which ends the process.
    #[serde(with = "millis", rename = "message_time_limit_ms")]
    pub message_time_limit: Duration,
    /// Longest `snapshot` and `code-change` may each run during a swap; past it the swap
    /// is rolled back (`swap_time_limit_ms`).
    #[serde(with = "millis", rename = "swap_time_limit_ms")]
    pub swap_time_limit: Duration,
    /// How many messages may wait in the mailbox; a send to a full mailbox is refused.
    pub mailbox_capacity: usize,
    /// Fuel (about one unit per wasm instruction) each guest call may burn; past it the
    /// guest traps. Deterministic where the time limit is not. Needs a node with fuel on
    /// (`fuel = true` in its config); `None`: unbounded.
    pub fuel_per_call: Option<u64>,
    /// WASI capabilities: directories, environment, arguments, network, output.
    pub grants: Grants,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            message_time_limit: Duration::from_secs(5),
            swap_time_limit: Duration::from_secs(2),
            mailbox_capacity: 4096,
            fuel_per_call: None,
            grants: Grants::default(),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
