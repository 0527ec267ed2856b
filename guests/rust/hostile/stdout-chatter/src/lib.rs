//! Hostile fixture, vsn "stdout-chatter": a guest that writes to its standard output and
//! error (`wasi:cli/stdout`, `wasi:cli/stderr`) instead of the host's `log`. It models a
//! plugin ported from a program that prints, or one that tries to flood the node's terminal
//! or log, or to forge log lines.
//!
//! | call                                        | reply                                   |
//! |---------------------------------------------|-----------------------------------------|
//! | `{"op":"ping"}`                             | `"pong"`                                |
//! | `{"op":"print","text":"hi"}`                | `null`, after `hi` + newline to stdout, then to stderr |
//! | `{"op":"print","text":"hi","repeat":1000}`  | the same, 1,000 times over (a flood)    |
//!
//! It writes as `println!` and `eprintln!` do (one line each, with a newline), but through
//! `writeln!`, so that a closed stream is an `Err` reply naming it rather than the panic
//! (trap) that `println!` would make of it.
//!
//! The host is expected to route the guest's stdout and stderr to its log (`tracing`), one
//! event per line, tagged with the process's pid, module and vsn, or to discard them; never
//! to the node's own terminal unmarked, and never so that a guest's bytes become log lines
//! that look like the node's own.

use std::io::Write;

use hotswap_guest::{GenServer, Pid, json};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Print {
        text: String,
        #[serde(default = "once")]
        repeat: u64,
    },
}

/// The default of `repeat`.
fn once() -> u64 {
    1
}

/// The chattering server. It has no state.
struct Chatter;

impl GenServer for Chatter {
    type State = ();
    const VSN: &'static str = "stdout-chatter";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Print { text, repeat } => {
                let mut stdout = std::io::stdout().lock();
                let mut stderr = std::io::stderr().lock();
                for _ in 0..repeat {
                    writeln!(stdout, "{text}")
                        .map_err(|why| format!("cannot write to stdout: {why}"))?;
                    writeln!(stderr, "{text}")
                        .map_err(|why| format!("cannot write to stderr: {why}"))?;
                }
                stdout
                    .flush()
                    .map_err(|why| format!("cannot flush stdout: {why}"))?;
                json::encode(&())
            }
        }
    }
}

hotswap_guest::export_process!(Chatter);
