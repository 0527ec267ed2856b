//! Code: components loaded as versions of named modules.
//!
//! A module (`kv`) is a name under which several versions may be loaded; a version is a
//! compiled component checked against the `process` world, named by the `vsn` it exports
//! and identified by the SHA-256 of its bytes.

pub mod cache;
pub mod file_hashes;
mod loader;
mod module_store;
pub mod module_version;

pub use cache::{CompileCache, Origin};
pub use loader::Loader;
pub use module_store::{ModuleStore, ModuleSummary};
pub use module_version::ModuleVersion;
