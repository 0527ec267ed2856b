//! The seed's key-value server, version "0": a JSON map behind `put`, `get`, `delete`, `keys`
//! and `count` (see `kv-core` for the protocol). Version "1" is this plus an access log; the
//! two share the state shape, so a process swaps between them either way.

use kv_core::{AccessLog, Kv, Version};

/// Version "0": no access log.
struct V0;

impl Version for V0 {
    const VSN: &'static str = "0";
    const ACCESS_LOG: AccessLog = AccessLog::Off;
}

hotswap_guest::export_process!(Kv<V0>);
