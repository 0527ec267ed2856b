//! The control endpoint of a running node: JSON lines over TCP on loopback.
//!
//! Each line the client writes is one [`Request`]; the node answers each with one line, a
//! [`Response`]. The CLI (`hotswap call`, `swap`, `ps`, ...) is a client of this endpoint.

mod client;
mod protocol;
mod server;

pub use client::{Client, ClientError};
pub use protocol::{Payload, Request, Response};
pub use server::{ServeError, serve};
