//! Log lines, written to the node's log (`tracing`), which tags each with this process's pid,
//! module and vsn: a guest does not need to repeat them.

use crate::bindings::hotswap::otp::runtime;

pub use crate::bindings::hotswap::otp::runtime::Level;

/// Writes `message` at `level`.
pub fn log(level: Level, message: &str) {
    runtime::log(level, message);
}

/// Writes `message` at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
