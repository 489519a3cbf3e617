//! The providers fabrik knows. This is the one place in the engine that names a provider.

use std::collections::BTreeMap;
use std::sync::Arc;

use fabrik_provider::{Provider, ResourceType};

pub struct Registry {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
    types: BTreeMap<&'static str, (&'static str, ResourceType)>,
}

impl Registry {
    /// Every provider built into this binary.
    pub fn builtin() -> Self {
        Registry::with(vec![
            Arc::new(fabrik_local::Local),
            Arc::new(fabrik_powerdns::PowerDns),
            Arc::new(fabrik_cloudflare::Cloudflare),
            Arc::new(fabrik_coolify::Coolify),
            Arc::new(fabrik_uptimekuma::UptimeKuma),
        ])
    }

    /// A registry of the given providers (tests add their own).
    pub fn with(providers: Vec<Arc<dyn Provider>>) -> Self {
        let mut registry = Registry {
            providers: BTreeMap::new(),
            types: BTreeMap::new(),
        };
        for provider in providers {
            let name = provider.name();
            for ty in provider.resource_types() {
                registry.types.insert(ty.name, (name, ty));
            }
            registry.providers.insert(name, provider);
        }
        registry
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    pub fn provider_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.providers.keys().copied()
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.types.get(name).map(|(_, ty)| ty)
    }

    /// The provider that owns a resource type.
    pub fn provider_of(&self, type_name: &str) -> Option<&'static str> {
        self.types.get(type_name).map(|(p, _)| *p)
    }

    pub fn type_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}
