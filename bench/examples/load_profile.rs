//! How long a component takes to load from a warm compile cache, twenty times in a row:
//! `cargo run --release -p hotswap-bench --example load_profile -- guests/out/kv_py.wasm`.
//! A focused companion of `just bench`'s loading group, for profiling (`perf record`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use hotswap::{Node, NodeOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let file: PathBuf = std::env::args()
        .nth(1)
        .context("usage: load_profile COMPONENT.wasm")?
        .into();
    let cache = std::env::temp_dir().join("hotswap-load-profile-cache");
    for run in 0..20 {
        // A node per load, as a node's second start would be.
        let node = Node::with_options(NodeOptions {
            cache_dir: Some(cache.clone()),
            ..NodeOptions::default()
        })?;
        let started = Instant::now();
        let version = node.load_file("kv", &file).await?;
        eprintln!("{run:>2}: {:?} ({:?})", started.elapsed(), version.origin);
    }
    Ok(())
}
