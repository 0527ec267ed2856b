//! The control token: a secret that every request that changes the node must carry.
//!
//! A node started without a configured token makes one and writes it, readable by its user
//! only, to [`token_file`] for its control port; the CLI reads it from there, so an
//! operator on the same machine and account needs no flag. A node that listens beyond
//! loopback must be given a token explicitly.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A control token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh random token (256 bits, hex).
    pub fn generate() -> Self {
        Self(hex::encode(rand::random::<[u8; 32]>()))
    }

    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Writes the token to `path`, readable and writable by its owner only.
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(self.0.as_bytes())
    }

    /// Reads a token written by [`write_file`](Self::write_file).
    pub fn read_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self(std::fs::read_to_string(path)?.trim().to_string()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<secret>)")
    }
}

/// Where the token of the node listening on `addr` is written: `~/.hotswap/node-PORT.token`
/// (or the system's temporary directory when there is no home).
pub fn token_file(addr: SocketAddr) -> PathBuf {
    let base = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join(".hotswap")
        .join(format!("node-{}.token", addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let token = Token::generate();
        assert_eq!(token.as_str().len(), 64);
        assert!(token.matches(token.as_str()));
        assert!(!token.matches(""));
        assert!(!token.matches(&token.as_str()[1..]));
        assert_ne!(token, Token::generate());
        assert!(
            !format!("{token:?}").contains(token.as_str()),
            "never printed"
        );
    }
}
