//! The on-disk cache of compiled components, so that a node's second start loads a guest in
//! milliseconds instead of recompiling it (seconds for a Python or JavaScript guest).
//!
//! An entry is named by the component's SHA-256 and the engine's compatibility hash (the
//! wasmtime version and every setting that changes compiled code), so a foreign entry is
//! never even opened. Each file starts with a magic line and the SHA-256 of the compiled
//! code that follows; both are checked before the code is handed to wasmtime, so a
//! truncated, corrupted or mixed-up file is detected, dropped and rebuilt, never trusted.
//!
//! What this does not defend against: someone who can write to the cache directory can put
//! a consistent, malicious entry there. The directory is created private (0700); keep it so.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"hotswap compiled component v1\n";
const DIGEST_LEN: usize = 32;

/// A cache directory for one engine.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the cache.
    Cached,
    /// Compiled now (and written to the cache when there is one).
    Compiled,
}

impl CompileCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
        }
    }

    /// The default place: `$XDG_CACHE_HOME/hotswap`, else `~/.cache/hotswap`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .map(|base| base.join("hotswap"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for a component with SHA-256 `hash` lives.
    pub fn entry(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_hash))
    }

    /// The cached component for `hash`, if a sound entry exists. A damaged entry is
    /// removed (and reported) so that the caller compiles and rewrites it.
    pub fn load(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.entry(hash);
        let bytes = std::fs::read(&path).ok()?;
        match check(&bytes) {
            Ok(code) => {
                // SAFETY: `code` is exactly what `Engine::precompile_component` wrote for
                // this engine configuration (the entry's name carries the compatibility
                // hash), and its SHA-256 matched the one written beside it, so it is not
                // truncated or corrupted. wasmtime also checks its own header.
                match unsafe { Component::deserialize(engine, code) } {
                    Ok(component) => Some(component),
                    Err(error) => {
                        self.discard(&path, &format!("{error:#}"));
                        None
                    }
                }
            }
            Err(why) => {
                self.discard(&path, why);
                None
            }
        }
    }

    /// Writes `compiled` (from `Engine::precompile_component`) as the entry for `hash`.
    /// Failures only cost the next start a compile, so they are logged, not returned.
    pub fn store(&self, hash: &str, compiled: &[u8]) {
        if let Err(error) = self.write(hash, compiled) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write to the compile cache");
        }
    }

    fn write(&self, hash: &str, compiled: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let path = self.entry(hash);
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let mut file = Vec::with_capacity(MAGIC.len() + DIGEST_LEN + compiled.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&Sha256::digest(compiled));
        file.extend_from_slice(compiled);
        std::fs::write(&partial, &file)?;
        // Readers see the old entry or the new one, never half of one.
        std::fs::rename(&partial, &path)
    }

    fn discard(&self, path: &Path, why: &str) {
        tracing::warn!(entry = %path.display(), why, "compile cache entry is unusable; recompiling");
        let _ = std::fs::remove_file(path);
    }
}

/// The compiled code of a cache file, if its header and digest are sound.
fn check(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a hotswap cache file")?;
    if rest.len() < DIGEST_LEN {
        return Err("truncated");
    }
    let (digest, code) = rest.split_at(DIGEST_LEN);
    if Sha256::digest(code).as_slice() != digest {
        return Err("its checksum does not match (corrupted or truncated)");
    }
    if Engine::detect_precompiled(code).is_none() {
        return Err("not a precompiled wasmtime artifact");
    }
    Ok(code)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_told_apart() {
        assert_eq!(check(b"garbage").unwrap_err(), "not a hotswap cache file");
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&[0; 10]);
        assert_eq!(check(&file).unwrap_err(), "truncated");
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(b"code"));
        file.extend_from_slice(b"cod3");
        assert!(check(&file).unwrap_err().contains("checksum"));
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(b"code"));
        file.extend_from_slice(b"code");
        assert_eq!(
            check(&file).unwrap_err(),
            "not a precompiled wasmtime artifact"
        );
    }
}
