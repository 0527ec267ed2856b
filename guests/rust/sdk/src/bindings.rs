//! The bindings generated from the contract, `wit/otp` (world `hotswap:otp/process`).
//!
//! This is the one `generate!` call of the Rust guests: every guest crate links this module
//! through the SDK instead of generating its own, so all of them agree on one ABI glue.
//! The export macro is public so that [`export_process!`](crate::export_process) can expand it
//! in the guest's crate, where the `#[export_name]` functions and the custom section that
//! describes the world must end up.
//!
//! Guests rarely need this module: [`GenServer`](crate::GenServer) and the wrappers of the
//! host API cover the world. It stays public as an escape hatch.

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "process",
    path: "../../../wit/otp",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "::hotswap_guest::bindings",
});
