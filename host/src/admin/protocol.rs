//! The messages of the control endpoint.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::registry::ProcessRef;
use crate::swap::Direction;

/// One line from a client: a request, and the control token when it changes the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(flatten)]
    pub request: Request,
}

/// One request to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Live processes.
    Ps,
    /// Loaded modules and their versions.
    Modules,
    /// Load a component file as a version of `module`.
    Load {
        module: String,
        file: PathBuf,
    },
    /// Start a process of `module` (its latest version unless `vsn` is given).
    Spawn {
        module: String,
        vsn: Option<String>,
        name: Option<String>,
        #[serde(default)]
        args: String,
    },
    Call {
        target: ProcessRef,
        request: String,
        timeout_ms: Option<u64>,
    },
    Cast {
        target: ProcessRef,
        message: String,
    },
    /// A message for `handle-info`.
    Send {
        target: ProcessRef,
        message: String,
    },
    /// Hot swap to the component in `file`.
    Swap {
        target: ProcessRef,
        file: PathBuf,
        #[serde(default)]
        extra: String,
        #[serde(default)]
        direction: Direction,
    },
    /// The state blob.
    State {
        target: ProcessRef,
    },
    /// Replace the state, through `code-change` on a fresh instance of the running version.
    ReplaceState {
        target: ProcessRef,
        state: String,
        #[serde(default)]
        extra: String,
    },
    Suspend {
        target: ProcessRef,
    },
    Resume {
        target: ProcessRef,
    },
    /// Move every process of `module` to its loaded version `vsn`, all or nothing.
    Update {
        module: String,
        vsn: String,
        #[serde(default)]
        extra: String,
    },
    /// Upgrade to the release described by a release file (on the node's file system).
    Upgrade {
        release: PathBuf,
    },
    /// Move the processes of the last release back to their previous versions.
    Downgrade,
    Stop {
        target: ProcessRef,
        #[serde(default = "default_stop_reason")]
        reason: String,
    },
}

impl Request {
    /// Whether the request needs the control token: everything that can change the node,
    /// and `state`, which runs guest code and hands out a process's whole state. Only the
    /// lists of processes and modules are free.
    pub fn changes_node(&self) -> bool {
        !matches!(self, Self::Ps | Self::Modules)
    }
}

fn default_stop_reason() -> String {
    "stopped by operator".into()
}

/// Bytes on the wire: text when they are UTF-8 (JSON payloads are), hex otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    Text(String),
    Hex(String),
}

impl Payload {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Self::Text(text),
            Err(e) => Self::Hex(hex::encode(e.into_bytes())),
        }
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Hex(hex) => write!(f, "(binary, hex) {hex}"),
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Ok { result: serde_json::Value },
    Error { kind: String, message: String },
}
