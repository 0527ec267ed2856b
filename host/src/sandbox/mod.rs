//! What a process may use: its limits (memory, time per guest call, mailbox size) and the
//! capabilities it is granted. The default grants nothing: no files, no environment, no
//! arguments, no network; a guest reaches only the host API of its world, and what it
//! prints goes to the node's log.
//!
//! A policy applies to every instance of a process, the new instance prepared by a swap
//! included, so `code-change` runs under the same limits as the messages.

mod grants;
mod guest_output;
mod thread_random;

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
    /// After how long without a message or a control request the process hibernates
    /// (OTP's `hibernate_after`): its state is taken with `snapshot` and its instance is
    /// dropped (in a pooled node, its slot keeps the pages it wrote, reset, for the next
    /// instance: see `engine::KEEP_RESIDENT`), until the next message brings a fresh
    /// instance back with `code-change` from its own vsn. Calls served in place count as
    /// messages. `None` (the default, as in OTP): never.
    #[serde(with = "optional_millis", rename = "hibernate_after_ms")]
    pub hibernate_after: Option<Duration>,
    /// WASI capabilities: directories, environment, arguments, network, output.
    pub grants: Grants,
}

/// The largest mailbox a policy may ask for. A bound is the point of a mailbox: it is what
/// turns a flood into `mailbox full` errors instead of unbounded memory.
pub const MAX_MAILBOX_CAPACITY: usize = 1 << 24;

/// The longest time limit a policy may set: a guest callback that needs more than a day is
/// a mistake in the policy, and larger values overflow deadline arithmetic.
pub const MAX_TIME_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// One wasm page: no instance fits in less.
const MIN_MEMORY_LIMIT: usize = 64 << 10;

/// What is wrong with a policy, by the name its field has in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("mailbox_capacity must be between 1 and {max}, not {got}")]
    MailboxCapacity { got: usize, max: usize },
    #[error("{field} must be between 1 and {max} ms, not {got} ms")]
    TimeLimit {
        field: &'static str,
        got: u128,
        max: u128,
    },
    #[error("memory_limit must be at least {min} bytes (one wasm page), not {got}")]
    MemoryLimit { got: usize, min: usize },
    #[error("fuel_per_call must be at least 1 (leave it out for no fuel bound)")]
    NoFuel,
    #[error(
        "memory_limit is {got} bytes, but this node's instance pool holds memories of at most {pool} bytes"
    )]
    MemoryOverPool { got: usize, pool: usize },
}

impl Policy {
    /// Checks that every limit is one a process can run under.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(1..=MAX_MAILBOX_CAPACITY).contains(&self.mailbox_capacity) {
            return Err(PolicyError::MailboxCapacity {
                got: self.mailbox_capacity,
                max: MAX_MAILBOX_CAPACITY,
            });
        }
        let limits = [
            ("message_time_limit_ms", Some(self.message_time_limit)),
            ("swap_time_limit_ms", Some(self.swap_time_limit)),
            ("hibernate_after_ms", self.hibernate_after),
        ];
        for (field, limit) in limits
            .into_iter()
            .filter_map(|(field, limit)| Some((field, limit?)))
        {
            if limit < Duration::from_millis(1) || limit > MAX_TIME_LIMIT {
                return Err(PolicyError::TimeLimit {
                    field,
                    got: limit.as_millis(),
                    max: MAX_TIME_LIMIT.as_millis(),
                });
            }
        }
        if self.memory_limit < MIN_MEMORY_LIMIT {
            return Err(PolicyError::MemoryLimit {
                got: self.memory_limit,
                min: MIN_MEMORY_LIMIT,
            });
        }
        if self.fuel_per_call == Some(0) {
            return Err(PolicyError::NoFuel);
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and that a memory may grow to the limit in a node
    /// whose pooled memories hold at most `pool_memory` bytes: past that, a guest would
    /// trap on a growth its policy allows.
    pub fn validate_for(&self, pool_memory: Option<usize>) -> Result<(), PolicyError> {
        self.validate()?;
        match pool_memory {
            Some(pool) if self.memory_limit > pool => Err(PolicyError::MemoryOverPool {
                got: self.memory_limit,
                pool,
            }),
            _ => Ok(()),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            message_time_limit: Duration::from_secs(5),
            swap_time_limit: Duration::from_secs(2),
            mailbox_capacity: 4096,
            fuel_per_call: None,
            hibernate_after: None,
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

mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_each_bad_limit_is_named() {
        assert_eq!(Policy::default().validate(), Ok(()));
        let bad = |edit: fn(&mut Policy)| {
            let mut policy = Policy::default();
            edit(&mut policy);
            policy.validate().unwrap_err().to_string()
        };
        assert_eq!(
            bad(|p| p.mailbox_capacity = 0),
            format!("mailbox_capacity must be between 1 and {MAX_MAILBOX_CAPACITY}, not 0")
        );
        assert!(bad(|p| p.mailbox_capacity = usize::MAX).starts_with("mailbox_capacity"));
        assert_eq!(
            bad(|p| p.message_time_limit = Duration::ZERO),
            "message_time_limit_ms must be between 1 and 86400000 ms, not 0 ms"
        );
        assert!(
            bad(|p| p.swap_time_limit = Duration::from_millis(u64::MAX))
                .starts_with("swap_time_limit_ms must be between 1 and 86400000 ms")
        );
        assert!(
            bad(|p| p.hibernate_after = Some(Duration::ZERO)).starts_with("hibernate_after_ms")
        );
        assert!(bad(|p| p.memory_limit = 1000).starts_with("memory_limit must be at least"));
        assert!(bad(|p| p.fuel_per_call = Some(0)).starts_with("fuel_per_call"));
    }

    #[test]
    fn a_memory_limit_must_fit_the_pool() {
        let policy = Policy {
            memory_limit: 128 << 20,
            ..Policy::default()
        };
        assert_eq!(policy.validate_for(None), Ok(()));
        assert_eq!(policy.validate_for(Some(128 << 20)), Ok(()));
        assert_eq!(
            policy.validate_for(Some(64 << 20)),
            Err(PolicyError::MemoryOverPool {
                got: 128 << 20,
                pool: 64 << 20
            })
        );
    }
}
