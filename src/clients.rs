//! Provider configuration, in the three forms the engine needs it, and the clients made from
//! it. A provider block is hashed into a plan with its secrets by their keyed hash
//! ([`hashed`]), kept in the state without any secret value, so that `destroy` works with the
//! spec gone ([`kept`]), and resolved with every secret in for the calls ([`resolved`]). One
//! module holds the three, so that they cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fabrik_provider::{Attributes, Client, Context, Value};

use crate::error::Error;
use crate::registry::Registry;
use crate::resolve::{self, Inputs};
use crate::secrets::Secrets;
use crate::spec::{ProviderBlock, Spec};
use crate::state::State;
use crate::template::{Part, Reference};

/// Configured provider clients, by provider name.
pub type Clients = BTreeMap<String, Box<dyn Client>>;

/// Configures every provider the spec or the state needs. Configurations come from the spec
/// (with its secrets) when there is one, else from what the state recorded at the last apply.
pub fn configure(
    registry: &Registry,
    spec: Option<(&Spec, &Secrets)>,
    state: &State,
    context: &Context,
) -> Result<Clients, Error> {
    connect(
        registry,
        &resolved(registry, spec, state, context)?,
        context,
    )
}

/// The configuration of every provider the spec or the state needs, resolved (secrets in).
pub fn resolved(
    registry: &Registry,
    spec: Option<(&Spec, &Secrets)>,
    state: &State,
    context: &Context,
) -> Result<BTreeMap<String, Attributes>, Error> {
    let mut needed: BTreeSet<&str> = state
        .resources
        .values()
        .filter_map(|r| registry.provider_of(&r.type_name))
        .collect();
    let mut configs: BTreeMap<String, Attributes> = state
        .providers
        .iter()
        .map(|(name, config)| Ok((name.clone(), recorded(name, config, &context.base_dir)?)))
        .collect::<Result<_, Error>>()?;
    if let Some((spec, secrets)) = spec {
        needed.extend(
            spec.resources
                .iter()
                .filter_map(|r| registry.provider_of(&r.type_name)),
        );
        for block in &spec.providers {
            let config =
                resolve::eval_fields(&block.config, &|r| resolve::context_value(spec, secrets, r));
            // A configuration whose variables are unset (destroy after a release is gone)
            // falls back to the one recorded at the last apply.
            if let Some(config) = resolve::known(&config) {
                configs.insert(block.name.clone(), config);
            }
        }
    }
    Ok(needed
        .into_iter()
        .map(|name| {
            let config = configs.remove(name).unwrap_or_default();
            (name.to_string(), config)
        })
        .collect())
}

/// A client for each provider of `configs`.
pub fn connect(
    registry: &Registry,
    configs: &BTreeMap<String, Attributes>,
    context: &Context,
) -> Result<Clients, Error> {
    let mut clients = Clients::new();
    for (name, config) in configs {
        let provider = registry
            .provider(name)
            .expect("provider_of names registered providers");
        let client = provider
            .configure(config, context)
            .map_err(|source| Error::Provider {
                resource: format!("provider `{name}`"),
                source,
            })?;
        clients.insert(name.clone(), client);
    }
    Ok(clients)
}

/// A provider block as hashed into the plan: values that use a secret by their keyed hash.
pub fn hashed(spec: &Spec, secrets: &Secrets, block: &ProviderBlock) -> Inputs {
    let config = resolve::eval_fields(&block.config, &|r| resolve::context_value(spec, secrets, r));
    let sensitive: BTreeSet<String> = block
        .config
        .iter()
        .filter(|(_, e)| {
            let mut refs = Vec::new();
            e.references(&mut refs);
            refs.iter().any(|(r, _)| secret_like(spec, r))
        })
        .map(|(k, _)| k.name.clone())
        .collect();
    resolve::mask(&config, &sensitive, secrets)
}

/// Whether a reference holds a secret: `${secret.X}` or a sensitive variable.
fn secret_like(spec: &Spec, reference: &Reference) -> bool {
    match reference {
        Reference::Secret(_) => true,
        Reference::Var(var) => spec.var(var).is_some_and(|d| d.sensitive),
        _ => false,
    }
}

/// The provider configurations as the state keeps them, so that `destroy` works with the spec
/// gone: a field that uses a secret is kept as written (`${secret.KEY}`) and resolved again from
/// the environment or `.env` when needed ([`resolved`]); its value is never stored.
pub fn kept(spec: &Spec, registry: &Registry, secrets: &Secrets) -> BTreeMap<String, Attributes> {
    spec.providers
        .iter()
        .map(|p| {
            let mut config = resolve::known(&hashed(spec, secrets, p)).unwrap_or_default();
            // Fields the provider marks sensitive (an API key) are never kept as values either,
            // however they are written: from the environment, as written; a literal, not at all.
            let sensitive: Vec<&'static str> = registry
                .provider(&p.name)
                .map(|provider| {
                    provider
                        .config_fields()
                        .into_iter()
                        .filter(|f| f.sensitive)
                        .map(|f| f.name)
                        .collect()
                })
                .unwrap_or_default();
            for (key, expr) in &p.config {
                let mut refs = Vec::new();
                expr.references(&mut refs);
                let secret = refs.iter().any(|(r, _)| matches!(r, Reference::Secret(_)));
                let marked = sensitive.contains(&key.name.as_str());
                // A sensitive variable's value is never kept, and cannot be looked up again
                // without the run's `--var`: the field is left out.
                if refs.iter().any(|(r, _)| secret_like(spec, r)) && !secret {
                    config.remove(&key.name);
                    continue;
                }
                match expr.written() {
                    Some(template) if secret || (marked && !refs.is_empty()) => {
                        config.insert(key.name.clone(), Value::String(template));
                    }
                    _ if marked => {
                        config.remove(&key.name);
                    }
                    _ => {}
                }
            }
            (p.name.clone(), config)
        })
        .collect()
}

/// A provider configuration as the state recorded it ([`kept`]), with each `${secret.KEY}` and
/// `${env.NAME}` looked up again in the environment and in the `.env` beside the spec.
fn recorded(provider: &str, config: &Attributes, base_dir: &Path) -> Result<Attributes, Error> {
    let mut resolved = Attributes::new();
    for (key, value) in config {
        let value = match value.as_str().map(crate::template::parse) {
            Some(Ok(parts)) if parts.iter().any(|p| matches!(p, Part::Ref(_))) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => text.push_str(&t),
                        Part::Ref(Reference::Secret(name)) => {
                            let found = crate::secrets::lookup(&name, &base_dir.join(".env"))?.ok_or_else(|| {
                                Error::Usage(format!(
                                    "provider `{provider}` needs secret `{name}`: set the environment variable `{name}` or put it in {}",
                                    base_dir.join(".env").display()
                                ))
                            })?;
                            text.push_str(found.expose());
                        }
                        Part::Ref(Reference::Env(env)) => {
                            let found = env.value().map_err(|_| {
                                Error::Usage(format!(
                                    "provider `{provider}` needs the environment variable `{}` (its configuration says `{}`)",
                                    env.name,
                                    env.written()
                                ))
                            })?;
                            text.push_str(&found);
                        }
                        Part::Ref(other) => text.push_str(&other.written()),
                    }
                }
                Value::String(text)
            }
            _ => value.clone(),
        };
        resolved.insert(key.clone(), value);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_provider_configs_get_their_secrets_again_and_never_stored_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "FABRIK_TEST_RECORDED_KEY=from-dotenv-123\n",
        )
        .unwrap();
        let mut config = Attributes::new();
        config.insert("url".into(), "http://127.0.0.1:8081".into());
        config.insert(
            "api_key".into(),
            "${secret.FABRIK_TEST_RECORDED_KEY}".into(),
        );
        let resolved = recorded("powerdns", &config, dir.path()).unwrap();
        assert_eq!(resolved["api_key"], "from-dotenv-123");
        assert_eq!(resolved["url"], "http://127.0.0.1:8081");

        config.insert("api_key".into(), "${secret.FABRIK_TEST_NOWHERE}".into());
        let err = recorded("powerdns", &config, dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs secret `FABRIK_TEST_NOWHERE`"),
            "{err}"
        );
    }
}
