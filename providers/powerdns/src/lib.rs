//! The `powerdns` provider: zones and RRsets in a PowerDNS Authoritative server (4.7 and
//! later), through its HTTP API.
//!
//! - [`zone`]: `powerdns.zone`, one zone. An existing zone is never taken over by a create,
//!   only by `adopt: true` or `fabrik import`.
//! - [`record`]: `powerdns.record`, one RRset, owned through a `fabrik:<stack>/<resource>`
//!   comment; an RRset without it is never written or deleted until `adopt: true` or
//!   `fabrik import` stamps it.
//! - Each type's `schema.rs` holds its fields and the normal form its inputs are compared in,
//!   so that two spellings of one thing never show as a change; `dns_name` the normal form of
//!   DNS names both types share.
//! - `api`: the HTTP client (timeouts, retries with backoff and jitter, `Retry-After`, error
//!   kinds from statuses; never `Expect: 100-continue`).

mod api;
mod dns_name;
pub mod record;
pub mod zone;

use fabrik_provider::{
    Applied, Attributes, Call, Change, Client, Context, Creation, Error, ErrorKind, Field,
    FieldKind, Found, Observed, Provider, Read, ResourceType, Result, Target,
};

pub use api::Retry;
pub use record::RECORD_TYPE;
pub use zone::ZONE_TYPE;

/// The server id of a PowerDNS Authoritative server (it has only one).
const DEFAULT_SERVER_ID: &str = "localhost";

/// The `powerdns` provider.
#[derive(Debug, Default)]
pub struct PowerDns;

impl Provider for PowerDns {
    fn name(&self) -> &'static str {
        "powerdns"
    }

    fn config_fields(&self) -> Vec<Field> {
        vec![
            Field::required(
                "url",
                FieldKind::String,
                "The PowerDNS webserver's address, such as \"http://127.0.0.1:8081\".",
            ),
            Field::required(
                "api_key",
                FieldKind::String,
                "The API key (pdns.conf `api-key`), sent as the X-API-Key header.",
            )
            .sensitive(),
            Field::optional(
                "server_id",
                FieldKind::String,
                "The server id in API paths (default \"localhost\").",
            ),
            fabrik_provider::http::rate_limit_wait_field(),
        ]
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![zone::resource_type(), record::resource_type()]
    }

    fn configure(&self, config: &Attributes, context: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(PowerDnsClient::with_cancel(
            config,
            Retry::default(),
            context.cancel.clone(),
        )?))
    }

    fn validate(&self, target: Target<'_>, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            ZONE_TYPE => zone::validate(inputs),
            RECORD_TYPE => record::validate(inputs),
            _ => Ok(()),
        }
    }

    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        match type_name {
            ZONE_TYPE => zone::normalise(inputs),
            RECORD_TYPE => record::normalise(inputs),
            _ => Ok(inputs.clone()),
        }
    }

    /// A zone by its name, a record by its RRset (name and type): one object on the server.
    fn place(
        &self,
        type_name: &str,
        inputs: &Attributes,
        _context: &Context,
    ) -> Result<Option<String>> {
        let text = |field: &str| inputs.get(field).and_then(|v| v.as_str());
        Ok(match type_name {
            ZONE_TYPE => text("name").map(|name| format!("PowerDNS zone {name}")),
            RECORD_TYPE => match (text("name"), text("type")) {
                (Some(name), Some(rtype)) => Some(format!("PowerDNS RRset {name} {rtype}")),
                _ => None,
            },
            _ => None,
        })
    }
}

/// A configured `powerdns` provider: one server, one API key.
pub struct PowerDnsClient {
    api: api::Api,
    records: record::Records,
}

impl std::fmt::Debug for PowerDnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDnsClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl PowerDnsClient {
    /// A client for the server a `providers.powerdns` block names, retrying as `retry` says
    /// (tests shorten the waits); the block's `rate_limit_wait`, when given, replaces the
    /// retry's. Nothing cuts its waits short ([`PowerDnsClient::with_cancel`] for a run's).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a missing or malformed `url`, `api_key`, `server_id`
    /// or `rate_limit_wait`.
    pub fn new(config: &Attributes, retry: Retry) -> Result<Self> {
        Self::with_cancel(config, retry, fabrik_provider::Cancel::new())
    }

    /// Like [`PowerDnsClient::new`], its waits ended by `cancel` (the run's, from
    /// [`Context::cancel`]).
    ///
    /// # Errors
    /// As [`PowerDnsClient::new`].
    pub fn with_cancel(
        config: &Attributes,
        retry: Retry,
        cancel: fabrik_provider::Cancel,
    ) -> Result<Self> {
        let text = |field: &str| fabrik_provider::config_text(config, "powerdns", field);
        let url = fabrik_provider::config_required(config, "powerdns", "url")?;
        let key = fabrik_provider::config_required(config, "powerdns", "api_key")?;
        let server_id = text("server_id")?.unwrap_or_else(|| DEFAULT_SERVER_ID.to_string());
        let retry = Retry {
            rate_limit_wait: fabrik_provider::http::rate_limit_wait(
                config,
                "powerdns",
                retry.rate_limit_wait,
            )?,
            ..retry
        };
        Ok(PowerDnsClient {
            api: api::Api::new(&url, api::ApiKey::new(key), &server_id, retry, cancel)?,
            records: record::Records::default(),
        })
    }
}

/// Dispatches each call to the module of its resource type.
impl Client for PowerDnsClient {
    fn read(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        match target.type_name {
            ZONE_TYPE => zone::read(&self.api, id, inputs),
            RECORD_TYPE => self.records.read(&self.api, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        match target.type_name {
            ZONE_TYPE => zone::find(&self.api, inputs),
            RECORD_TYPE => self.records.find(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match target.type_name {
            ZONE_TYPE => zone::create(&self.api, target, inputs),
            RECORD_TYPE => self.records.create(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match target.type_name {
            ZONE_TYPE => zone::adopt(&self.api, target, inputs),
            RECORD_TYPE => self.records.adopt(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn update(
        &self,
        target: Target<'_>,
        id: &str,
        _prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        match target.type_name {
            // Every zone field forces a new zone: there is nothing to change in place.
            ZONE_TYPE => zone::read(&self.api, id, inputs)?
                .map(|seen| Applied {
                    id: id.to_string(),
                    outputs: seen.outputs,
                    found: false,
                })
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("zone {id} no longer exists in PowerDNS"),
                    )
                }),
            RECORD_TYPE => self.records.update(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            ZONE_TYPE => zone::delete(&self.api, target, id),
            RECORD_TYPE => self.records.delete(&self.api, target, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        match target.type_name {
            ZONE_TYPE => zone::import(&self.api, target, id, inputs),
            RECORD_TYPE => self.records.import(&self.api, target, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    /// Records batch by zone: one zone read and one atomic PATCH for all of them.
    fn batch_key(&self, target: Target<'_>, inputs: &Attributes) -> Option<String> {
        match target.type_name {
            RECORD_TYPE => record::zone(inputs),
            _ => None,
        }
    }

    fn apply_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Option<Applied>>> {
        if calls.iter().all(|c| c.target.type_name == RECORD_TYPE) {
            return self.records.apply_batch(&self.api, calls);
        }
        calls.iter().map(|call| self.apply_one(call)).collect()
    }

    fn obstacles(&self, creations: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        records_together(
            creations,
            |c| c.target.type_name,
            |records| self.records.obstacles(&self.api, records),
            |c| match c.target.type_name {
                ZONE_TYPE => zone::obstacle(&self.api, c.target, c.inputs),
                other => Err(unknown_type(other)),
            },
        )
    }

    /// Reads the records of each zone with one request; zones one by one.
    fn read_many(&self, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        records_together(
            items,
            |item| item.target.type_name,
            |records| self.records.read_many(&self.api, records),
            |item| self.read(item.target, item.id, item.inputs),
        )
    }
}

/// Answers `items` in order: the records all at once (so they can share a zone's request), the
/// rest one by one.
fn records_together<T: Copy, R>(
    items: &[T],
    type_of: impl Fn(&T) -> &str,
    records: impl FnOnce(&[T]) -> Vec<R>,
    one: impl Fn(&T) -> R,
) -> Vec<R> {
    let (record_at, others): (Vec<usize>, Vec<usize>) =
        (0..items.len()).partition(|&i| type_of(&items[i]) == RECORD_TYPE);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let asked: Vec<T> = record_at.iter().map(|&i| items[i]).collect();
    for (i, answer) in record_at.into_iter().zip(records(&asked)) {
        results[i] = Some(answer);
    }
    for i in others {
        results[i] = Some(one(&items[i]));
    }
    results
        .into_iter()
        .map(|r| r.expect("every item is answered"))
        .collect()
}

impl PowerDnsClient {
    fn apply_one(&self, call: &Call<'_>) -> Result<Option<Applied>> {
        match call.change {
            Change::Create { inputs } => self.create(call.target, inputs).map(Some),
            Change::Update { id, prior, inputs } => {
                self.update(call.target, id, prior, inputs).map(Some)
            }
            Change::Delete { id, inputs } => self.delete(call.target, id, inputs).map(|()| None),
        }
    }
}

fn unknown_type(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the powerdns provider has no resource type `{name}`"),
    )
}
