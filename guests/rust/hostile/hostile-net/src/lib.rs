//! Hostile fixture, vsn "hostile-net": a guest that reaches for the network through Rust's
//! `std::net` (which, on `wasm32-wasip2`, is `wasi:sockets`). It models a plugin that phones
//! home, scans the host's loopback services (the node's own control port among them), opens a
//! listening port, or leaks data through name lookups.
//!
//! | call                                                    | reply                                 |
//! |---------------------------------------------------------|---------------------------------------|
//! | `{"op":"ping"}`                                         | `"pong"`                              |
//! | `{"op":"connect","addr":"127.0.0.1:7420"}`              | `"connected to ... from ..."`         |
//! | `{"op":"connect","addr":"127.0.0.1:7420","data":"hi"}`  | the same, after writing `data`        |
//! | `{"op":"listen","addr":"127.0.0.1:0"}`                  | `"listening on ..."` (then closes it) |
//! | `{"op":"resolve","host":"localhost"}`                   | the addresses, as strings             |
//!
//! Every failure is an `Err` reply carrying the operating system's text (`cannot connect to
//! ...: ...`), never a trap, so that a test sees the access was denied and that the process
//! lives on. `resolve` looks up `host` with port 0.
//!
//! The host grants no network by default: then `connect`, `listen` and `resolve` must all
//! fail. With an address granted, only that address may be reached.

use std::io::Write;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};

use hotswap_guest::{GenServer, Pid, json};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Connect {
        addr: String,
        #[serde(default)]
        data: Option<String>,
    },
    Listen {
        addr: String,
    },
    Resolve {
        host: String,
    },
}

/// The network-probing server. It has no state.
struct Net;

impl GenServer for Net {
    type State = ();
    const VSN: &'static str = "hostile-net";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Connect { addr, data } => json::encode(&connect(&addr, data.as_deref())?),
            Request::Listen { addr } => {
                let listener = TcpListener::bind(&addr)
                    .map_err(|why| format!("cannot listen on {addr}: {why}"))?;
                let local = listener
                    .local_addr()
                    .map_err(|why| format!("listening on {addr}, at no address: {why}"))?;
                json::encode(&format!("listening on {local}"))
            }
            Request::Resolve { host } => {
                let found = (host.as_str(), 0)
                    .to_socket_addrs()
                    .map_err(|why| format!("cannot resolve {host:?}: {why}"))?;
                let found: Vec<String> = found.map(|addr| addr.ip().to_string()).collect();
                json::encode(&found)
            }
        }
    }
}

/// Connects to `addr`, writes `data` if given, and says who is connected to whom.
fn connect(addr: &str, data: Option<&str>) -> Result<String, String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|why| format!("cannot connect to {addr}: {why}"))?;
    if let Some(data) = data {
        stream
            .write_all(data.as_bytes())
            .map_err(|why| format!("connected to {addr}, cannot write: {why}"))?;
    }
    let peer = stream
        .peer_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    let local = stream
        .local_addr()
        .map_or_else(|why| format!("? ({why})"), |a| a.to_string());
    Ok(format!("connected to {peer} from {local}"))
}

hotswap_guest::export_process!(Net);
