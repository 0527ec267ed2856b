//! The key-value server of the seed, shared by its versions (`kv-v0`, `kv-v1`) and by the
//! test fixtures that model a kv version gone wrong.
//!
//! Requests, replies and the state are JSON:
//!
//! | request                                  | reply                            |
//! |------------------------------------------|----------------------------------|
//! | `{"op":"put","key":"a","value":42}`      | the previous value, or `null`    |
//! | `{"op":"get","key":"a"}`                 | the value, or `null`             |
//! | `{"op":"delete","key":"a"}`              | the removed value, or `null`     |
//! | `{"op":"keys"}`                          | the keys, sorted                 |
//! | `{"op":"count"}`                         | the number of keys               |
//!
//! Anything else is the error `unknown request: <what was wrong>`. A put whose value nests more
//! than [`MAX_VALUE_DEPTH`] (125) arrays and objects is refused with `value nested too deep:
//! ...`: the state holding it could not be read back. As a cast or an info
//! message, `put` and `delete` apply without a reply and anything else is logged and ignored.
//! The state is `{"entries":{"a":42}}` in every version, so the default code change moves
//! between versions in either direction.
//!
//! A version is [`Kv`] with a [`Version`] that names it and says whether it logs accesses;
//! a fixture that must differ in one callback implements `GenServer` itself over [`Entries`].

mod entries;
mod request;
mod server;
mod text_map;

pub use entries::{Entries, Reply};
pub use request::{MAX_VALUE_DEPTH, Request};
pub use server::{AccessLog, Kv, Version};
