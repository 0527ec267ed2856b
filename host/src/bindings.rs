//! The Rust side of the WIT contract (`wit/otp`), generated once for the whole host.
//!
//! Exports are async so that a guest that runs long yields to the tokio scheduler at each
//! epoch tick (see `engine.rs`) instead of stalling its worker thread. Imports stay
//! synchronous: every function of `runtime` is cheap and never blocks.

wasmtime::component::bindgen!({
    path: "../wit/otp",
    world: "process",
    exports: { default: async },
});

pub use self::hotswap::otp::runtime::Level;
pub use exports::hotswap::otp::server::Change;
