//! Hostile fixture, vsn "hostile-spin": a guest that never returns. It models a plugin stuck in
//! a runaway loop (a bug, or a plugin that tries to hog the node's threads).
//!
//! | call or cast                | what it does                                           |
//! |-----------------------------|--------------------------------------------------------|
//! | `{"op":"ping"}`             | replies `"pong"`                                       |
//! | `{"op":"spin"}`             | loops forever in wasm, never yielding to the host      |
//! | `{"op":"sleep","ms":60000}` | blocks in one WASI call (`std::thread::sleep`, a `wasi:io/poll` wait on a monotonic-clock pollable) for `ms`, then replies `null` |
//!
//! Both work as a call (a caller waits for a reply that does not come in time) and as a cast
//! (nobody waits: the process just stops serving its mailbox). The loop feeds a counter through
//! `black_box`, so the optimiser can neither prove it pure nor remove it. `sleep` is the hang
//! that runs no wasm at all: an epoch deadline or fuel, which only fire while wasm runs, do not
//! see it, so a host needs a wall-clock limit on the whole guest call too.
//!
//! The host must interrupt either at the process's time limit per message, end this process
//! only with a reason that says it ran too long, fail the waiting caller and the calls queued
//! behind it, and keep every other process serving.

use std::hint::black_box;
use std::time::Duration;

use hotswap_guest::{GenServer, Pid, json, log};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Spin,
    Sleep { ms: u64 },
}

/// The spinning server. It has no state.
struct Spin;

impl GenServer for Spin {
    type State = ();
    const VSN: &'static str = "hostile-spin";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        match parse(request)? {
            Request::Ping => json::encode("pong"),
            Request::Spin => spin(),
            Request::Sleep { ms } => {
                sleep(ms);
                json::encode(&())
            }
        }
    }

    fn handle_cast(_state: &mut (), message: &[u8]) {
        match parse(message) {
            Ok(Request::Spin) => spin(),
            Ok(Request::Sleep { ms }) => sleep(ms),
            Ok(Request::Ping) => log::info("pong (a ping as a cast)"),
            Err(why) => log::warn(&format!("ignoring the cast: {why}")),
        }
    }
}

/// Parses a request; the error names what was wrong.
fn parse(request: &[u8]) -> Result<Request, String> {
    json::decode(request).map_err(|why| format!("unknown request: {why}"))
}

/// Loops forever. Each turn passes the counter through `black_box`, an opaque use that the
/// optimiser must assume has side effects, so the loop survives `opt-level = "s"` and LTO.
fn spin() -> ! {
    log::warn("spinning forever, on purpose");
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns).wrapping_add(1);
    }
}

/// Blocks for `ms` milliseconds inside one host call, running no wasm meanwhile.
fn sleep(ms: u64) {
    log::warn(&format!("sleeping {ms} ms in a host call, on purpose"));
    std::thread::sleep(Duration::from_millis(ms));
}

hotswap_guest::export_process!(Spin);
