//! The node configuration file (`hotswap run CONFIG`): where the control endpoint listens,
//! the default limits, the modules to load and the named processes to start.
//!
//! ```toml
//! control = "127.0.0.1:7420"
//!
//! max_processes = 10000          # the pool is sized for these (the default)
//! pool_keep_resident_kib = 1024  # kept per freed slot for the next instance (the default)
//!
//! [policy]                  # defaults for every process; see `sandbox::Policy`
//! message_time_limit_ms = 5000
//!
//! [[module]]
//! name = "kv"
//! file = "guests/rust/target/wasm32-wasip2/release/kv_v0.wasm"   # relative to this file
//!
//! [[process]]
//! name = "kv"
//! module = "kv"
//! args = "{}"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::code::CompileCache;
use crate::engine::{Allocation, KEEP_RESIDENT};
use crate::sandbox::{Policy, PolicyError};

/// The default control address: loopback only.
pub const DEFAULT_CONTROL: &str = "127.0.0.1:7420";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the control endpoint listens.
    #[serde(default = "default_control")]
    pub control: SocketAddr,
    /// The control token. Required to listen beyond loopback; on loopback, a fresh one is
    /// made and written to `~/.hotswap/node-PORT.token` when this is not set.
    pub control_token: Option<String>,
    /// The compile cache: `true` (the default: `~/.cache/hotswap`), `false`, or a directory.
    #[serde(default)]
    pub compile_cache: CacheSetting,
    /// Whether guest code counts fuel, so that policies may set `fuel_per_call` (costs some
    /// speed in every guest).
    #[serde(default)]
    pub fuel: bool,
    /// How many processes the node is sized for (instance slots are reserved up front).
    #[serde(default = "default_max_processes")]
    pub max_processes: u32,
    /// How many KiB of the pages an instance wrote each freed memory slot and table slot
    /// of the pool keeps for the next instance (see `engine::KEEP_RESIDENT`, the default):
    /// lower it on a node that hibernates many processes, for memory; 0 gives every page
    /// back to the kernel, and makes swaps and wakes fault their pages in again.
    #[serde(default = "default_pool_keep_resident_kib")]
    pub pool_keep_resident_kib: u32,
    /// Limits for processes that do not set their own.
    #[serde(default)]
    pub policy: Policy,
    #[serde(default, rename = "module")]
    pub modules: Vec<ModuleEntry>,
    #[serde(default, rename = "process")]
    pub processes: Vec<ProcessEntry>,
}

/// Whether, and where, compiled components are cached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CacheSetting {
    Enabled(bool),
    Dir(PathBuf),
}

impl Default for CacheSetting {
    fn default() -> Self {
        Self::Enabled(true)
    }
}

impl CacheSetting {
    /// The cache directory this setting names, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            Self::Enabled(true) => CompileCache::default_dir(),
            Self::Enabled(false) => None,
            Self::Dir(dir) => Some(dir.clone()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    pub name: String,
    /// A component file; a relative path is taken from the config file's folder.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessEntry {
    /// The registered name.
    pub name: String,
    pub module: String,
    /// A version of the module; its latest loaded version if left out.
    pub vsn: Option<String>,
    /// The `init` arguments, as text.
    #[serde(default)]
    pub args: String,
    /// Limits of this process, replacing the node's defaults.
    pub policy: Option<Policy>,
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid node config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: the policy of {whose} is not valid: {error}")]
    Policy {
        path: PathBuf,
        whose: String,
        error: PolicyError,
    },
    #[error("{path}: process {process:?} uses module {module:?}, which no [[module]] entry loads")]
    UnknownModule {
        path: PathBuf,
        process: String,
        module: String,
    },
}

fn default_max_processes() -> u32 {
    10_000
}

fn default_pool_keep_resident_kib() -> u32 {
    u32::try_from(KEEP_RESIDENT / 1024).unwrap_or(u32::MAX)
}

fn default_control() -> SocketAddr {
    DEFAULT_CONTROL
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7420)))
}

impl NodeConfig {
    /// Reads and checks a config file; module paths come back resolved.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for module in &mut config.modules {
            if module.file.is_relative() {
                module.file = base.join(&module.file);
            }
        }
        let policies = std::iter::once(("the node".to_string(), &config.policy)).chain(
            config.processes.iter().filter_map(|process| {
                let whose = format!("process {:?}", process.name);
                process.policy.as_ref().map(|policy| (whose, policy))
            }),
        );
        for (whose, policy) in policies {
            policy.validate().map_err(|error| ConfigError::Policy {
                path: path.to_path_buf(),
                whose,
                error,
            })?;
        }
        for process in &config.processes {
            if !config.modules.iter().any(|m| m.name == process.module) {
                return Err(ConfigError::UnknownModule {
                    path: path.to_path_buf(),
                    process: process.name.clone(),
                    module: process.module.clone(),
                });
            }
        }
        Ok(config)
    }

    /// The instance allocation this config asks for, each memory as large as the largest
    /// limit configured: two slots per process, because a release may move every process
    /// at once, and each then holds its old instance and its new one until the commit; and
    /// a few more for loads and for instances still being dropped. (A swapped process gives
    /// its old instance's slot back after one more message, busy or not; a release right
    /// behind the swap waits for it, see `instance::POOL_SLOT_WAIT`.) Up to
    /// `max_processes = 2040` the pool still gets whole 4 GiB reservations and guests
    /// check no bounds (see `engine.rs`).
    pub fn allocation(&self) -> Allocation {
        let max_memory = self
            .processes
            .iter()
            .filter_map(|p| p.policy.as_ref().map(|policy| policy.memory_limit))
            .chain([self.policy.memory_limit])
            .max()
            .unwrap_or(self.policy.memory_limit);
        Allocation::Pooled {
            instances: self.max_processes.saturating_mul(2).saturating_add(16),
            max_memory,
            keep_resident: usize::try_from(self.pool_keep_resident_kib)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024),
        }
    }

    /// Parses the TOML text of a config, without touching the file system.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses_with_defaults_filled_in() {
        let config = NodeConfig::parse(
            r#"
            [[module]]
            name = "kv"
            file = "kv.wasm"

            [[process]]
            name = "kv"
            module = "kv"
            args = "{}"
            [process.policy]
            message_time_limit_ms = 100
            "#,
        )
        .expect("valid config");
        assert_eq!(config.control.to_string(), DEFAULT_CONTROL);
        assert_eq!(config.compile_cache, CacheSetting::Enabled(true));
        assert_eq!(config.modules[0].name, "kv");
        let policy = config.processes[0].policy.clone().expect("a policy");
        assert_eq!(policy.message_time_limit.as_millis(), 100);
        assert_eq!(policy.mailbox_capacity, Policy::default().mailbox_capacity);
    }

    #[test]
    fn the_pool_keeps_a_mebibyte_per_freed_slot_unless_told_otherwise() {
        let keep_resident = |text: &str| match NodeConfig::parse(text).expect("valid").allocation()
        {
            Allocation::Pooled { keep_resident, .. } => keep_resident,
            Allocation::OnDemand => panic!("a config node is pooled"),
        };
        assert_eq!(keep_resident(""), KEEP_RESIDENT);
        assert_eq!(keep_resident("pool_keep_resident_kib = 64"), 64 << 10);
        assert_eq!(keep_resident("pool_keep_resident_kib = 0"), 0);
        let negative = NodeConfig::parse("pool_keep_resident_kib = -1").unwrap_err();
        assert!(negative.contains("pool_keep_resident_kib"), "{negative}");
    }

    #[test]
    fn the_cache_can_be_turned_off_or_moved() {
        let off = NodeConfig::parse("compile_cache = false").expect("valid");
        assert_eq!(off.compile_cache.dir(), None);
        let moved = NodeConfig::parse("compile_cache = \"/tmp/c\"").expect("valid");
        assert_eq!(moved.compile_cache.dir(), Some(PathBuf::from("/tmp/c")));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = NodeConfig::parse("controll = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.contains("controll"), "{err}");
    }

    #[test]
    fn a_policy_no_process_could_run_under_is_refused_with_its_owner() {
        let dir = std::env::temp_dir().join(format!("hotswap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        let with = |text: &str| {
            std::fs::write(&path, text).unwrap();
            NodeConfig::from_file(&path).unwrap_err().to_string()
        };
        let node = with("[policy]\nmailbox_capacity = 0\n");
        assert!(
            node.ends_with("the policy of the node is not valid: mailbox_capacity must be between 1 and 16777216, not 0"),
            "{node}"
        );
        let process = with(
            "[[module]]\nname = \"kv\"\nfile = \"kv.wasm\"\n\
             [[process]]\nname = \"a\"\nmodule = \"kv\"\n\
             [process.policy]\nmessage_time_limit_ms = 18446744073709551615\n",
        );
        assert!(
            process.contains("the policy of process \"a\" is not valid: message_time_limit_ms must be between 1 and 86400000 ms"),
            "{process}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
