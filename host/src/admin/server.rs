//! Serves the control endpoint of a node.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use std::sync::Arc;

use crate::admin::protocol::{Envelope, Payload, Request, Response};
use crate::admin::token::{Token, token_file};
use crate::node::{Node, SpawnSpec};
use crate::release::Release;
use crate::swap::SwapOptions;

/// How long a `call` waits for its reply when the request does not say.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line accepted.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a control token: the endpoint can change the node; set `control_token` (or listen on loopback)"
    )]
    NoToken(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the control token to {path}: {source}")]
    TokenFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bound control endpoint, ready to serve.
pub struct Endpoint {
    listener: TcpListener,
    token: Token,
}

impl Endpoint {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds the control endpoint. Without a `token`, only loopback is allowed, and a fresh
/// token is written to [`token_file`] for the CLI to find.
pub async fn bind(addr: SocketAddr, token: Option<Token>) -> Result<Endpoint, ServeError> {
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(ServeError::NoToken(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let token = match token {
        Some(token) => token,
        None => {
            let token = Token::generate();
            let bound = listener
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?;
            let path = token_file(bound);
            token
                .write_file(&path)
                .map_err(|source| ServeError::TokenFile { path, source })?;
            token
        }
    };
    Ok(Endpoint { listener, token })
}

/// Serves requests on a bound endpoint until the task is dropped.
pub async fn serve(node: Node, endpoint: Endpoint) {
    let token = Arc::new(endpoint.token);
    loop {
        match endpoint.listener.accept().await {
            Ok((stream, peer)) => {
                let (node, token) = (node.clone(), token.clone());
                tokio::spawn(async move {
                    if let Err(error) = serve_connection(node, stream, &token).await {
                        tracing::debug!(%peer, %error, "control connection closed");
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "control endpoint: accept failed"),
        }
    }
}

async fn serve_connection(node: Node, stream: TcpStream, token: &Token) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        let read = AsyncReadExt::take(&mut lines, MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        let response = if line.len() > MAX_LINE {
            failure(
                "bad_request",
                format!("request longer than {MAX_LINE} bytes"),
            )
        } else {
            match serde_json::from_str::<Envelope>(&line) {
                Ok(envelope) if envelope.request.changes_node() && !authorized(&envelope, token) => {
                    failure(
                        "unauthorized",
                        "this request changes the node and needs its control token (--token, HOTSWAP_TOKEN, or the node's token file)".into(),
                    )
                }
                Ok(envelope) => handle(&node, envelope.request).await,
                Err(error) => failure("bad_request", format!("not a valid request: {error}")),
            }
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|error| {
            format!(r#"{{"status":"error","kind":"internal","message":"{error}"}}"#).into_bytes()
        });
        out.push(b'\n');
        writer.write_all(&out).await?;
        if line.len() > MAX_LINE {
            return Ok(());
        }
    }
}

fn authorized(envelope: &Envelope, token: &Token) -> bool {
    envelope
        .token
        .as_deref()
        .is_some_and(|offered| token.matches(offered))
}

async fn handle(node: &Node, request: Request) -> Response {
    match request {
        Request::Ps => success(node.ps()),
        Request::Modules => success(node.modules()),
        Request::Load { module, file } => match node.load_file(&module, &file).await {
            Ok(version) => success(version.info()),
            Err(error) => failure("load", error.to_string()),
        },
        Request::Spawn {
            module,
            vsn,
            name,
            args,
        } => {
            let mut spec = SpawnSpec::new(module).args(args.into_bytes());
            spec.vsn = vsn;
            spec.name = name;
            match node.spawn(spec).await {
                Ok(pid) => success(pid),
                Err(error) => failure("spawn", error.to_string()),
            }
        }
        Request::Call {
            target,
            request,
            timeout_ms,
        } => {
            let timeout = timeout_ms.map_or(DEFAULT_CALL_TIMEOUT, Duration::from_millis);
            match node.call(&target, request.into_bytes(), timeout).await {
                Ok(reply) => success(Payload::from_bytes(reply)),
                Err(error) => failure("call", error.to_string()),
            }
        }
        Request::Cast { target, message } => match node.cast(&target, message.into_bytes()) {
            Ok(()) => success(()),
            Err(error) => failure("cast", error.to_string()),
        },
        Request::Send { target, message } => match node.send(&target, message.into_bytes()) {
            Ok(()) => success(()),
            Err(error) => failure("send", error.to_string()),
        },
        Request::Swap {
            target,
            file,
            extra,
            direction,
        } => {
            let options = SwapOptions {
                extra: extra.into_bytes(),
                direction,
                state: None,
            };
            match node.swap_file(&target, &file, options).await {
                Ok(report) => success(report),
                Err(error) => failure("swap", error.to_string()),
            }
        }
        Request::State { target } => match node.get_state(&target).await {
            Ok(state) => success(Payload::from_bytes(state)),
            Err(error) => failure("state", error.to_string()),
        },
        Request::ReplaceState {
            target,
            state,
            extra,
        } => match node
            .replace_state(&target, state.into_bytes(), extra.into_bytes())
            .await
        {
            Ok(report) => success(report),
            Err(error) => failure("replace_state", error.to_string()),
        },
        Request::Suspend { target } => match node.suspend(&target).await {
            Ok(()) => success(()),
            Err(error) => failure("suspend", error.to_string()),
        },
        Request::Resume { target } => match node.resume(&target).await {
            Ok(()) => success(()),
            Err(error) => failure("resume", error.to_string()),
        },
        Request::Update { module, vsn, extra } => {
            let Some(version) = node.module_version(&module, &vsn) else {
                return failure(
                    "update",
                    format!("module {module} has no version {vsn:?} loaded"),
                );
            };
            match node.update_module(version, extra.into_bytes()).await {
                Ok(report) => success(report),
                Err(error) => failure("update", error.to_string()),
            }
        }
        Request::Upgrade { release } => match Release::from_file(&release) {
            Ok(release) => match node.upgrade(&release).await {
                Ok(report) => success(report),
                Err(error) => failure("upgrade", error.to_string()),
            },
            Err(error) => failure("upgrade", error.to_string()),
        },
        Request::Downgrade => match node.downgrade().await {
            Ok(report) => success(report),
            Err(error) => failure("downgrade", error.to_string()),
        },
        Request::Stop { target, reason } => match node.stop(&target, &reason).await {
            Ok(()) => success(()),
            Err(error) => failure("stop", error.to_string()),
        },
    }
}

fn success(result: impl Serialize) -> Response {
    match serde_json::to_value(result) {
        Ok(result) => Response::Ok { result },
        Err(error) => failure("internal", error.to_string()),
    }
}

fn failure(kind: &str, message: String) -> Response {
    Response::Error {
        kind: kind.to_string(),
        message,
    }
}
