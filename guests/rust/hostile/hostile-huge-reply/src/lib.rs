//! Hostile fixture, vsn "hostile-huge-reply": a guest that answers with a huge reply. It
//! models a plugin that tries to make the host copy (and keep, and send on) more data than it
//! bargained for: the reply is lifted out of the guest's memory into the host's, where the
//! guest's memory limit no longer applies.
//!
//! | call                       | reply                                                  |
//! |----------------------------|--------------------------------------------------------|
//! | `{"op":"ping"}`            | `"pong"`                                               |
//! | `{"op":"reply","mib":N}`   | a JSON string of N MiB of `x` (N × 1,048,576 bytes plus its two quotes) |
//!
//! The reply is built in one buffer of exactly its size, so the guest needs about N MiB of
//! its own memory for it: a reply near or above the memory limit traps in the guest. Below
//! it, what happens is the host's choice: pass it on, or refuse replies above a size limit
//! with an error to the caller. Either way the host must not run out of memory itself, and
//! the process should live on.

use hotswap_guest::{GenServer, Pid, json, log};
use serde::Deserialize;

/// One mebibyte.
const MIB: usize = 1 << 20;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Reply { mib: usize },
}

/// The server with the huge replies. It has no state.
struct HugeReply;

impl GenServer for HugeReply {
    type State = ();
    const VSN: &'static str = "hostile-huge-reply";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Reply { mib } => {
                let len = mib
                    .checked_mul(MIB)
                    .and_then(|len| len.checked_add(2))
                    .ok_or_else(|| format!("{mib} MiB does not fit in this guest's memory"))?;
                log::warn(&format!("replying with {len} bytes, on purpose"));
                let mut reply = Vec::with_capacity(len);
                reply.push(b'"');
                reply.resize(len - 1, b'x');
                reply.push(b'"');
                Ok(reply)
            }
        }
    }
}

hotswap_guest::export_process!(HugeReply);
