//! The Rust guest SDK of hotswap: write a process as a [`GenServer`], export it with
//! [`export_process!`], build it to `wasm32-wasip2`, and the result is a component of the
//! `hotswap:otp/process` world that a hotswap node can spawn and hot swap.
//!
//! A process is one instance of a component. The node calls the `server` exports one at a time
//! (`init` or `code-change` first, then `handle-call`, `handle-cast`, `handle-info`, `snapshot`,
//! `terminate`), and between two calls the instance is idle. This crate owns the generated
//! bindings, keeps the process's state between calls, and turns that state into bytes and back
//! for hot swaps, so that a guest writes only its callbacks, over a typed state:
//!
//! ```no_run
//! use hotswap_guest::{GenServer, Pid, json};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Count {
//!     hits: u64,
//! }
//!
//! struct Counter;
//!
//! impl GenServer for Counter {
//!     type State = Count;
//!     const VSN: &'static str = "1";
//!
//!     fn init(_args: &[u8]) -> Result<Count, String> {
//!         Ok(Count { hits: 0 })
//!     }
//!
//!     fn handle_call(state: &mut Count, _request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
//!         state.hits += 1;
//!         json::encode(&state.hits)
//!     }
//! }
//!
//! hotswap_guest::export_process!(Counter);
//! ```
//!
//! The state is serialised with `serde_json` by default ([`GenServer::snapshot`]), and a new
//! version adopts a state of the same shape by default ([`GenServer::code_change`]); override
//! either to change the format or to migrate between shapes.
//!
//! The host API of the world is wrapped in plain functions: [`log`], [`self_pid`],
//! [`whereis`], [`send`], [`send_after`] and [`cancel_timer`].

pub mod bindings;

mod adapter;
mod change;
mod export;
mod gen_server;
pub mod json;
pub mod log;
mod runtime;
mod slot;

#[doc(hidden)]
pub use adapter::{Adapter, Export};
pub use bindings::hotswap::otp::types::{Change, Pid};
pub use gen_server::GenServer;
pub use runtime::{TimerRef, cancel_timer, self_pid, send, send_after, whereis};
#[doc(hidden)]
pub use slot::Slot;
