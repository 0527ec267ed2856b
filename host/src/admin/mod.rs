//! The control endpoint of a running node: JSON lines over TCP on loopback.
//!
//! Each line the client writes is one [`Request`]; the node answers each with one line, a
//! [`Response`]. The CLI (`hotswap call`, `swap`, `ps`, ...) is a client of this endpoint.
//! It listens on loopback unless given a token, and every request that changes the node must
//! carry the node's [`Token`].

mod client;
mod protocol;
mod server;
mod token;

pub use client::{Client, ClientError};
pub use protocol::{Envelope, Payload, Request, Response};
pub use server::{ServeError, bind, serve};
pub use token::{Token, token_file};
