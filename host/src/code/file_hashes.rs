//! Remembers the SHA-256 of component files by what `stat` says of them, so that loading an
//! unchanged file again (a node's second start, a swap to a file already loaded) costs a
//! `stat` instead of reading and hashing it: 25 ms for an 18 MB Python guest, most of a
//! cached load. This is what git's index and ccache's direct mode do.
//!
//! A file is known by its canonical path, device, inode, size, and modification and change
//! times to the nanosecond. Any write to the file changes its change time, which no
//! unprivileged program can set back; a file replaced by a rename has a new inode. The one
//! gap is a write within the same timestamp tick as the read that was hashed (filesystem
//! clocks tick in milliseconds, some in seconds): a file is remembered only when its change
//! time is [`SETTLED`] in the past, and only if `stat` says the same before and after it was
//! read. An unsettled file is hashed on every load, as if there were no index.
//!
//! The entries live beside the compiled code in the cache directory (private, 0700); a
//! damaged or unreadable entry is a miss.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::xxh3_128;

const ENTRY_MAGIC: &str = "hotswap file hash v1";

/// How long ago a file must have last changed to be remembered: more than the coarsest
/// timestamp tick of a common filesystem (FAT's 2 s).
pub const SETTLED: Duration = Duration::from_secs(3);

/// The index, in `<cache dir>/files`.
#[derive(Debug, Clone)]
pub struct FileHashes {
    dir: PathBuf,
    settled: Duration,
}

/// What `stat` says of a file, as far as its contents go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    path: PathBuf,
    stamp: String,
    changed: SystemTime,
}

impl FileStamp {
    /// Stamps the file at `path` (canonicalized, so that two spellings share an entry).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let path = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&path)?;
        let stamp = format!(
            "{} {} {} {}.{:09} {}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        let changed = u64::try_from(meta.ctime())
            .ok()
            .and_then(|secs| {
                UNIX_EPOCH.checked_add(Duration::new(
                    secs,
                    meta.ctime_nsec().clamp(0, 999_999_999) as u32,
                ))
            })
            // Before 1970: treat as changing now, so it is never remembered.
            .unwrap_or_else(SystemTime::now);
        Ok(Self {
            path,
            stamp,
            changed,
        })
    }

    /// Whether the file last changed at least `settled` ago.
    fn is_settled(&self, settled: Duration) -> bool {
        SystemTime::now()
            .duration_since(self.changed)
            .is_ok_and(|age| age >= settled)
    }

    fn entry_text(&self, hash: &str) -> String {
        format!(
            "{ENTRY_MAGIC}\n{}\n{}\n{hash}\n",
            self.stamp,
            self.path.display()
        )
    }
}

impl FileHashes {
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("files"),
            settled: SETTLED,
        }
    }

    fn entry(&self, path: &Path) -> PathBuf {
        let key = xxh3_128(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{key:032x}"))
    }

    /// The SHA-256 recorded for a file with exactly this stamp, if any.
    pub fn recall(&self, stamp: &FileStamp) -> Option<String> {
        let text = std::fs::read_to_string(self.entry(&stamp.path)).ok()?;
        let mut lines = text.lines();
        let hash = (lines.next() == Some(ENTRY_MAGIC)
            && lines.next() == Some(stamp.stamp.as_str())
            && lines.next() == Some(stamp.path.display().to_string().as_str()))
        .then(|| lines.next())
        .flatten()?;
        let is_sha256 = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        is_sha256.then(|| hash.to_string())
    }

    /// Records `hash` for the file that `before` stamped, if it has settled and `stat`
    /// still says the same (it did not change while it was read).
    pub fn remember(&self, before: &FileStamp, hash: &str) {
        if !before.is_settled(self.settled)
            || FileStamp::of(&before.path).ok().as_ref() != Some(before)
        {
            return;
        }
        let entry = self.entry(&before.path);
        let partial = entry.with_extension(format!("partial-{}", std::process::id()));
        let written = super::cache::create_private_dir(&self.dir)
            .and_then(|()| std::fs::write(&partial, before.entry_text(hash)))
            .and_then(|()| std::fs::rename(&partial, &entry));
        if let Err(error) = written {
            tracing::debug!(entry = %entry.display(), %error, "cannot remember a file's hash");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "027ddd6932ae8d09ba50f1410a6cb1d893b2339da483f4bc22d1831ee4e43204";

    /// Longer than a coarse filesystem clock tick, so that a rewrite shows in the stamp.
    const TICK: Duration = Duration::from_millis(20);

    #[test]
    fn an_unchanged_file_is_recalled_and_any_write_forgets_it() {
        let dir = std::env::temp_dir().join(format!("hotswap-file-hashes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kv.wasm");
        std::fs::write(&path, "one").unwrap();
        let stamp = FileStamp::of(&path).unwrap();

        // A file that changed just now is not remembered: a write in the same tick would
        // not show in its stamp.
        let strict = FileHashes::new(&dir);
        strict.remember(&stamp, HASH);
        assert_eq!(strict.recall(&stamp), None);

        let index = FileHashes {
            settled: Duration::ZERO,
            ..FileHashes::new(&dir)
        };
        index.remember(&stamp, HASH);
        assert_eq!(index.recall(&stamp).as_deref(), Some(HASH));
        let respelled = FileStamp::of(&dir.join(".").join("kv.wasm")).unwrap();
        assert_eq!(index.recall(&respelled).as_deref(), Some(HASH));

        // Same size, new contents: the stamp changes and the entry no longer matches.
        std::thread::sleep(TICK);
        std::fs::write(&path, "two").unwrap();
        let rewritten = FileStamp::of(&path).unwrap();
        assert_ne!(rewritten, stamp);
        assert_eq!(index.recall(&rewritten), None);

        // A file that changed while it was read is not remembered under its old stamp.
        std::thread::sleep(TICK);
        std::fs::write(&path, "six").unwrap();
        index.remember(&rewritten, HASH);
        assert_eq!(index.recall(&rewritten), None);

        // A damaged entry is a miss.
        let current = FileStamp::of(&path).unwrap();
        index.remember(&current, HASH);
        std::fs::write(index.entry(&current.path), "garbage").unwrap();
        assert_eq!(index.recall(&current), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
