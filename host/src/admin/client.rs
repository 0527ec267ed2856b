//! A client of the control endpoint, used by the CLI.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::admin::protocol::{Envelope, Request, Response};
use crate::admin::token::Token;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the node at {addr}: {source} (is `hotswap run` running there?)")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("lost the connection to the node at {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the node at {addr} closed the connection without answering")]
    NoAnswer { addr: SocketAddr },
    #[error("the node at {addr} answered something unreadable: {message}")]
    Protocol { addr: SocketAddr, message: String },
    /// The node answered with an error: `kind` is the operation, `message` the cause.
    #[error("{message}")]
    Node { kind: String, message: String },
}

/// One connection to a node.
pub struct Client {
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
    token: Option<Token>,
}

impl Client {
    /// Connects to the node at `addr`, with `token` for the requests that change it (none:
    /// inspection only).
    pub async fn connect(addr: SocketAddr, token: Option<Token>) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        Ok(Self {
            addr,
            stream: BufReader::new(stream),
            token,
        })
    }

    /// Sends one request and decodes the result as `T`.
    pub async fn request<T: DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<T, ClientError> {
        let addr = self.addr;
        let protocol = |message: String| ClientError::Protocol { addr, message };
        let io = |source| ClientError::Io { addr, source };
        let envelope = Envelope {
            token: self.token.as_ref().map(|t| t.as_str().to_string()),
            request: request.clone(),
        };
        let mut line = serde_json::to_vec(&envelope).map_err(|e| protocol(e.to_string()))?;
        line.push(b'\n');
        self.stream.get_mut().write_all(&line).await.map_err(io)?;
        let mut answer = String::new();
        if self.stream.read_line(&mut answer).await.map_err(io)? == 0 {
            return Err(ClientError::NoAnswer { addr });
        }
        match serde_json::from_str::<Response>(&answer).map_err(|e| protocol(e.to_string()))? {
            Response::Ok { result } => {
                serde_json::from_value(result).map_err(|e| protocol(e.to_string()))
            }
            Response::Error { kind, message } => Err(ClientError::Node { kind, message }),
        }
    }
}
