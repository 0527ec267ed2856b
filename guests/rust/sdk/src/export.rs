//! [`export_process!`]: the one macro a guest crate calls, to export its [`GenServer`] as the
//! component's `hotswap:otp/server` implementation.
//!
//! It expands wit-bindgen's export macro in the guest's crate (so the `export_name` functions
//! and the custom section describing the world land in the guest's `cdylib`), pointing it at
//! this crate's bindings, with the guest's server wrapped in the SDK's
//! [`Adapter`](crate::Adapter). Beside it, it declares the thread-local
//! [`Slot`](crate::Slot) that holds the server's state, typed with that state, so that the
//! state is kept in place rather than boxed.
//!
//! [`GenServer`]: crate::GenServer

/// Exports a [`GenServer`](crate::GenServer) as this component's process. Call it once, at
/// the top level of a `cdylib` crate:
///
/// ```no_run
/// # use hotswap_guest::{GenServer, Pid};
/// # struct Echo;
/// # impl GenServer for Echo {
/// #     type State = ();
/// #     const VSN: &'static str = "1";
/// #     fn init(_: &[u8]) -> Result<(), String> { Ok(()) }
/// #     fn handle_call(_: &mut (), request: &[u8], _: Pid) -> Result<Vec<u8>, String> {
/// #         Ok(request.to_vec())
/// #     }
/// # }
/// hotswap_guest::export_process!(Echo);
/// ```
///
/// The argument is any type path, generics included (`export_process!(Kv<V1>)`).
#[macro_export]
macro_rules! export_process {
    ($server:ty) => {
        const _: () = {
            struct __HotswapGuestServer;
            ::std::thread_local! {
                static HOTSWAP_GUEST_STATE: $crate::Slot<<$server as $crate::GenServer>::State> =
                    const { $crate::Slot::new() };
            }
            impl $crate::Export for __HotswapGuestServer {
                type Server = $server;
                fn with_slot<R>(
                    f: impl FnOnce(&$crate::Slot<<$server as $crate::GenServer>::State>) -> R,
                ) -> R {
                    HOTSWAP_GUEST_STATE.with(f)
                }
            }
            type __HotswapGuestProcess = $crate::Adapter<__HotswapGuestServer>;
    $crate::bindings::export!(__HotswapGuestProcess with_types_in $crate::bindings);
        };
    };
}
