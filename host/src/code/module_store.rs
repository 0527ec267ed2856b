//! The versions loaded on a node, per module name.
//!
//! Versions are kept in load order; loading bytes that are already loaded under the same
//! name returns the loaded version instead of compiling again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::code::ModuleVersion;
use crate::code::module_version::ModuleInfo;

/// Module name -> loaded versions.
#[derive(Default)]
pub struct ModuleStore {
    modules: RwLock<BTreeMap<String, Vec<Arc<ModuleVersion>>>>,
}

/// One module and its versions, as data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleSummary {
    pub name: String,
    pub versions: Vec<ModuleInfo>,
}

impl ModuleStore {
    /// The version of `name` with this content hash, if loaded.
    pub fn by_hash(&self, name: &str, hash: &str) -> Option<Arc<ModuleVersion>> {
        self.read()
            .get(name)?
            .iter()
            .find(|v| v.hash == hash)
            .cloned()
    }

    /// The version of `name` that exports `vsn`; the most recently loaded if several do.
    pub fn by_vsn(&self, name: &str, vsn: &str) -> Option<Arc<ModuleVersion>> {
        self.read()
            .get(name)?
            .iter()
            .rev()
            .find(|v| &*v.vsn == vsn)
            .cloned()
    }

    /// The most recently loaded version of `name`.
    pub fn latest(&self, name: &str) -> Option<Arc<ModuleVersion>> {
        self.read().get(name)?.last().cloned()
    }

    /// Adds a version (or returns the one already loaded with the same bytes).
    pub fn insert(&self, version: ModuleVersion) -> Arc<ModuleVersion> {
        let mut modules = self
            .modules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let versions = modules.entry(version.name.to_string()).or_default();
        if let Some(existing) = versions.iter().find(|v| v.hash == version.hash) {
            return existing.clone();
        }
        let version = Arc::new(version);
        versions.push(version.clone());
        version
    }

    pub fn summaries(&self) -> Vec<ModuleSummary> {
        self.read()
            .iter()
            .map(|(name, versions)| ModuleSummary {
                name: name.clone(),
                versions: versions.iter().map(|v| v.info()).collect(),
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<Arc<ModuleVersion>>>> {
        // A panic while holding this lock cannot leave the map half-written (every write is
        // one push), so a poisoned lock is still a consistent map.
        self.modules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
