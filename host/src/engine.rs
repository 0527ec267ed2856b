//! The one wasmtime `Engine` of a node, its configuration, and the epoch ticker.
//!
//! Epoch interruption is how the host keeps control of guest code: a background thread
//! advances the engine's epoch every [`EPOCH_TICK`], and each store's deadline callback
//! (set in `process/instance.rs`) either yields to the scheduler or, past the call's time
//! limit, traps. The ticker thread stops when the last `Engine` handle is gone.

use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine};

use crate::error::NodeError;

/// How often the epoch advances: the granularity of time limits and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Builds the engine every process of a node runs on, and starts its epoch ticker.
pub fn new_engine() -> Result<Engine, NodeError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Component-model async (futures, streams) is not part of the contract; leaving it
        // out makes every guest call about 2.5x cheaper.
        .concurrency_support(false)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    let engine = Engine::new(&config).map_err(|e| NodeError::Engine(format!("{e:#}")))?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = thread::Builder::new()
        .name("hotswap-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker no deadline ever fires; that is worth shouting about, but a
        // node that cannot spawn a thread will fail louder elsewhere.
        tracing::error!(error = %e, "cannot start the epoch ticker: guest time limits are off");
    }
}
