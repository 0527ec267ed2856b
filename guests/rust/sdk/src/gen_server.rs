//! [`GenServer`]: the callbacks a guest writes, one per export of the `server` interface.
//!
//! It mirrors OTP's `gen_server` behaviour. The callbacks are associated functions that get the
//! state passed in, rather than methods on `self`, because the state is what survives a hot
//! swap: the SDK owns it between calls, hands it to each callback, and serialises it for the
//! next version. The implementing type itself carries nothing; it only names the server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Change, Pid, json, log};

/// A gen_server: a state, and the callbacks that act on it.
///
/// Exported with [`export_process!`](crate::export_process). Only [`init`](Self::init) and
/// [`handle_call`](Self::handle_call) are required; the other callbacks have defaults that
/// suit a server whose state is JSON and which ignores casts and info messages.
///
/// A callback that panics traps: the node kills the process (and, during a hot swap, refuses
/// the swap and keeps the old version). Report a caller's mistake as an `Err` instead.
pub trait GenServer {
    /// Everything the process remembers between two calls, and what a hot swap hands over.
    type State: Serialize + DeserializeOwned + 'static;

    /// This version's name, such as `"1"`: what the node reports as the loaded version, and
    /// what the next version's [`code_change`](Self::code_change) is told it is leaving.
    const VSN: &'static str;

    /// Builds the state of a freshly spawned process from its spawn arguments. An error aborts
    /// the spawn and is given to the spawner. Not called on a hot swap.
    fn init(args: &[u8]) -> Result<Self::State, String>;

    /// Answers a synchronous request from `caller` (0 when the caller is outside the node).
    /// An error is a reply too: the caller gets it, and the process lives on.
    fn handle_call(state: &mut Self::State, request: &[u8], caller: Pid)
    -> Result<Vec<u8>, String>;

    /// Handles an asynchronous request. The default logs it at warn and ignores it.
    fn handle_cast(state: &mut Self::State, message: &[u8]) {
        let _ = state;
        log::warn(&format!("ignoring a cast: {}", json::describe(message)));
    }

    /// Handles any other message: what processes [`send`](crate::send), and timers firing.
    /// The default logs it at warn and ignores it.
    fn handle_info(state: &mut Self::State, message: &[u8]) {
        let _ = state;
        log::warn(&format!(
            "ignoring an info message: {}",
            json::describe(message)
        ));
    }

    /// Called when the process is stopped on purpose, with the reason; the state is dropped
    /// afterwards. Not called after a trap. The default does nothing.
    fn terminate(state: Self::State, reason: &str) {
        let _ = (state, reason);
    }

    /// The state as bytes, for a hot swap, hibernation or an operator's inspection. Must not
    /// change the state. The default is the state as JSON.
    ///
    /// An error refuses the swap (or the state read): the process keeps running on this
    /// version, and the node reports the message.
    fn snapshot(state: &Self::State) -> Result<Vec<u8>, String> {
        json::encode_state(state)
    }

    /// Adopts `state`, written by the [`snapshot`](Self::snapshot) of the version being left,
    /// on a fresh instance of this version (instead of [`init`](Self::init)). `extra` is the
    /// operator's free-form argument to the swap, empty when none was given. An error refuses
    /// the change: the old version keeps serving, untouched.
    ///
    /// The default adopts a JSON state of the same shape, whatever the direction and `extra`,
    /// and says what did not parse otherwise.
    fn code_change(direction: Change, state: &[u8], extra: &[u8]) -> Result<Self::State, String> {
        let _ = extra;
        json::decode(state).map_err(|why| {
            format!(
                "{direction} to vsn {:?}: the state does not parse: {why}",
                Self::VSN
            )
        })
    }
}
