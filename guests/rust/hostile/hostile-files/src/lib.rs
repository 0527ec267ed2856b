//! Hostile fixture, vsn "hostile-files": a guest that reaches for the file system through
//! Rust's `std::fs` (which, on `wasm32-wasip2`, is `wasi:filesystem`). It models a plugin
//! that reads secrets (`/etc/passwd`, the host's config), lists directories, or writes files
//! it was never given.
//!
//! | call                                         | reply                                      |
//! |----------------------------------------------|--------------------------------------------|
//! | `{"op":"ping"}`                              | `"pong"`                                   |
//! | `{"op":"read","path":"/etc/passwd"}`         | the file's text (invalid UTF-8 replaced)   |
//! | `{"op":"list","path":"/"}`                   | the entries' names, sorted                 |
//! | `{"op":"write","path":"/tmp/x","data":"hi"}` | `null` once written (created or replaced)  |
//! | `{"op":"cwd"}`                               | the current directory, as WASI reports it  |
//!
//! Every failure is an `Err` reply carrying the operating system's text (`cannot read
//! "/etc/passwd": ...`), never a trap, so that a test sees the access was denied and that the
//! process lives on.
//!
//! The host grants no directory by default: then every `read`, `list` and `write` must fail,
//! whatever the path. With a directory granted (preopened), they must work inside it and
//! fail outside it, `..` and absolute paths to elsewhere included.

use std::fs;

use hotswap_guest::{GenServer, Pid, json};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Read { path: String },
    List { path: String },
    Write { path: String, data: String },
    Cwd,
}

/// The file-probing server. It has no state.
struct Files;

impl GenServer for Files {
    type State = ();
    const VSN: &'static str = "hostile-files";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Read { path } => {
                let bytes =
                    fs::read(&path).map_err(|why| format!("cannot read {path:?}: {why}"))?;
                json::encode(&String::from_utf8_lossy(&bytes))
            }
            Request::List { path } => json::encode(&list(&path)?),
            Request::Write { path, data } => {
                fs::write(&path, data).map_err(|why| format!("cannot write {path:?}: {why}"))?;
                json::encode(&())
            }
            Request::Cwd => {
                let cwd = std::env::current_dir()
                    .map_err(|why| format!("no current directory: {why}"))?;
                json::encode(&cwd.to_string_lossy())
            }
        }
    }
}

/// The names in directory `path`, sorted.
fn list(path: &str) -> Result<Vec<String>, String> {
    let cannot = |why: std::io::Error| format!("cannot list {path:?}: {why}");
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(cannot)? {
        names.push(
            entry
                .map_err(cannot)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    Ok(names)
}

hotswap_guest::export_process!(Files);
