//! Hostile fixture, vsn "hostile-recursion": a guest that recurses without bound. It models a
//! plugin with a runaway recursion (a cycle in its data, a missing base case).
//!
//! | call                   | reply                                               |
//! |------------------------|-----------------------------------------------------|
//! | `{"op":"ping"}`        | `"pong"`                                            |
//! | `{"op":"recurse"}`     | never: recurses until the stack runs out             |
//! | `{"op":"depth","n":N}` | recurses N deep the same way and replies N (a bounded control, to see that deep but finite recursion is fine) |
//!
//! Each level keeps a small buffer alive across its recursive call and adds to the callee's
//! result after it returns, so the recursion is not a tail call, and `black_box` hides the
//! values so the optimiser can neither turn it into a loop nor compute it ahead.
//!
//! The host must see the stack overflow as a trap (wasmtime's "call stack exhausted", or an
//! out-of-bounds access when Rust's shadow stack in linear memory runs out first), end this
//! process only with that reason, and keep serving the others: the overflow must not reach
//! the host's own (native) stack.

use std::hint::black_box;

use hotswap_guest::{GenServer, Pid, json, log};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Recurse,
    Depth { n: u64 },
}

/// The recursing server. It has no state.
struct Recursion;

impl GenServer for Recursion {
    type State = ();
    const VSN: &'static str = "hostile-recursion";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Recurse => {
                log::warn("recursing without bound, on purpose");
                // `u64::MAX` levels: far more than any stack holds.
                json::encode(&descend(0, u64::MAX))
            }
            Request::Depth { n } => json::encode(&descend(0, n)),
        }
    }
}

/// Recurses from `depth` down to `limit` and returns the number of levels. Not a tail call:
/// each level holds `frame` until its callee returns, then adds to the callee's result.
fn descend(depth: u64, limit: u64) -> u64 {
    let frame = black_box([depth; 8]);
    if black_box(depth) >= limit {
        return depth;
    }
    let below = descend(black_box(depth + 1), limit);
    black_box(below.max(frame[7]))
}

hotswap_guest::export_process!(Recursion);
