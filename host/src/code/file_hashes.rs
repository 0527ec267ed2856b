//! Remembers the digests of files by what `stat` says of them, so that loading an unchanged
//! file again (a node's second start, a swap to a file already loaded) costs a `stat`
//! instead of reading and hashing it. This is what git's index and ccache's direct mode do.
//! Two kinds of file are remembered: a component, by its SHA-256 (its identity; 25 ms for an
//! 18 MB Python guest), and the compiled code of a cache entry, by the digest its seal
//! records, once a load has checked the two against each other (`cache.rs`; 4-5 ms of a
//! Python guest's cached load).
//!
//! A file is known by its canonical path, device, inode, size, and modification and change
//! times to the nanosecond. Any write to the file changes its change time, which no
//! unprivileged program can set back on a filesystem that keeps one (FAT and exFAT do not,
//! nor do some FUSE filesystems); a file replaced by a rename has a new inode. The stamp
//! that is remembered comes from the open file that was read ([`read_stamped`],
//! [`FileStamp::of_open`]), not from the path, so a path re-pointed meanwhile (a symlink
//! flipped by a deploy, a file renamed over) cannot pair one file's stamp with another's
//! bytes. The one gap is a write within the same timestamp tick as the read (filesystem
//! clocks tick in milliseconds, some in seconds): a file is remembered only if its change
//! time was [`SETTLED`] in the past when it was first stamped (git's racy-clean rule), and
//! only if the open file's `stat` says the same before and after the read. Any other file
//! is hashed on every load, as if there were no index.
//!
//! The entries live beside the compiled code in the cache directory (private, 0700); a
//! damaged or unreadable entry is a miss.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use twox_hash::XxHash3_128;

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

/// What `stat` says of a file, as far as its contents go, and when it was asked.
#[derive(Debug, Clone)]
pub struct FileStamp {
    path: PathBuf,
    stamp: String,
    /// The file's size, also part of `stamp`.
    length: u64,
    changed: SystemTime,
    taken: SystemTime,
}

/// Two stamps are equal when they describe the same contents, whenever they were taken.
impl PartialEq for FileStamp {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.stamp == other.stamp
    }
}

impl Eq for FileStamp {}

/// Reads the file at `path`, and stamps what was read when the index may remember it: the
/// stamp is taken from the open file before and after the read, and is `None` if the two
/// differ (it changed while it was read) or the path has no canonical form.
pub fn read_stamped(path: &Path) -> std::io::Result<(Vec<u8>, Option<FileStamp>)> {
    let mut file = File::open(path)?;
    let before = FileStamp::of_open(path, &file);
    let length = before.as_ref().map_or(0, |stamp| stamp.length);
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    let after = FileStamp::of_open(path, &file);
    let stamp = before.filter(|before| after.as_ref() == Some(before));
    Ok((bytes, stamp))
}

impl FileStamp {
    /// Stamps the open `file`, which was opened at `path`: what was, or will be, read from
    /// it is what the stamp describes, whatever `path` names meanwhile. `None` when `path`
    /// has no canonical form or the file no metadata.
    pub fn of_open(path: &Path, file: &File) -> Option<Self> {
        let taken = SystemTime::now();
        let meta = file.metadata().ok()?;
        let path = std::fs::canonicalize(path).ok()?;
        Some(Self::from_metadata(path, &meta, taken))
    }

    /// Stamps the file at `path` (canonicalized, so that two spellings share an entry).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let taken = SystemTime::now();
        let path = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&path)?;
        Ok(Self::from_metadata(path, &meta, taken))
    }

    fn from_metadata(path: PathBuf, meta: &Metadata, taken: SystemTime) -> Self {
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
            // Before 1970: treat as changing when stamped, so it is never remembered.
            .unwrap_or(taken);
        Self {
            path,
            stamp,
            length: meta.size(),
            changed,
            taken,
        }
    }

    /// Whether the file had last changed at least `settled` before it was stamped.
    fn is_settled(&self, settled: Duration) -> bool {
        self.taken
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

    /// The same index, remembering files that had not changed for `settled`: tests wait
    /// less than [`SETTLED`].
    #[cfg(test)]
    pub fn settled_after(self, settled: Duration) -> Self {
        Self { settled, ..self }
    }

    fn entry(&self, path: &Path) -> PathBuf {
        let key = XxHash3_128::oneshot(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{key:032x}"))
    }

    /// The digest (in hex) recorded for a file with exactly this stamp, if any.
    pub fn recall(&self, stamp: &FileStamp) -> Option<String> {
        let text = std::fs::read_to_string(self.entry(&stamp.path)).ok()?;
        let mut lines = text.lines();
        let hash = (lines.next() == Some(ENTRY_MAGIC)
            && lines.next() == Some(stamp.stamp.as_str())
            && lines.next() == Some(stamp.path.display().to_string().as_str()))
        .then(|| lines.next())
        .flatten()?;
        let is_hex = !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit());
        is_hex.then(|| hash.to_string())
    }

    /// Records `hash` for the contents `stamp` describes (stamped from the open file that
    /// was hashed, and unchanged while it was), if the file had settled when it was stamped.
    pub fn remember(&self, stamp: &FileStamp, hash: &str) {
        if !stamp.is_settled(self.settled) {
            return;
        }
        let entry = self.entry(&stamp.path);
        let partial = entry.with_extension(format!("partial-{}", std::process::id()));
        let written = super::cache::create_private_dir(&self.dir)
            .and_then(|()| std::fs::write(&partial, stamp.entry_text(hash)))
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

    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotswap-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn settled_after(dir: &Path, settled: Duration) -> FileHashes {
        FileHashes::new(dir).settled_after(settled)
    }

    #[test]
    fn an_unchanged_file_is_recalled_and_any_write_forgets_it() {
        let dir = temp_dir("file-hashes");
        let path = dir.join("kv.wasm");
        std::fs::write(&path, "one").unwrap();
        let (bytes, stamp) = read_stamped(&path).unwrap();
        assert_eq!(bytes, b"one");
        let stamp = stamp.expect("unchanged while read");

        // A file that changed just now is not remembered: a write in the same tick would
        // not show in its stamp.
        let strict = FileHashes::new(&dir);
        strict.remember(&stamp, HASH);
        assert_eq!(strict.recall(&FileStamp::of(&path).unwrap()), None);

        let index = settled_after(&dir, Duration::ZERO);
        index.remember(&stamp, HASH);
        assert_eq!(
            index.recall(&FileStamp::of(&path).unwrap()).as_deref(),
            Some(HASH)
        );
        let respelled = FileStamp::of(&dir.join(".").join("kv.wasm")).unwrap();
        assert_eq!(index.recall(&respelled).as_deref(), Some(HASH));

        // Same size, new contents: the stamp changes and the entry no longer matches.
        std::thread::sleep(TICK);
        std::fs::write(&path, "two").unwrap();
        let rewritten = FileStamp::of(&path).unwrap();
        assert_ne!(rewritten, stamp);
        assert_eq!(index.recall(&rewritten), None);

        // A damaged entry is a miss.
        index.remember(&rewritten, HASH);
        assert_eq!(index.recall(&rewritten).as_deref(), Some(HASH));
        std::fs::write(index.entry(&rewritten.path), "garbage").unwrap();
        assert_eq!(index.recall(&rewritten), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn settled_means_settled_when_stamped_not_when_remembered() {
        let dir = temp_dir("file-hashes-settled");
        let path = dir.join("kv.wasm");
        std::fs::write(&path, "one").unwrap();
        let index = settled_after(&dir, 10 * TICK);
        let (_, fresh) = read_stamped(&path).unwrap();
        // A long compile between the read and the remember does not settle the read.
        std::thread::sleep(20 * TICK);
        index.remember(&fresh.unwrap(), HASH);
        assert_eq!(index.recall(&FileStamp::of(&path).unwrap()), None);
        let (_, settled) = read_stamped(&path).unwrap();
        index.remember(&settled.unwrap(), HASH);
        assert_eq!(
            index.recall(&FileStamp::of(&path).unwrap()).as_deref(),
            Some(HASH)
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_file_read_through_a_symlink_is_known_as_its_target() {
        let dir = temp_dir("file-hashes-symlink");
        let (v1, v2, current) = (
            dir.join("v1.wasm"),
            dir.join("v2.wasm"),
            dir.join("current"),
        );
        std::fs::write(&v1, "one").unwrap();
        std::fs::write(&v2, "two").unwrap();
        std::os::unix::fs::symlink(&v1, &current).unwrap();
        let index = settled_after(&dir, Duration::ZERO);
        let (bytes, stamp) = read_stamped(&current).unwrap();
        assert_eq!(bytes, b"one");
        index.remember(&stamp.unwrap(), HASH);
        assert_eq!(
            index.recall(&FileStamp::of(&v1).unwrap()).as_deref(),
            Some(HASH)
        );

        // The deploy flips the link: the same path now names a file the index never read.
        std::fs::remove_file(&current).unwrap();
        std::os::unix::fs::symlink(&v2, &current).unwrap();
        assert_eq!(index.recall(&FileStamp::of(&current).unwrap()), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
