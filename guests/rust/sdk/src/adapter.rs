//! [`Adapter`]: the generated `Guest` trait of the `server` interface, implemented over a
//! [`GenServer`] and the state slot (`slot.rs`).
//!
//! This is where the WIT shapes (owned byte vectors, results with string errors, exports that
//! cannot fail) meet the guest's typed callbacks. Failures that the WIT cannot carry (a cast
//! or an info before `init`) are logged at error instead.

use std::marker::PhantomData;

use crate::bindings::exports::hotswap::otp::server::Guest;
use crate::{Change, GenServer, Pid, json, log, slot};

/// The type that [`export_process!`](crate::export_process) exports for a server `S`.
/// Not for direct use.
pub struct Adapter<S>(PhantomData<S>);

impl<S: GenServer> Guest for Adapter<S> {
    fn init(args: Vec<u8>) -> Result<(), String> {
        slot::fill("init", || S::init(&args))
    }

    fn handle_call(request: Vec<u8>, caller: Pid) -> Result<Vec<u8>, String> {
        slot::with("handle-call", |state| {
            S::handle_call(state, &request, caller)
        })?
    }

    fn handle_cast(message: Vec<u8>) {
        if let Err(why) = slot::with("handle-cast", |state| S::handle_cast(state, &message)) {
            log::error(&why.to_string());
        }
    }

    fn handle_info(message: Vec<u8>) {
        if let Err(why) = slot::with("handle-info", |state| S::handle_info(state, &message)) {
            log::error(&why.to_string());
        }
    }

    fn terminate(reason: String) {
        match slot::take("terminate") {
            Ok(state) => S::terminate(state, &reason),
            Err(why) => log::error(&why.to_string()),
        }
    }

    fn snapshot() -> Result<Vec<u8>, String> {
        slot::with("snapshot", |state| S::snapshot(state))?
    }

    fn code_change(direction: Change, state: Vec<u8>, extra: Vec<u8>) -> Result<(), String> {
        json::note_state_size(state.len());
        slot::fill("code-change", || S::code_change(direction, &state, &extra))
    }

    fn vsn() -> String {
        S::VSN.to_owned()
    }
}
