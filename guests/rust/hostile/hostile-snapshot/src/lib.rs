//! Hostile fixture, vsn "hostile-snapshot": a kv-like server whose `snapshot` never hands its
//! state over. It models a version that crashes, declines or hangs when the host asks for its
//! state, in the middle of a hot swap (the process is paused) or an operator's state read.
//!
//! How `snapshot` misbehaves is a mode of the running process, set by a call:
//!
//! | call                         | reply    | later `snapshot`s                       |
//! |------------------------------|----------|-----------------------------------------|
//! | (none: the mode at start)    |          | panic (a trap)                          |
//! | `{"op":"refuse_snapshot"}`   | `null`   | return `Err("cannot write state")`      |
//! | `{"op":"spin_snapshot"}`     | `null`   | loop forever                            |
//! | `{"op":"trap_snapshot"}`     | `null`   | panic again                             |
//! | `{"op":"allow_snapshot"}`    | `null`   | write the state, as kv does             |
//! | `{"op":"ping"}`              | `"pong"` |                                         |
//!
//! Every other request is kv's (see `kv-core`). The state is kv's, `{"entries":{...}}`, so a
//! kv process swaps to this version with the default code change (the mode starts at trap).
//!
//! The host must handle each mode: after a trap, the process is dead (the WIT says a trap in
//! `snapshot` ends the process) and the swap or state read fails with that reason; after an
//! `Err`, the swap or read is refused with "cannot write state" and the process serves on,
//! its state intact; a spin is cut at the swap's time limit (a swap's, or a state read's), the
//! swap or read refused, and, as an interrupted instance cannot be called again, the process
//! ends.

use hotswap_guest::{GenServer, Pid, json, log};
use kv_core::{AccessLog, Entries};
use serde::{Deserialize, Serialize};

/// How `snapshot` misbehaves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Panic.
    #[default]
    Trap,
    /// Return an error.
    Refuse,
    /// Loop forever.
    Spin,
    /// Write the state, as kv does: a guest that has come round.
    Write,
}

/// The state: kv's entries (all that a state blob would hold, `{"entries":{...}}`), and the
/// mode, which belongs to this instance only.
#[derive(Default, Serialize, Deserialize)]
struct State {
    #[serde(flatten)]
    kv: Entries,
    #[serde(skip)]
    mode: Mode,
}

/// The requests this server adds to kv's.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Own {
    Ping,
    RefuseSnapshot,
    SpinSnapshot,
    TrapSnapshot,
    AllowSnapshot,
}

/// kv, except for `snapshot`.
struct Snapshot;

impl GenServer for Snapshot {
    type State = State;
    const VSN: &'static str = "hostile-snapshot";

    fn init(args: &[u8]) -> Result<State, String> {
        Ok(State {
            kv: Entries::from_init_args(args)?,
            mode: Mode::default(),
        })
    }

    fn handle_call(state: &mut State, request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let mode = match json::decode::<Own>(request) {
            Ok(Own::Ping) => return json::encode("pong"),
            Ok(Own::RefuseSnapshot) => Mode::Refuse,
            Ok(Own::SpinSnapshot) => Mode::Spin,
            Ok(Own::TrapSnapshot) => Mode::Trap,
            Ok(Own::AllowSnapshot) => Mode::Write,
            Err(_) => return state.kv.call(request, AccessLog::Off),
        };
        state.mode = mode;
        json::encode(&())
    }

    fn handle_cast(state: &mut State, message: &[u8]) {
        state.kv.handle_message("cast", message, AccessLog::Off);
    }

    fn handle_info(state: &mut State, message: &[u8]) {
        state
            .kv
            .handle_message("info message", message, AccessLog::Off);
    }

    fn snapshot(state: &State) -> Result<Vec<u8>, String> {
        match state.mode {
            Mode::Trap => panic!(
                "hostile-snapshot traps in snapshot on purpose ({} keys held)",
                state.kv.len()
            ),
            Mode::Refuse => Err("cannot write state".to_owned()),
            Mode::Spin => {
                log::warn("snapshot spins forever, on purpose");
                let mut turns: u64 = 0;
                loop {
                    turns = std::hint::black_box(turns).wrapping_add(1);
                }
            }
            Mode::Write => Ok(state.kv.snapshot()),
        }
    }
}

hotswap_guest::export_process!(Snapshot);
