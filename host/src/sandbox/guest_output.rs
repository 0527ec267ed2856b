//! Where a guest's stdout and stderr go: by default, line by line into `tracing`, tagged with
//! the process; the last stderr lines are also kept, so that a trap's report can say what
//! the guest printed before it died (a Rust panic message, a Python traceback).
//!
//! Writes never block and never fail: a guest cannot stall its process, or make the host
//! buffer without bound, by printing. A line longer than [`MAX_LINE`] is cut there.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::process::Pid;
use crate::registry::NodeId;

/// The longest line kept; the rest of a longer line starts a new one.
pub const MAX_LINE: usize = 4096;
/// How many stderr lines are kept for trap reports.
const TAIL_LINES: usize = 4;

/// Which of the guest's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One output stream of one process. Cheap to clone; clones share the buffer.
#[derive(Clone)]
pub struct GuestOutput {
    node: NodeId,
    pid: Pid,
    module: Arc<str>,
    vsn: Arc<str>,
    stream: Stream,
    shared: Arc<Mutex<Lines>>,
}

#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl GuestOutput {
    pub fn new(node: NodeId, pid: Pid, module: Arc<str>, vsn: Arc<str>, stream: Stream) -> Self {
        Self {
            node,
            pid,
            module,
            vsn,
            stream,
            shared: Arc::default(),
        }
    }

    /// The last complete lines written (and the partial one), oldest first.
    pub fn tail(&self) -> Vec<String> {
        let lines = self.lock();
        let mut tail: Vec<String> = lines.tail.iter().cloned().collect();
        if !lines.partial.is_empty() {
            tail.push(String::from_utf8_lossy(&lines.partial).into_owned());
        }
        tail
    }

    /// Forgets the kept lines: called as each guest call starts, so a trap report quotes
    /// only what the failing call wrote.
    pub fn clear_tail(&self) {
        let mut lines = self.lock();
        lines.tail.clear();
        lines.partial.clear();
    }

    fn write(&self, mut bytes: &[u8]) {
        let mut lines = self.lock();
        while !bytes.is_empty() {
            let room = MAX_LINE - lines.partial.len();
            let (chunk, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) if at <= room => (&bytes[..at], true),
                _ => (&bytes[..room.min(bytes.len())], false),
            };
            lines.partial.extend_from_slice(chunk);
            bytes = &bytes[chunk.len() + usize::from(newline)..];
            if newline || lines.partial.len() == MAX_LINE {
                let line = String::from_utf8_lossy(&lines.partial).into_owned();
                lines.partial.clear();
                self.emit(&line);
                if lines.tail.len() == TAIL_LINES {
                    lines.tail.pop_front();
                }
                lines.tail.push_back(line);
            }
        }
    }

    fn emit(&self, line: &str) {
        let (node, pid, stream) = (self.node.0, self.pid, self.stream.name());
        let (module, vsn) = (&*self.module, &*self.vsn);
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "guest", node, pid, module, vsn, stream, "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "guest", node, pid, module, vsn, stream, "{line}")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_kept_and_capped() {
        let out = GuestOutput::new(NodeId(1), 1, "kv".into(), "0".into(), Stream::Stderr);
        out.write(b"first\nsec");
        out.write(b"ond\nthird");
        assert_eq!(out.tail(), ["first", "second", "third"]);
        // "third" is still open: the long write completes it at MAX_LINE, and the rest
        // starts a new line.
        out.write(&vec![b'x'; MAX_LINE + 10]);
        let tail = out.tail();
        assert_eq!(tail.len(), 4);
        assert_eq!(tail[2].len(), MAX_LINE);
        assert!(tail[2].starts_with("thirdx"));
        assert_eq!(tail[3], "x".repeat(15));
        for line in 0..TAIL_LINES {
            out.write(format!("{line}\n").as_bytes());
        }
        assert_eq!(out.tail().len(), TAIL_LINES, "only the last lines are kept");
        out.clear_tail();
        assert!(out.tail().is_empty());
    }
}
