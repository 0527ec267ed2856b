//! The kv gen_server: its callbacks in terms of [`Entries`], and [`Kv`], the `GenServer` that
//! every released kv version is, told apart by a [`Version`].
//!
//! The callbacks are also public methods of [`Entries`] ([`call`](Entries::call),
//! [`handle_message`](Entries::handle_message), [`snapshot`](Entries::snapshot)) so that a
//! fixture which differs from kv in one callback writes only that one. A fixture that leaves
//! `snapshot` to the SDK's default writes the same bytes, through serde, more slowly.

use std::marker::PhantomData;

use hotswap_guest::{GenServer, Pid, json, log};

use crate::{Entries, Reply, Request};

/// Whether a version writes an access line for every get and put (what kv v1 added to v0):
/// `get a -> 42`, `put a = 42`, at info level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// No line per request.
    Off,
    /// One info line for each get and each put, calls and casts alike.
    On,
}

/// What tells one released kv version from another.
pub trait Version {
    /// The version's name, as the node reports it.
    const VSN: &'static str;
    /// Whether it logs accesses.
    const ACCESS_LOG: AccessLog;
}

/// The kv server, in version `V`. A guest crate exports it with
/// `hotswap_guest::export_process!(kv_core::Kv<MyVersion>)`.
pub struct Kv<V>(PhantomData<V>);

impl<V: Version> GenServer for Kv<V> {
    type State = Entries;
    const VSN: &'static str = V::VSN;

    fn init(args: &[u8]) -> Result<Entries, String> {
        Entries::from_init_args(args)
    }

    fn handle_call(state: &mut Entries, request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        state.call(request, V::ACCESS_LOG)
    }

    fn handle_cast(state: &mut Entries, message: &[u8]) {
        state.handle_message("cast", message, V::ACCESS_LOG);
    }

    fn handle_info(state: &mut Entries, message: &[u8]) {
        state.handle_message("info message", message, V::ACCESS_LOG);
    }

    fn snapshot(state: &Entries) -> Result<Vec<u8>, String> {
        Ok(state.snapshot())
    }
}

impl Entries {
    /// kv's `handle_call`: parses `request`, carries it out, replies with JSON.
    pub fn call(&mut self, request: &[u8], access_log: AccessLog) -> Result<Vec<u8>, String> {
        let request = Request::parse(request)?;
        self.serve(request, access_log)?.to_json()
    }

    /// kv's `handle_cast` and `handle_info` (`kind` names which, for the log): a `put` or a
    /// `delete` applies, anything else is logged at warn and ignored.
    pub fn handle_message(&mut self, kind: &str, message: &[u8], access_log: AccessLog) {
        match Request::parse(message) {
            Ok(request) if request.is_mutation() => {
                if let Err(why) = self.serve(request, access_log) {
                    log::warn(&format!("ignoring the {kind}: {why}"));
                }
            }
            Ok(_) => log::warn(&format!(
                "ignoring the {kind} {}: only put and delete apply without a reply",
                json::describe(message)
            )),
            Err(why) => log::warn(&format!("ignoring the {kind}: {why}")),
        }
    }

    /// Carries out `request`, writing its access line if `access_log` says so.
    fn serve(&mut self, request: Request, access_log: AccessLog) -> Result<Reply<'_>, String> {
        match request {
            Request::Get { key } if access_log == AccessLog::On => {
                let reply = self.apply(Request::Get { key: key.clone() })?;
                let value = reply.json()?;
                log::info(&format!("get {key} -> {}", String::from_utf8_lossy(&value)));
                Ok(reply)
            }
            Request::Put { key, value } if access_log == AccessLog::On => {
                log::info(&format!("put {key} = {value}"));
                self.apply(Request::Put { key, value })
            }
            request => self.apply(request),
        }
    }

    /// kv's `snapshot`: the state as JSON, written by [`Entries::write_json`] into a buffer of
    /// exactly its size. A state just adopted from a kv (serde_json's spelling) is as long as
    /// the one its `code-change` read, whose buffer the guest freed: the allocator hands that
    /// back, its pages already in memory, where a larger buffer took fresh pages and faulted
    /// them in during the swap's pause (about 0.9 ms for 1 MiB).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json_len());
        self.write_json(&mut out);
        out
    }
}
