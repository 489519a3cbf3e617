//! The `coolify` provider: applications, databases and services on a Coolify instance (v4), through its REST API.
//!
//! - `application`: `coolify.application`: find by ownership marker, create, read, update,
//!   delete (waiting until the asynchronous delete is done); [`schema`] its
//!   fields, checks and normal form, and how they map to Coolify's application fields (writes
//!   use `domains`, reads answer `fqdn`; ports are sent as a string; no field the server
//!   refuses on PATCH is ever sent); names of projects, environments and servers resolved to
//!   uuids.
//! - `database`: `coolify.database`: find by ownership marker, create, start and wait until
//!   healthy, update (restarting when the change needs it), delete (its volumes only when the
//!   resource says so); its scheduled backups; credentials sent as each engine's fields.
//! - `service`: `coolify.service`: a one-click service or a Docker Compose stack (sent
//!   base64-encoded, compared as parsed YAML), found by ownership marker, started and waited for.
//! - `env`: environment variables keyed on `(key, is_preview)`.
//! - `inputs`: reading the inputs of all three types alike (names, durations, hashed values).
//! - `deploy`: deploy and wait, with the server's known quirks.
//! - `api`: the requests, through the SDK's endpoint (timeouts, retries with backoff and
//!   jitter, `Retry-After`, waits the run's interrupt ends), error kinds from statuses, the
//!   field a refusal names, domain conflicts named.

mod api;
mod application;
mod database;
mod deploy;
mod env;
mod inputs;
mod service;

use std::time::Duration;

use fabrik_provider::{
    Applied, Attributes, Cancel, Client, Context, Error, ErrorKind, Field, FieldKind, Found,
    Observed, Provider, ResourceType, Result, Target, Value,
};

pub use api::Retry;
pub use application::schema::{self, APPLICATION_TYPE};
pub use database::schema::DATABASE_TYPE;
pub use service::schema::SERVICE_TYPE;

/// How often a deployment's status is asked for unless the configuration says otherwise.
const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// The `coolify` provider.
#[derive(Debug, Default)]
pub struct Coolify;

impl Provider for Coolify {
    fn name(&self) -> &'static str {
        "coolify"
    }

    fn config_fields(&self) -> Vec<Field> {
        vec![
            Field::required(
                "url",
                FieldKind::String,
                "The Coolify instance's address, such as \"https://coolify.example.com\".",
            ),
            Field::required(
                "token",
                FieldKind::String,
                "An API token (Keys & Tokens) with read, read:sensitive, write and deploy.",
            )
            .sensitive(),
            Field::optional(
                "poll_interval",
                FieldKind::String,
                "How often a deployment's progress is asked for (default \"2s\").",
            ),
            fabrik_provider::http::rate_limit_wait_field(),
        ]
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![
            schema::resource_type(),
            database::schema::resource_type(),
            service::schema::resource_type(),
        ]
    }

    fn configure(&self, config: &Attributes, context: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(CoolifyClient::with_cancel(
            config,
            api::default_retry(),
            context.cancel.clone(),
        )?))
    }

    fn validate(&self, target: Target<'_>, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            APPLICATION_TYPE => schema::validate(inputs),
            DATABASE_TYPE => database::schema::validate(inputs),
            SERVICE_TYPE => service::schema::validate(inputs),
            _ => Ok(()),
        }
    }

    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        match type_name {
            APPLICATION_TYPE => schema::normalise(inputs),
            DATABASE_TYPE => database::schema::normalise(inputs),
            SERVICE_TYPE => service::schema::normalise(inputs),
            _ => Ok(inputs.clone()),
        }
    }
}

/// A configured `coolify` provider: one instance, one token.
#[derive(Debug)]
pub struct CoolifyClient {
    apps: application::Applications,
}

impl CoolifyClient {
    /// A client for the instance a `providers.coolify` block names, retrying as `retry` says
    /// (tests shorten the waits); the block's `rate_limit_wait`, when given, replaces the
    /// retry's. Nothing cuts its waits short ([`CoolifyClient::with_cancel`] for a run's).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a missing or malformed `url`, `token`,
    /// `poll_interval` or `rate_limit_wait`.
    pub fn new(config: &Attributes, retry: Retry) -> Result<Self> {
        Self::with_cancel(config, retry, Cancel::new())
    }

    /// Like [`CoolifyClient::new`], its waits (deployments, deletions, retries) ended by
    /// `cancel` (the run's, from [`Context::cancel`]).
    ///
    /// # Errors
    /// As [`CoolifyClient::new`].
    pub fn with_cancel(config: &Attributes, retry: Retry, cancel: Cancel) -> Result<Self> {
        let url = fabrik_provider::config_required(config, "coolify", "url")?;
        let token = fabrik_provider::config_required(config, "coolify", "token")?;
        let poll = match config.get("poll_interval") {
            None | Some(Value::Null) => DEFAULT_POLL,
            Some(v) => inputs::parse_duration("poll_interval", v)?,
        };
        let retry = Retry {
            rate_limit_wait: fabrik_provider::http::rate_limit_wait(
                config,
                "coolify",
                retry.rate_limit_wait,
            )?,
            ..retry
        };
        Ok(CoolifyClient {
            apps: application::Applications {
                api: api::Api::new(&url, api::Token::new(token), retry, cancel)?,
                poll,
                naming: std::sync::Mutex::new(()),
            },
        })
    }
}

/// Which of the provider's types a call is for.
enum Kind {
    Application,
    Database,
    Service,
}

fn kind_of(target: Target<'_>) -> Result<Kind> {
    match target.type_name {
        APPLICATION_TYPE => Ok(Kind::Application),
        DATABASE_TYPE => Ok(Kind::Database),
        SERVICE_TYPE => Ok(Kind::Service),
        other => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the coolify provider has no resource type `{other}`"),
        )),
    }
}

impl CoolifyClient {
    fn databases(&self) -> database::Databases<'_> {
        database::Databases { apps: &self.apps }
    }

    fn services(&self) -> service::Services<'_> {
        service::Services { apps: &self.apps }
    }
}

impl Client for CoolifyClient {
    fn read(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        match kind_of(target)? {
            Kind::Application => self.apps.read(id, inputs),
            Kind::Database => self.databases().read(id, inputs),
            Kind::Service => self.services().read(id, inputs),
        }
    }

    fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        match kind_of(target)? {
            Kind::Application => self.apps.find(target, inputs),
            Kind::Database => self.databases().find(target, inputs),
            Kind::Service => self.services().find(target, inputs),
        }
    }

    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match kind_of(target)? {
            Kind::Application => self.apps.create(target, inputs),
            Kind::Database => self.databases().create(target, inputs),
            Kind::Service => self.services().create(target, inputs),
        }
    }

    fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match kind_of(target)? {
            Kind::Application => self.apps.adopt(target, inputs),
            Kind::Database => self.databases().adopt(target, inputs),
            Kind::Service => Err(Error::new(
                ErrorKind::InvalidInput,
                "`adopt` is not supported for coolify.service: take a service over with `fabrik import`",
            )),
        }
    }

    fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        match kind_of(target)? {
            Kind::Application => self.apps.update(target, id, prior, inputs),
            Kind::Database => self.databases().update(target, id, prior, inputs),
            Kind::Service => self.services().update(target, id, prior, inputs),
        }
    }

    fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        match kind_of(target)? {
            Kind::Application => self.apps.delete(target, id, inputs),
            Kind::Database => self.databases().delete(target, id, inputs),
            Kind::Service => self.services().delete(target, id, inputs),
        }
    }

    fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        match kind_of(target)? {
            Kind::Application => self.apps.import(target, id, inputs),
            Kind::Database => self.databases().import(target, id, inputs),
            Kind::Service => self.services().import(target, id, inputs),
        }
    }
}
