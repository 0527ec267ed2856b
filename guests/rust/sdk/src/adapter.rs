//! [`Adapter`]: the generated `Guest` trait of the `server` interface, implemented over a
//! [`GenServer`] and the [`Slot`] its state lives in, which [`Export`] names.
//!
//! This is where the WIT shapes (owned byte vectors, results with string errors, exports that
//! cannot fail) meet the guest's typed callbacks. Failures that the WIT cannot carry (a cast
//! or an info before `init`) are logged at error instead.

use std::marker::PhantomData;

use crate::bindings::exports::hotswap::otp::server::Guest;
use crate::slot::{Slot, SlotError};
use crate::{Change, GenServer, Pid, json, log};

/// What [`export_process!`](crate::export_process) declares for the server it exports: which
/// server, and the thread-local slot its state lives in. Not for direct use.
pub trait Export {
    /// The server exported.
    type Server: GenServer;

    /// Runs `f` on the slot.
    fn with_slot<R>(f: impl FnOnce(&Slot<State<Self>>) -> R) -> R;
}

/// The state of the server that `E` exports.
type State<E> = <<E as Export>::Server as GenServer>::State;

/// The type that [`export_process!`](crate::export_process) exports for a server.
/// Not for direct use.
pub struct Adapter<E>(PhantomData<E>);

impl<E: Export> Adapter<E> {
    /// Runs `f` on the state, for `callback`.
    fn with_state<R>(
        callback: &'static str,
        f: impl FnOnce(&mut State<E>) -> R,
    ) -> Result<R, SlotError> {
        E::with_slot(|slot| slot.with(callback, f))
    }
}

impl<E: Export> Guest for Adapter<E> {
    fn init(args: Vec<u8>) -> Result<(), String> {
        E::with_slot(|slot| slot.fill("init", || E::Server::init(&args)))
    }

    fn handle_call(request: Vec<u8>, caller: Pid) -> Result<Vec<u8>, String> {
        Self::with_state("handle-call", |state| {
            E::Server::handle_call(state, &request, caller)
        })?
    }

    fn handle_cast(message: Vec<u8>) {
        let cast = Self::with_state("handle-cast", |state| {
            E::Server::handle_cast(state, &message)
        });
        if let Err(why) = cast {
            log::error(&why.to_string());
        }
    }

    fn handle_info(message: Vec<u8>) {
        let info = Self::with_state("handle-info", |state| {
            E::Server::handle_info(state, &message)
        });
        if let Err(why) = info {
            log::error(&why.to_string());
        }
    }

    fn terminate(reason: String) {
        match E::with_slot(|slot| slot.take("terminate")) {
            Ok(state) => E::Server::terminate(state, &reason),
            Err(why) => log::error(&why.to_string()),
        }
    }

    fn snapshot() -> Result<Vec<u8>, String> {
        Self::with_state("snapshot", |state| E::Server::snapshot(state))?
    }

    fn code_change(direction: Change, state: Vec<u8>, extra: Vec<u8>) -> Result<(), String> {
        json::note_state_size(state.len());
        E::with_slot(|slot| {
            slot.fill("code-change", || {
                E::Server::code_change(direction, &state, &extra)
            })
        })
    }

    fn vsn() -> String {
        E::Server::VSN.to_owned()
    }
}
