//! The on-disk cache of compiled components, so that a node's second start loads a guest in
//! milliseconds instead of recompiling it (seconds for a Python or JavaScript guest).
//!
//! An entry is two files named by the component's SHA-256 and the engine's compatibility
//! hash (the wasmtime version and every setting that changes compiled code), so a foreign
//! entry is never even opened: `<name>.cwasm`, the compiled code exactly as wasmtime wrote
//! it, mapped into memory as it is (no copy) when loaded; and `<name>.seal`, written last,
//! with a magic line, the code's length and digest, and the `vsn` the component exported.
//! The digest is XXH3-128 over the two halves of the code, hashed on two threads, then over
//! the two digests. Both are checked before the code is first handed to wasmtime, and again
//! after any write to it (below), so a truncated, corrupted, unsealed or mixed-up entry is
//! detected, dropped and rebuilt, never trusted.
//!
//! Digesting a Python guest's 34 MB of code was half of its cached load (4-5 ms of 8-9 in
//! `load_profile`).
//! So a load that found the code matching its seal remembers the code file's stamp
//! (`file_hashes.rs`: device, inode, size, and modification and change times to the
//! nanosecond), and a later load that finds the same stamp and the same seal digest skips
//! the digest. Any write to the file changes its change time, and a file renamed over it
//! has another inode: such an entry is digested again. A file is remembered only once it
//! had not changed for [`SETTLED`](crate::code::file_hashes::SETTLED) when stamped (a
//! write in the same clock tick as the stamp would not show in it), so the loads right
//! after a compile digest it. What a stamp cannot see is damage that no write made: the
//! disk's own (ext4 keeps no checksum of file data), or data a crash lost while the file's
//! size and times were kept; nor a write whose times were set back, which takes a
//! filesystem without change times (FAT, exFAT, some FUSE ones) or the clock. Deleting the
//! cache directory's `files` makes every entry digested once more.
//!
//! What this does not defend against: someone who can write to the cache directory can put
//! a consistent, malicious entry there (the digest finds accidents, not attacks). The
//! directory is created private (0700); keep it so.

use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use twox_hash::XxHash3_128;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::code::file_hashes::{FileHashes, FileStamp};

const SEAL_MAGIC: &str = "hotswap compiled component v3";

/// Below this, code is hashed on one thread: a thread costs more than it saves.
const PARALLEL_DIGEST_FROM: usize = 4 << 20;

/// The digest of `code` a seal records (see the module doc).
fn digest(code: &[u8]) -> u128 {
    if code.len() < PARALLEL_DIGEST_FROM {
        return XxHash3_128::oneshot(code);
    }
    let (first, second) = code.split_at(code.len() / 2);
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| XxHash3_128::oneshot(first));
        let second = XxHash3_128::oneshot(second);
        let first = first
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first, second)
    });
    let mut halves = [0u8; 32];
    halves[..16].copy_from_slice(&first.to_le_bytes());
    halves[16..].copy_from_slice(&second.to_le_bytes());
    XxHash3_128::oneshot(&halves)
}

/// A cache directory for one engine.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
    /// Files known by their stamps: component files by SHA-256 (for the loader), and the
    /// code files a load found to match their seals, by the seal's digest.
    file_hashes: FileHashes,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the cache.
    Cached,
    /// Compiled now (and written to the cache when there is one).
    Compiled,
}

/// How an entry's code was found to match its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// Its digest was computed now.
    Digested,
    /// This very file, unchanged since by its stamp, matched this seal's digest on an
    /// earlier load.
    KnownByStamp,
}

/// A sound cache entry: the component, and the vsn it was sealed with.
pub struct CachedComponent {
    pub component: Component,
    pub vsn: String,
}

/// What a seal records about the code beside it.
#[derive(Debug, PartialEq, Eq)]
struct Seal {
    length: u64,
    digest: u128,
    vsn: String,
}

impl Seal {
    fn of(code: &[u8], vsn: &str) -> Self {
        Self {
            length: code.len() as u64,
            digest: digest(code),
            vsn: vsn.to_string(),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "{SEAL_MAGIC}\nlength {}\nxxh3-128 {:032x}\nvsn {}\n",
            self.length, self.digest, self.vsn
        )
    }

    fn parse(text: &str) -> Result<Self, &'static str> {
        let mut lines = text.lines();
        if lines.next() != Some(SEAL_MAGIC) {
            return Err("its seal is not a hotswap seal");
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_string)
                .ok_or("its seal is truncated")
        };
        let length = field("length")?
            .parse()
            .map_err(|_| "its seal is damaged")?;
        let digest =
            u128::from_str_radix(&field("xxh3-128")?, 16).map_err(|_| "its seal is damaged")?;
        let vsn = field("vsn")?;
        Ok(Self {
            length,
            digest,
            vsn,
        })
    }
}

impl CompileCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            file_hashes: FileHashes::new(&dir),
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

    /// The index of files known by their stamps, kept in this cache's directory.
    pub fn file_hashes(&self) -> &FileHashes {
        &self.file_hashes
    }

    /// The code file of the entry for a component with SHA-256 `hash`.
    pub fn entry(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_hash))
    }

    fn seal_path(&self, hash: &str) -> PathBuf {
        self.entry(hash).with_extension("seal")
    }

    /// The cached component for `hash`, if a sound, sealed entry exists. A damaged entry is
    /// removed (and reported) so that the caller compiles and rewrites it.
    pub fn load(&self, engine: &Engine, hash: &str) -> Option<CachedComponent> {
        let seal_text = std::fs::read_to_string(self.seal_path(hash)).ok()?;
        let code = self.entry(hash);
        match self.check(&code, &seal_text) {
            Ok((seal, checked)) => {
                tracing::debug!(entry = %code.display(), ?checked, "compile cache hit");
                // SAFETY: the file is what `Engine::precompile_component` wrote for this
                // engine configuration (its name carries the compatibility hash), and its
                // length and digest matched the seal written after it was complete, on this
                // load or on an earlier one with the file unchanged since (by its stamp),
                // so it is neither truncated nor corrupted. wasmtime also checks its own
                // header.
                match unsafe { Component::deserialize_file(engine, &code) } {
                    Ok(component) => Some(CachedComponent {
                        component,
                        vsn: seal.vsn,
                    }),
                    Err(error) => {
                        self.discard(hash, &format!("{error:#}"));
                        None
                    }
                }
            }
            Err(why) => {
                self.discard(hash, why);
                None
            }
        }
    }

    fn check(&self, code: &Path, seal_text: &str) -> Result<(Seal, Checked), &'static str> {
        let seal = Seal::parse(seal_text)?;
        let file = File::open(code).map_err(|_| "its code file is missing")?;
        let stamp = FileStamp::of_open(code, &file);
        let sealed_digest = format!("{:032x}", seal.digest);
        let remembered = stamp
            .as_ref()
            .and_then(|stamp| self.file_hashes.recall(stamp));
        if remembered.as_deref() == Some(sealed_digest.as_str()) {
            return Ok((seal, Checked::KnownByStamp));
        }
        // SAFETY: a read-only private mapping, read only to hash it; a concurrent writer
        // would replace the file by renaming, never change it in place. Not populated up
        // front: the two halves then fault their pages in on two threads, in parallel with
        // hashing (34 MB of Python guest: 7.5 ms for map, populate and digest; 5.5 without).
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }
            .map_err(|_| "its code file cannot be read")?;
        if map.len() as u64 != seal.length {
            return Err("its code is not the length its seal records (truncated?)");
        }
        if digest(&map) != seal.digest {
            return Err("its code does not match its seal's digest (corrupted)");
        }
        if Engine::detect_precompiled(&map).is_none() {
            return Err("its code is not a precompiled wasmtime artifact");
        }
        // Remembered only if the file did not change while it was digested.
        if let Some(stamp) = stamp
            && FileStamp::of_open(code, &file).as_ref() == Some(&stamp)
        {
            self.file_hashes.remember(&stamp, &sealed_digest);
        }
        Ok((seal, Checked::Digested))
    }

    /// Writes `compiled` (from `Engine::precompile_component`) as the code of the entry for
    /// `hash`. The entry is unusable until [`seal`](Self::seal)ed. Failures only cost the
    /// next start a compile, so they are logged, not returned.
    pub fn store(&self, hash: &str, compiled: &[u8]) {
        let _ = std::fs::remove_file(self.seal_path(hash));
        if let Err(error) = self.write(&self.entry(hash), compiled) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write to the compile cache");
        }
    }

    /// Seals the entry for `hash`: its code is `compiled`, and the component exports `vsn`.
    pub fn seal(&self, hash: &str, compiled: &[u8], vsn: &str) {
        let seal = Seal::of(compiled, vsn).to_text();
        if let Err(error) = self.write(&self.seal_path(hash), seal.as_bytes()) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot seal a compile cache entry");
        }
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        // Readers see the old file or the new one, never half of one.
        std::fs::rename(&partial, path)
    }

    fn discard(&self, hash: &str, why: &str) {
        let entry = self.entry(hash);
        tracing::warn!(entry = %entry.display(), why, "compile cache entry is unusable; recompiling");
        let _ = std::fs::remove_file(self.seal_path(hash));
        let _ = std::fs::remove_file(entry);
    }
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::code::file_hashes::SETTLED;

    #[test]
    fn small_code_is_digested_with_the_reference_xxh3_128() {
        // XXH3-128 of no bytes, as the reference implementation gives it: seals written by
        // any implementation of the algorithm stay valid.
        assert_eq!(digest(b""), 0x99aa06d3014798d86001c324468d497f);
    }

    #[test]
    fn the_two_thread_digest_sees_a_change_in_either_half() {
        let mut code: Vec<u8> = (0..PARALLEL_DIGEST_FROM + 4096)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let sealed = digest(&code);
        assert_eq!(digest(&code), sealed, "the same code, the same digest");
        for at in [10, code.len() - 10] {
            code[at] ^= 1;
            assert_ne!(digest(&code), sealed, "a flipped bit at {at}");
            code[at] ^= 1;
        }
        code.pop();
        assert_ne!(digest(&code), sealed, "one byte shorter");
    }

    /// A cache in a fresh directory whose index remembers files that had not changed for
    /// `settled`, with one sealed entry of an empty component; its code file.
    fn cache_with_an_entry(
        test: &str,
        engine: &Engine,
        settled: Duration,
    ) -> (CompileCache, PathBuf) {
        let dir = std::env::temp_dir().join(format!("hotswap-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cache = CompileCache::new(dir.clone(), engine);
        cache.file_hashes = FileHashes::new(&dir).settled_after(settled);
        let code = engine.precompile_component(b"(component)").unwrap();
        cache.store(HASH, &code);
        cache.seal(HASH, &code, "1");
        let entry = cache.entry(HASH);
        (cache, entry)
    }

    const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    /// Longer than a coarse filesystem clock tick, so that a write shows in the stamp.
    const TICK: Duration = Duration::from_millis(20);

    #[test]
    fn a_load_remembers_the_code_it_checked_and_a_later_write_is_checked_again() {
        let engine = Engine::default();
        let (cache, entry) = cache_with_an_entry("cache-verified", &engine, Duration::ZERO);
        let seal_text = std::fs::read_to_string(cache.seal_path(HASH)).unwrap();
        let checked = |cache: &CompileCache| cache.check(&entry, &seal_text).map(|(_, how)| how);
        assert_eq!(checked(&cache), Ok(Checked::Digested));
        assert_eq!(checked(&cache), Ok(Checked::KnownByStamp));
        assert!(cache.load(&engine, HASH).is_some());

        // With the default rule (3 s), a file written just now is not remembered: a write in
        // the same clock tick would not show in its stamp.
        let (strict, fresh) = cache_with_an_entry("cache-strict", &engine, SETTLED);
        let fresh_seal = std::fs::read_to_string(strict.seal_path(HASH)).unwrap();
        for _ in 0..2 {
            let how = strict.check(&fresh, &fresh_seal).map(|(_, how)| how);
            assert_eq!(how, Ok(Checked::Digested));
        }

        // One byte in the middle of the code flipped in place, the length unchanged: the
        // stamp changes, so the code is digested again and found damaged.
        std::thread::sleep(TICK);
        let mut code = std::fs::read(&entry).unwrap();
        let middle = code.len() / 2;
        code[middle] ^= 0xff;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&entry)
            .and_then(|mut file| std::io::Write::write_all(&mut file, &code))
            .unwrap();
        assert_eq!(
            checked(&cache),
            Err("its code does not match its seal's digest (corrupted)")
        );
        assert!(cache.load(&engine, HASH).is_none());
        assert!(!entry.exists(), "the damaged entry is removed");
        std::fs::remove_dir_all(cache.dir()).unwrap();
        std::fs::remove_dir_all(strict.dir()).unwrap();
    }

    #[test]
    fn a_remembered_code_file_under_a_new_seal_is_checked_against_it() {
        let engine = Engine::default();
        let (cache, entry) = cache_with_an_entry("cache-reseal", &engine, Duration::ZERO);
        assert!(cache.load(&engine, HASH).is_some());
        // A seal that records another digest for the same, unchanged code file.
        let other = Seal {
            length: std::fs::metadata(&entry).unwrap().len(),
            digest: 7,
            vsn: "1".into(),
        };
        std::fs::write(cache.seal_path(HASH), other.to_text()).unwrap();
        assert!(cache.load(&engine, HASH).is_none(), "digested, and refused");
        std::fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn seals_round_trip_and_damage_is_named() {
        let seal = Seal::of(b"code", "1");
        assert_eq!(Seal::parse(&seal.to_text()), Ok(seal));
        assert_eq!(
            Seal::parse("garbage"),
            Err("its seal is not a hotswap seal")
        );
        let truncated = format!("{SEAL_MAGIC}\nlength 4\n");
        assert_eq!(Seal::parse(&truncated), Err("its seal is truncated"));
        let damaged = format!("{SEAL_MAGIC}\nlength four\nxxh3-128 0\nvsn 1\n");
        assert_eq!(Seal::parse(&damaged), Err("its seal is damaged"));
    }
}
