//! Hostile fixture, vsn "hostile-flood": a guest that floods another process's mailbox with
//! `send`. It models a plugin that tries to drown a neighbour (or the node's memory) in
//! messages.
//!
//! | call or cast                                          | what it does                      |
//! |-------------------------------------------------------|-----------------------------------|
//! | `{"op":"ping"}`                                       | replies `"pong"`                  |
//! | `{"op":"flood","to":"kv","count":10000}`              | sends 10,000 messages to the process registered as `kv` (or to a pid: `"to":7`); replies `{"sent":S,"refused":R,"first_error":E}` |
//! | `{"op":"flood","to":"kv","count":10,"message":M}`     | the same, each message being `M` as JSON (`null` when left out) |
//! | `{"op":"received"}`                                   | replies how many info messages it has received |
//! | `{"op":"sleep","ms":2000}`                            | sleeps, then replies `null`: a cast of it makes a slow target whose mailbox fills |
//!
//! Every send is tried, whatever the ones before did: `sent` + `refused` = `count`, and
//! `first_error` is the host's reason for the first refusal (`null` if none). A refused send
//! is counted, never a trap. The flooder's own messages arrive at a target of this same
//! fixture as info messages and are counted by `received`, so a test can check that exactly
//! `sent` arrived.
//!
//! The host must refuse sends to a full mailbox (its capacity is a per-process limit) with an
//! error to the sender, deliver the rest in order, and keep the target serving its callers.

use std::time::Duration;

use hotswap_guest::{GenServer, Pid, json, log};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Flood {
        to: Target,
        count: u64,
        #[serde(default)]
        message: Value,
    },
    Received,
    Sleep {
        ms: u64,
    },
}

/// Whom to flood: a registered name or a pid.
#[derive(Deserialize)]
#[serde(untagged)]
enum Target {
    Pid(Pid),
    Name(String),
}

/// What a flood did.
#[derive(Serialize)]
struct Outcome {
    sent: u64,
    refused: u64,
    first_error: Option<String>,
}

/// The flooder's state: how many info messages it has received.
#[derive(Default, Serialize, Deserialize)]
struct Counts {
    received: u64,
}

/// The flooding server.
struct Flood;

impl GenServer for Flood {
    type State = Counts;
    const VSN: &'static str = "hostile-flood";

    fn init(_args: &[u8]) -> Result<Counts, String> {
        Ok(Counts::default())
    }

    fn handle_call(counts: &mut Counts, request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        match parse(request)? {
            Request::Ping => json::encode("pong"),
            Request::Flood { to, count, message } => {
                json::encode(&flood(&to, count, &json::encode(&message)?)?)
            }
            Request::Received => json::encode(&counts.received),
            Request::Sleep { ms } => {
                std::thread::sleep(Duration::from_millis(ms));
                json::encode(&())
            }
        }
    }

    fn handle_cast(_counts: &mut Counts, message: &[u8]) {
        match parse(message) {
            Ok(Request::Sleep { ms }) => std::thread::sleep(Duration::from_millis(ms)),
            Ok(Request::Flood { to, count, message }) => {
                let outcome = json::encode(&message).and_then(|m| flood(&to, count, &m));
                match outcome {
                    Ok(o) => log::info(&format!(
                        "flooded: {} sent, {} refused, first error {:?}",
                        o.sent, o.refused, o.first_error
                    )),
                    Err(why) => log::warn(&why),
                }
            }
            Ok(_) => log::warn("ignoring a cast: only sleep and flood apply without a reply"),
            Err(why) => log::warn(&format!("ignoring the cast: {why}")),
        }
    }

    fn handle_info(counts: &mut Counts, _message: &[u8]) {
        counts.received += 1;
    }
}

/// Parses a request; the error names what was wrong.
fn parse(request: &[u8]) -> Result<Request, String> {
    json::decode(request).map_err(|why| format!("unknown request: {why}"))
}

/// Sends `message` `count` times to `to`, counting what the host accepts and refuses.
fn flood(to: &Target, count: u64, message: &[u8]) -> Result<Outcome, String> {
    let pid = match to {
        Target::Pid(pid) => *pid,
        Target::Name(name) => hotswap_guest::whereis(name)
            .ok_or_else(|| format!("no process is registered as {name:?}"))?,
    };
    log::warn(&format!(
        "flooding pid {pid} with {count} messages, on purpose"
    ));
    let mut outcome = Outcome {
        sent: 0,
        refused: 0,
        first_error: None,
    };
    for _ in 0..count {
        match hotswap_guest::send(pid, message) {
            Ok(()) => outcome.sent += 1,
            Err(why) => {
                outcome.refused += 1;
                outcome.first_error.get_or_insert(why);
            }
        }
    }
    Ok(outcome)
}

hotswap_guest::export_process!(Flood);
