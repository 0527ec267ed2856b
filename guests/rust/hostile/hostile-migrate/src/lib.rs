//! Hostile fixture, vsn "hostile-migrate": a kv version whose `code_change` misbehaves in the
//! way the operator's `extra` (the swap's free-form argument) names. It models a new version
//! that hangs, leaks, overflows or crashes while it migrates the old version's state, where
//! the host has a process paused and its old instance waiting for a verdict.
//!
//! | `extra`     | what `code_change` does                                         |
//! |-------------|-----------------------------------------------------------------|
//! | `spin`      | loops forever                                                   |
//! | `bomb`      | allocates (and writes) MiB after MiB until memory runs out      |
//! | `recurse`   | recurses until the stack overflows                              |
//! | `trap`      | panics (a trap)                                                 |
//! | `error`     | returns an `Err` that names the extra                           |
//! | `slow`      | logs `migrating slowly`, works until the gate opens, then adopts |
//! | anything else, or none | adopts the kv state `{"entries":{...}}`, like kv     |
//!
//! (`extra` is compared after trimming ASCII whitespace.) `slow` is not hostile: it gives
//! the old version time to serve messages while the new one migrates, for as long as a
//! test needs, however loaded the machine: it works until a process named
//! `slow-migration-may-end` is registered (at most 10 s). The host must refuse
//! every one of the first five swaps: the loop at the swap's time limit, the bomb at the memory limit, the
//! overflow, the trap and the error as they come; drop this instance; and keep the old
//! version serving its state, untouched, with the reason in the swap's error.
//!
//! Spawned directly, or once a swap to it succeeded, it serves exactly like kv (see
//! `kv-core`), plus `{"op":"ping"}`, which replies `"pong"`.

use std::hint::black_box;

use hotswap_guest::{Change, GenServer, Pid, json, log, whereis};
use kv_core::{AccessLog, Entries};
use serde::Deserialize;

/// One mebibyte.
const MIB: usize = 1 << 20;

/// A `slow` migration ends once a process is registered under this name.
const SLOW_MIGRATION_GATE: &str = "slow-migration-may-end";

/// How long a `slow` migration works when nobody opens its gate.
const SLOW_MIGRATION_CAP: std::time::Duration = std::time::Duration::from_secs(10);

/// The one request this server adds to kv's.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Own {
    Ping,
}

/// kv, except for `code_change`.
struct Migrate;

impl GenServer for Migrate {
    type State = Entries;
    const VSN: &'static str = "hostile-migrate";

    fn init(args: &[u8]) -> Result<Entries, String> {
        Entries::from_init_args(args)
    }

    fn handle_call(state: &mut Entries, request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        match json::decode::<Own>(request) {
            Ok(Own::Ping) => json::encode("pong"),
            Err(_) => state.call(request, AccessLog::Off),
        }
    }

    fn handle_cast(state: &mut Entries, message: &[u8]) {
        state.handle_message("cast", message, AccessLog::Off);
    }

    fn handle_info(state: &mut Entries, message: &[u8]) {
        state.handle_message("info message", message, AccessLog::Off);
    }

    fn code_change(direction: Change, state: &[u8], extra: &[u8]) -> Result<Entries, String> {
        let extra = extra.trim_ascii();
        let misbehave =
            |how: &str| log::warn(&format!("code_change ({direction}) {how}, on purpose"));
        match extra {
            b"spin" => {
                misbehave("spins forever");
                let mut turns: u64 = 0;
                loop {
                    turns = black_box(turns).wrapping_add(1);
                }
            }
            b"bomb" => {
                misbehave("allocates until memory runs out");
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // A non-zero fill writes every byte; a failed allocation aborts (a trap).
                    hoard.push(black_box(vec![0xA5; MIB]));
                }
            }
            b"recurse" => {
                misbehave("recurses without bound");
                Err(format!("the recursion returned: {}", descend(0)))
            }
            b"trap" => {
                misbehave("traps");
                panic!("hostile-migrate traps in code_change on purpose ({direction})")
            }
            b"slow" => {
                log::info(&format!("code_change ({direction}) migrating slowly"));
                let started = std::time::Instant::now();
                while whereis(SLOW_MIGRATION_GATE).is_none()
                    && started.elapsed() < SLOW_MIGRATION_CAP
                {
                    black_box(started);
                }
                json::decode(state).map_err(|why| format!("the state does not parse: {why}"))
            }
            b"error" => Err(format!(
                "hostile-migrate refuses the {direction}, as extra \"error\" asks"
            )),
            _ => json::decode(state).map_err(|why| {
                format!("{direction} to vsn \"hostile-migrate\": the state does not parse: {why}")
            }),
        }
    }
}

/// Recurses until the stack runs out. Not a tail call: each level keeps `frame` until its
/// callee returns; `black_box` hides the values from the optimiser. The depth test is on a
/// hidden value, so the compiler cannot see the recursion is unbounded.
fn descend(depth: u64) -> u64 {
    let frame = black_box([depth; 8]);
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = descend(black_box(depth + 1));
    black_box(below.max(frame[7]))
}

hotswap_guest::export_process!(Migrate);
