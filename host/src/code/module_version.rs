//! One loaded version of a module: its compiled, pre-linked component and its identity.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::ProcessPre;
use crate::code::Origin;
use crate::process::context::ProcessContext;

/// A component that was compiled, linked against the host API and checked against the
/// world; instantiating it is all that is left to make a process (or a swap target).
pub struct ModuleVersion {
    pub name: Arc<str>,
    /// The version the component exports through `vsn`.
    pub vsn: Arc<str>,
    /// SHA-256 of the component's bytes, in hex.
    pub hash: String,
    /// Where the bytes came from (a path), for reports.
    pub source: String,
    /// How long compiling (or reading from the cache) took.
    pub compile_time: Duration,
    /// Whether the compiled code came from the cache.
    pub origin: Origin,
    /// Whether its code was compiled to count fuel (the node's `fuel` option).
    pub(crate) counts_fuel: bool,
    pub(crate) pre: ProcessPre<ProcessContext>,
}

impl ModuleVersion {
    /// The node's engine, which this version was compiled for and instantiates on.
    pub fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// The compiled component, as wasmtime holds it: for measuring what wasmtime alone does
    /// with it on the same engine (`just bench`'s floors), or for tools that inspect it.
    pub fn component(&self) -> &Component {
        self.pre.instance_pre().component()
    }

    /// Whether its code counts fuel (the node's `fuel` option): a store running it must be
    /// given fuel before it can run anything.
    pub fn counts_fuel(&self) -> bool {
        self.counts_fuel
    }

    /// What an operator sees of this version.
    pub fn info(&self) -> ModuleInfo {
        ModuleInfo {
            name: self.name.to_string(),
            vsn: self.vsn.to_string(),
            hash: self.hash.clone(),
            source: self.source.clone(),
            compile_ms: self.compile_time.as_secs_f64() * 1e3,
            cached: self.origin == Origin::Cached,
        }
    }
}

impl std::fmt::Debug for ModuleVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleVersion")
            .field("name", &self.name)
            .field("vsn", &self.vsn)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// A loaded version, as data.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub vsn: String,
    pub hash: String,
    pub source: String,
    pub compile_ms: f64,
    /// Whether the compiled code came from the cache.
    #[serde(default)]
    pub cached: bool,
}
