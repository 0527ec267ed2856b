//! WASI capabilities granted to a process, and the `WasiCtx` they make.
//!
//! ```toml
//! [process.policy.grants]
//! dirs = [{ host = "/srv/data", guest = "/data", writable = false }]
//! env = { LANG = "C" }
//! args = ["--verbose"]
//! network = ["127.0.0.1:8080", "127.0.0.1:*"]   # TCP and UDP to these addresses only
//! name_lookup = false
//! output = "log"                                 # or "inherit", "discard"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::process::Pid;
use crate::registry::NodeId;
use crate::sandbox::thread_random::ThreadRandom;
use crate::sandbox::{GuestOutput, Stream};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Host directories the guest may open, each at a path of the guest's.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees (no others: the host's are never inherited).
    pub env: BTreeMap<String, String>,
    /// Command-line arguments the guest sees.
    pub args: Vec<String>,
    /// Addresses the guest may connect or send to (TCP and UDP). Empty: no network. Grants
    /// are outgoing only: a guest may never listen or accept.
    pub network: Vec<NetGrant>,
    /// Whether the guest may resolve host names (`wasi:sockets/ip-name-lookup`).
    pub name_lookup: bool,
    /// Where the guest's stdout and stderr go.
    pub output: OutputMode,
}

/// A host directory made visible to the guest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// Read-only unless set.
    #[serde(default)]
    pub writable: bool,
}

/// Where guest output goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Into the node's log (`tracing`, target `guest`), one event per line.
    #[default]
    Log,
    /// Straight to the node's own stdout and stderr.
    Inherit,
    /// Nowhere.
    Discard,
}

/// An address a guest may reach: an IP and a port, or any port (`127.0.0.1:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetGrant {
    pub ip: IpAddr,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl NetGrant {
    pub fn allows(&self, addr: SocketAddr) -> bool {
        addr.ip() == self.ip && self.port.is_none_or(|port| port == addr.port())
    }
}

impl FromStr for NetGrant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?} is not an address grant: use IP:PORT or IP:* ([::1]:80 for IPv6)");
        let (ip, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let port = match port {
            "*" => None,
            port => Some(port.parse().map_err(|_| bad())?),
        };
        Ok(Self { ip, port })
    }
}

impl fmt::Display for NetGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match self.ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        match self.port {
            Some(port) => write!(f, "{ip}:{port}"),
            None => write!(f, "{ip}:*"),
        }
    }
}

impl<'de> Deserialize<'de> for NetGrant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The outputs of one instance, kept so a trap report can quote the guest's last words.
pub(crate) struct Outputs {
    pub stderr: Option<GuestOutput>,
}

impl Grants {
    /// The WASI context of one instance (process `pid` of `node`, running `module` at
    /// `vsn`): exactly what was granted.
    pub(crate) fn wasi_context(
        &self,
        node: NodeId,
        pid: Pid,
        module: &Arc<str>,
        vsn: &Arc<str>,
    ) -> Result<(WasiCtx, Outputs), String> {
        let mut builder = WasiCtxBuilder::new();
        // Stateless: the default generators would cost every process 350 bytes of heap.
        builder
            .secure_random(ThreadRandom)
            .insecure_random(ThreadRandom);
        let output = |stream| GuestOutput::new(node, pid, module.clone(), vsn.clone(), stream);
        let outputs = match self.output {
            OutputMode::Log => {
                let stderr = output(Stream::Stderr);
                builder
                    .stdout(output(Stream::Stdout))
                    .stderr(stderr.clone());
                Outputs {
                    stderr: Some(stderr),
                }
            }
            OutputMode::Inherit => {
                builder.inherit_stdout().inherit_stderr();
                Outputs { stderr: None }
            }
            OutputMode::Discard => Outputs { stderr: None },
        };
        for dir in &self.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| format!("cannot grant directory {}: {e}", dir.host.display()))?;
        }
        builder.envs(&self.env.iter().collect::<Vec<_>>());
        builder.args(&self.args);
        if !self.network.is_empty() {
            let allowed: Arc<[NetGrant]> = self.network.clone().into();
            builder
                .allow_tcp(true)
                .allow_udp(true)
                .socket_addr_check(move |addr, usage| {
                    let allowed = match usage {
                        // Outgoing, and UDP replies: only with a granted address.
                        SocketAddrUse::TcpConnect
                        | SocketAddrUse::UdpSend
                        | SocketAddrUse::UdpReceive => {
                            allowed.iter().any(|grant| grant.allows(addr))
                        }
                        // The ephemeral local address an outgoing connection binds first.
                        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                            addr.ip().is_unspecified() && addr.port() == 0
                        }
                        // Grants are for reaching out, never for serving.
                        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
                    };
                    Box::pin(async move { allowed })
                });
        }
        builder.allow_ip_name_lookup(self.name_lookup);
        Ok((builder.build(), outputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_grants_parse_and_match() {
        let any_port: NetGrant = "127.0.0.1:*".parse().expect("grant");
        assert!(any_port.allows("127.0.0.1:9".parse().expect("addr")));
        assert!(!any_port.allows("127.0.0.2:9".parse().expect("addr")));
        let one: NetGrant = "[::1]:80".parse().expect("grant");
        assert!(one.allows("[::1]:80".parse().expect("addr")));
        assert!(!one.allows("[::1]:81".parse().expect("addr")));
        assert_eq!(one.to_string(), "[::1]:80");
        let err = "localhost:80".parse::<NetGrant>().unwrap_err();
        assert!(err.contains("localhost:80"), "{err}");
    }
}
