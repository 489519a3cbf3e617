//! The `cloudflare` provider: DNS records in Cloudflare zones, through the API v4.
//!
//! - [`record`]: `cloudflare.record`, one record, owned through a `fabrik:<stack>/<resource>`
//!   marker at the end of its comment; a record without it is never written or deleted. Its
//!   fields and normal form are in `record/schema.rs`, many records at once (the batch
//!   endpoint, zone-wide reads) in `record/batch.rs`.
//! - `api`: the HTTP client (bearer token, timeouts, retries with backoff and jitter,
//!   `Retry-After`, a client-side request budget, Cloudflare's envelope mapped to error kinds;
//!   never `Expect: 100-continue`).
//!
//! Many changes in one zone go out through the batch endpoint, and a refresh lists each zone
//! once instead of reading record by record: Cloudflare's budget of 1,200 requests per 5
//! minutes would otherwise end a large apply.

mod api;
pub mod record;

use fabrik_provider::{
    Applied, Attributes, Call, Client, Context, Creation, Error, ErrorKind, Field, FieldKind,
    Found, Observed, Provider, Read, ResourceType, Result, Target, Value,
};

pub use api::Tuning;
pub use record::RECORD_TYPE;

/// Cloudflare's API base.
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// Records per batch request on the Free plan (3,500 on paid plans).
const DEFAULT_BATCH_SIZE: u64 = 200;
const MAX_BATCH_SIZE: u64 = 3_500;
/// Cloudflare's limit: 1,200 requests per 5 minutes per user.
const DEFAULT_BUDGET: u64 = 1_200;

/// The `cloudflare` provider.
#[derive(Debug, Default)]
pub struct Cloudflare;

impl Provider for Cloudflare {
    fn name(&self) -> &'static str {
        "cloudflare"
    }

    fn config_fields(&self) -> Vec<Field> {
        vec![
            Field::required(
                "token",
                FieldKind::String,
                "An API token with Zone Read and DNS Write on the zones used.",
            )
            .sensitive(),
            Field::optional(
                "api_url",
                FieldKind::String,
                "The API's base URL (default \"https://api.cloudflare.com/client/v4\").",
            ),
            Field::optional(
                "batch_size",
                FieldKind::Integer,
                "Records per batch request: 200 on the Free plan (the default), up to 3500 on \
                 paid plans.",
            ),
            Field::optional(
                "request_budget",
                FieldKind::Integer,
                "Requests this run may send per 5 minutes (default 1200, Cloudflare's limit \
                 per user); lower it when other tools share the token's user.",
            ),
            fabrik_provider::http::rate_limit_wait_field(),
        ]
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![record::resource_type()]
    }

    fn configure(&self, config: &Attributes, context: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(CloudflareClient::with_cancel(
            config,
            Tuning::default(),
            context.cancel.clone(),
        )?))
    }

    fn validate(&self, target: Target<'_>, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            RECORD_TYPE => record::validate(target, inputs),
            _ => Ok(()),
        }
    }

    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        match type_name {
            RECORD_TYPE => record::normalise(inputs),
            _ => Ok(inputs.clone()),
        }
    }

    /// A record is one object per zone, name, type and content: Cloudflare keeps several
    /// records of one name and type, but two with the same content are one record twice.
    fn place(
        &self,
        type_name: &str,
        inputs: &Attributes,
        _context: &Context,
    ) -> Result<Option<String>> {
        let text = |field: &str| inputs.get(field).and_then(|v| v.as_str());
        Ok(
            match (
                type_name,
                text("zone"),
                text("name"),
                text("type"),
                text("content"),
            ) {
                (RECORD_TYPE, Some(zone), Some(name), Some(rtype), Some(content)) => Some(format!(
                    "Cloudflare record {name} {rtype} {content:?} in zone {zone}"
                )),
                _ => None,
            },
        )
    }
}

/// A configured `cloudflare` provider: one token, one API.
pub struct CloudflareClient {
    api: api::Api,
    records: record::Records,
}

impl std::fmt::Debug for CloudflareClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudflareClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl CloudflareClient {
    /// A client for what a `providers.cloudflare` block says, with `tuning` for retries and
    /// the budget's window (tests shorten the waits); the block's `rate_limit_wait`, when
    /// given, replaces the tuning's. Nothing cuts its waits short
    /// ([`CloudflareClient::with_cancel`] for a run's).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a missing token or a malformed knob.
    pub fn new(config: &Attributes, tuning: Tuning) -> Result<Self> {
        Self::with_cancel(config, tuning, fabrik_provider::Cancel::new())
    }

    /// Like [`CloudflareClient::new`], its waits ended by `cancel` (the run's, from
    /// [`Context::cancel`]).
    ///
    /// # Errors
    /// As [`CloudflareClient::new`].
    pub fn with_cancel(
        config: &Attributes,
        tuning: Tuning,
        cancel: fabrik_provider::Cancel,
    ) -> Result<Self> {
        let text = |field: &str| fabrik_provider::config_text(config, "cloudflare", field);
        let number = |field: &str, default: u64, max: u64| match config.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("`{field}` of provider cloudflare must be 1 to {max}, not {v}"),
                )),
            },
        };
        let token = text("token")?.ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "provider cloudflare needs `token`")
        })?;
        let url = text("api_url")?.unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let batch_size = number("batch_size", DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE)?;
        let budget = number("request_budget", DEFAULT_BUDGET, u64::from(u32::MAX))?;
        let tuning = Tuning {
            rate_limit_wait: fabrik_provider::http::rate_limit_wait(
                config,
                "cloudflare",
                tuning.rate_limit_wait,
            )?,
            ..tuning
        };
        Ok(CloudflareClient {
            api: api::Api::new(&url, api::Token::new(token), budget as u32, tuning, cancel)?,
            records: record::Records::new(batch_size as usize),
        })
    }
}

impl Client for CloudflareClient {
    fn read(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        check_type(target)?;
        self.records.read(&self.api, id, inputs)
    }

    fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        check_type(target)?;
        self.records.find(&self.api, target, inputs)
    }

    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        check_type(target)?;
        self.records.create(&self.api, target, inputs)
    }

    fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        check_type(target)?;
        self.records.adopt(&self.api, target, inputs)
    }

    fn update(
        &self,
        target: Target<'_>,
        id: &str,
        _prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        check_type(target)?;
        self.records.update(&self.api, target, id, inputs)
    }

    fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        check_type(target)?;
        self.records.delete(&self.api, target, id, inputs)
    }

    fn batch_key(&self, target: Target<'_>, inputs: &Attributes) -> Option<String> {
        (target.type_name == RECORD_TYPE)
            .then(|| record::batch_key(inputs))
            .flatten()
    }

    fn apply_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Option<Applied>>> {
        if let Some(call) = calls.iter().find(|c| c.target.type_name != RECORD_TYPE) {
            let name = call.target.type_name;
            return calls.iter().map(|_| Err(unknown_type(name))).collect();
        }
        self.records.apply_batch(&self.api, calls)
    }

    fn read_many(&self, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        if let Some(item) = items.iter().find(|i| i.target.type_name != RECORD_TYPE) {
            let name = item.target.type_name;
            return items.iter().map(|_| Err(unknown_type(name))).collect();
        }
        self.records.read_many(&self.api, items)
    }

    fn obstacles(&self, creations: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        if let Some(c) = creations.iter().find(|c| c.target.type_name != RECORD_TYPE) {
            let name = c.target.type_name;
            return creations.iter().map(|_| Err(unknown_type(name))).collect();
        }
        self.records.obstacles(&self.api, creations)
    }

    fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        check_type(target)?;
        self.records.import(&self.api, target, id, inputs)
    }
}

fn check_type(target: Target<'_>) -> Result<()> {
    if target.type_name == RECORD_TYPE {
        Ok(())
    } else {
        Err(unknown_type(target.type_name))
    }
}

fn unknown_type(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the cloudflare provider has no resource type `{name}`"),
    )
}
