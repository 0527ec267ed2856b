//! The host side of WIT `interface runtime`: what every guest may call.
//!
//! These functions run inside the calling process's guest call, on the runtime its actor
//! runs on: on the actor's task, on the task of a caller that the idle process lent its
//! instance to, or on the task that finishes such a call (`process/lending.rs`). None of
//! them blocks. Log lines carry the caller's
//! node, pid, module and vsn as `tracing` fields.

use std::time::Duration;

use crate::bindings::Level;
use crate::bindings::hotswap::otp::{runtime, types};
use crate::process::Pid;
use crate::process::context::ProcessContext;

impl types::Host for ProcessContext {}

impl runtime::Host for ProcessContext {
    fn log(&mut self, level: Level, message: String) {
        let (node, pid) = (self.registry.node().0, self.pid);
        let (module, vsn) = (&*self.module, &*self.vsn);
        match level {
            Level::Trace => tracing::trace!(target: "guest", node, pid, module, vsn, "{message}"),
            Level::Debug => tracing::debug!(target: "guest", node, pid, module, vsn, "{message}"),
            Level::Info => tracing::info!(target: "guest", node, pid, module, vsn, "{message}"),
            Level::Warn => tracing::warn!(target: "guest", node, pid, module, vsn, "{message}"),
            Level::Error => tracing::error!(target: "guest", node, pid, module, vsn, "{message}"),
        }
    }

    fn self_pid(&mut self) -> Pid {
        self.pid
    }

    fn whereis(&mut self, name: String) -> Option<Pid> {
        self.registry.whereis(&name)
    }

    fn send(&mut self, to: Pid, message: Vec<u8>) -> Result<(), String> {
        self.registry
            .send_info(to, message)
            .map_err(|error| error.to_string())
    }

    fn send_after(&mut self, to: Pid, message: Vec<u8>, millis: u64) -> u64 {
        self.registry
            .send_after(self.pid, to, message, Duration::from_millis(millis))
    }

    fn cancel_timer(&mut self, timer: u64) -> bool {
        self.registry.cancel_timer(self.pid, timer)
    }
}
