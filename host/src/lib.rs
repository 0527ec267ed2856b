//! hotswap: Erlang/OTP-style hot code swapping for WebAssembly components.
//!
//! A [`Node`] runs processes: each one an instance of a Wasm component (a gen_server whose
//! callbacks are the exports of `wit/otp`), in its own wasmtime `Store`, driven by one tokio
//! task and fed by one bounded mailbox. [`Node::swap_file`] moves a running process to a new
//! version of its component without a restart: the new instance is made first, then, between
//! two messages, the old instance's `snapshot` goes to the new one's `code-change`, and the
//! mailbox feeds the new instance only if that succeeded. Otherwise the old one serves on.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use hotswap::{Node, Policy, ProcessRef, SpawnSpec, SwapOptions};
//!
//! let node = Node::new(Policy::default())?;
//! node.load_file("kv", "guests/rust/target/wasm32-wasip2/release/kv_v0.wasm").await?;
//! node.spawn(SpawnSpec::new("kv").name("kv")).await?;
//! let kv = ProcessRef::from("kv");
//! let put = br#"{"op":"put","key":"a","value":42}"#.to_vec();
//! node.call(&kv, put, Duration::from_secs(5)).await?;
//! let report = node
//!     .swap_file(&kv, "guests/rust/target/wasm32-wasip2/release/kv_v1.wasm", SwapOptions::default())
//!     .await?;
//! println!("{} -> {} in {:?}", report.from_vsn, report.to_vsn, report.pause);
//! let get = br#"{"op":"get","key":"a"}"#.to_vec();
//! assert_eq!(node.call(&kv, get, Duration::from_secs(5)).await?, b"42");
//! # Ok(())
//! # }
//! ```

pub mod admin;
mod bindings;
pub mod code;
pub mod config;
mod engine;
pub mod error;
mod node;
mod optimistic_swap;
pub mod process;
mod registry;
pub mod release;
mod runtime_api;
pub mod sandbox;
pub mod swap;

pub use code::ModuleVersion;
pub use engine::Allocation;
pub use error::{CallError, ControlError, LoadError, NodeError, SpawnError, SwapError};
pub use node::{Node, NodeOptions, SpawnSpec};
pub use process::{ExitReason, OUTSIDE, Pid, ProcessHandle, ProcessInfo};
pub use registry::{NodeId, ProcessRef};
pub use release::{Release, ReleaseError, ReleaseReport};
pub use sandbox::Policy;
pub use swap::{Direction, SwapOptions, SwapReport};
