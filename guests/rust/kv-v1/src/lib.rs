//! The seed's key-value server, version "1": version "0" plus the logging patch, one info line
//! for each get and each put (`get a -> 42`, `put a = 42`). Same requests, same state shape,
//! so a process swaps from "0" to "1" and back with the default code change.

use kv_core::{AccessLog, Kv, Version};

/// Version "1": every get and put is logged.
struct V1;

impl Version for V1 {
    const VSN: &'static str = "1";
    const ACCESS_LOG: AccessLog = AccessLog::On;
}

hotswap_guest::export_process!(Kv<V1>);
