//! Turns bytes into a [`ModuleVersion`]: checks that they are a component, compiles them,
//! links them against the host API and checks their exports against the world, then asks
//! the component for its `vsn`. Every refusal names its cause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::ProcessPre;
use crate::code::ModuleVersion;
use crate::code::cache::{CompileCache, Origin};
use crate::code::file_hashes::FileStamp;
use crate::error::LoadError;
use crate::process::context::ProcessContext;
use crate::process::instance::GuestInstance;
use crate::registry::Registry;
use crate::sandbox::Policy;

/// The wasm binary magic, then the version/layer word of a component (`0x0d 0x00 0x01 0x00`)
/// and of a core module (`0x01 0x00 0x00 0x00`).
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];

/// How long a component's `vsn` may take at load time.
const VSN_TIME_LIMIT: Duration = Duration::from_secs(1);

/// Compiles and checks components for one node.
#[derive(Clone)]
pub struct Loader {
    engine: Engine,
    linker: Arc<Linker<ProcessContext>>,
    registry: Arc<Registry>,
    /// Whether the engine compiles guest code to count fuel.
    counts_fuel: bool,
    /// Where compiled components, and the hashes of component files, are kept between
    /// runs; none: compile and hash every time.
    cache: Option<CompileCache>,
}

impl Loader {
    pub(crate) fn new(
        engine: Engine,
        linker: Arc<Linker<ProcessContext>>,
        registry: Arc<Registry>,
        counts_fuel: bool,
        cache: Option<CompileCache>,
    ) -> Self {
        Self {
            engine,
            linker,
            registry,
            counts_fuel,
            cache,
        }
    }

    /// SHA-256 of `bytes`, in hex: the identity of a component.
    pub fn hash(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The SHA-256 recorded for the file `stamp` describes, when the cache remembers it
    /// (see [`FileHashes`](crate::code::file_hashes::FileHashes)): the file need not be
    /// read to be identified.
    pub fn recall(&self, stamp: &FileStamp) -> Option<String> {
        let hash = self.cache.as_ref()?.file_hashes().recall(stamp)?;
        (hash.len() == 64).then_some(hash)
    }

    /// Remembers that the contents `stamp` describes (as [`read_stamped`] read them) hash
    /// to `hash`.
    ///
    /// [`read_stamped`]: crate::code::file_hashes::read_stamped
    pub fn remember(&self, stamp: &FileStamp, hash: &str) {
        if let Some(cache) = &self.cache {
            cache.file_hashes().remember(stamp, hash);
        }
    }

    /// Loads the component with SHA-256 `hash` from the compile cache, without its bytes;
    /// `None` when the cache has no sound entry for it.
    pub async fn load_cached(
        &self,
        name: &str,
        hash: &str,
        source: &str,
    ) -> Result<Option<ModuleVersion>, LoadError> {
        let Some(cache) = self.cache.clone() else {
            return Ok(None);
        };
        let what = format!("{source} (module {name})");
        let started = Instant::now();
        let (engine, key) = (self.engine.clone(), hash.to_string());
        let cached = tokio::task::spawn_blocking(move || cache.load(&engine, &key))
            .await
            .map_err(|e| LoadError::Compile {
                what: what.clone(),
                cause: format!("the cache reader thread failed: {e}"),
            })?;
        let Some(cached) = cached else {
            return Ok(None);
        };
        let compiled = Compiled {
            component: cached.component,
            origin: Origin::Cached,
            cached_vsn: Some(cached.vsn),
            unsealed: None,
        };
        self.finish(name, hash, source, &what, compiled, started)
            .await
            .map(Some)
    }

    /// Loads `bytes`, whose SHA-256 is `hash`, as a version of module `name`. `source`
    /// names where the bytes came from, in errors and reports.
    pub async fn load(
        &self,
        name: &str,
        bytes: Vec<u8>,
        hash: &str,
        source: &str,
    ) -> Result<ModuleVersion, LoadError> {
        let what = format!("{source} (module {name})");
        check_component_header(&bytes, &what)?;

        let started = Instant::now();
        let (engine, cache, key) = (self.engine.clone(), self.cache.clone(), hash.to_string());
        let compiled =
            tokio::task::spawn_blocking(move || compile(&engine, cache.as_ref(), &key, &bytes))
                .await
                .map_err(|e| LoadError::Compile {
                    what: what.clone(),
                    cause: format!("the compiler thread failed: {e}"),
                })?
                .map_err(|e| LoadError::Compile {
                    what: what.clone(),
                    cause: format!("{e:#}"),
                })?;
        self.finish(name, hash, source, &what, compiled, started)
            .await
    }

    /// Links a compiled component, learns its `vsn` (from the seal, or by asking it) and
    /// seals a fresh cache entry.
    async fn finish(
        &self,
        name: &str,
        hash: &str,
        source: &str,
        what: &str,
        compiled: Compiled,
        started: Instant,
    ) -> Result<ModuleVersion, LoadError> {
        let Compiled {
            component,
            origin,
            cached_vsn,
            unsealed,
        } = compiled;
        let compile_time = started.elapsed();

        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::WorldMismatch {
                    what: what.to_string(),
                    cause: format!("{e:#}"),
                })?;
        let pre = ProcessPre::new(instance_pre).map_err(|e| LoadError::WorldMismatch {
            what: what.to_string(),
            cause: format!("{e:#}"),
        })?;

        let unnamed = Arc::new(ModuleVersion {
            name: name.into(),
            vsn: "?".into(),
            hash: hash.to_string(),
            source: source.to_string(),
            compile_time,
            origin,
            counts_fuel: self.counts_fuel,
            pre,
        });
        let vsn = match cached_vsn {
            // Sealed with the entry, when the same bytes were loaded before.
            Some(vsn) => vsn.into(),
            None => self.read_vsn(&unnamed, what).await?,
        };
        if let (Some(cache), Some(code)) = (&self.cache, unsealed) {
            let (cache, hash, vsn) = (cache.clone(), hash.to_string(), vsn.to_string());
            // Sealed before the load returns, so the next load of these bytes is a hit.
            let _ = tokio::task::spawn_blocking(move || cache.seal(&hash, &code, &vsn)).await;
        }
        let compile_time = started.elapsed();
        // The probe instance of `read_vsn` is gone, so `unnamed` has no other owner.
        let unnamed = Arc::try_unwrap(unnamed).map_err(|_| LoadError::Vsn {
            what: what.to_string(),
            cause: "the probe instance outlived its load".into(),
        })?;
        Ok(ModuleVersion {
            vsn,
            compile_time,
            ..unnamed
        })
    }

    /// Instantiates the component once, in a throwaway store, to ask for its `vsn`.
    async fn read_vsn(
        &self,
        version: &Arc<ModuleVersion>,
        what: &str,
    ) -> Result<Arc<str>, LoadError> {
        let policy = Policy::default();
        let mut probe = GuestInstance::instantiate(version, 0, self.registry.clone(), &policy)
            .await
            .map_err(|cause| LoadError::Vsn {
                what: what.to_string(),
                cause,
            })?;
        let vsn = probe
            .vsn(VSN_TIME_LIMIT)
            .await
            .map_err(|trap| LoadError::Vsn {
                what: what.to_string(),
                cause: trap.to_string(),
            })?;
        if vsn.is_empty()
            || vsn.len() > 64
            || vsn.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(LoadError::Vsn {
                what: what.to_string(),
                cause: format!(
                    "{vsn:?} is not a version: use 1 to 64 characters, no spaces or control characters"
                ),
            });
        }
        Ok(vsn.into())
    }
}

/// A compiled component, where it came from, and, from the cache, its `vsn`; when just
/// compiled for a cache, the code to seal once the `vsn` is known.
struct Compiled {
    component: Component,
    origin: Origin,
    cached_vsn: Option<String>,
    unsealed: Option<Vec<u8>>,
}

/// Compiles `bytes`, or takes them from the cache. With a cache, the component is compiled
/// once to its serialized form, written, and loaded from that: never compiled twice.
fn compile(
    engine: &Engine,
    cache: Option<&CompileCache>,
    hash: &str,
    bytes: &[u8],
) -> wasmtime::Result<Compiled> {
    let Some(cache) = cache else {
        return Ok(Compiled {
            component: Component::new(engine, bytes)?,
            origin: Origin::Compiled,
            cached_vsn: None,
            unsealed: None,
        });
    };
    if let Some(cached) = cache.load(engine, hash) {
        return Ok(Compiled {
            component: cached.component,
            origin: Origin::Cached,
            cached_vsn: Some(cached.vsn),
            unsealed: None,
        });
    }
    let compiled = engine.precompile_component(bytes)?;
    cache.store(hash, &compiled);
    // SAFETY: `compiled` was produced just now by this engine's `precompile_component`.
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    Ok(Compiled {
        component,
        origin: Origin::Compiled,
        cached_vsn: None,
        unsealed: Some(compiled),
    })
}

fn check_component_header(bytes: &[u8], what: &str) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        // Text format is accepted by wasmtime's `wat` support, but a component in text form
        // is rare enough that we refuse it as "not wasm" rather than guess.
        return Err(LoadError::NotWasm {
            what: what.to_string(),
        });
    }
    if bytes[6..8] != COMPONENT_LAYER {
        return Err(LoadError::CoreModule {
            what: what.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_name_the_kind_of_file() {
        let err = check_component_header(b"hello world", "x").unwrap_err();
        assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
        let core = b"\0asm\x01\x00\x00\x00";
        let err = check_component_header(core, "x").unwrap_err();
        assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
        let component = b"\0asm\x0d\x00\x01\x00";
        assert!(check_component_header(component, "x").is_ok());
    }
}
