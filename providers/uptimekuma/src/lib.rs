//! The `uptimekuma` provider: monitors and notifications on an Uptime Kuma server (2.x),
//! through the Socket.IO events its web UI uses (it has no REST API for them).
//!
//! - [`monitor`]: `uptimekuma.monitor`, owned through a `fabrik:<stack>/<resource>` line in its
//!   description; updates fetch the monitor and send it back whole, since `editMonitor`
//!   replaces everything (notification links included).
//! - [`notification`]: `uptimekuma.notification`, owned through a `fabrikOwner` key in its
//!   stored config.
//! - Each type's `schema.rs` holds its fields, its normal form and the mapping of the spec's
//!   snake_case fields to Uptime Kuma's keys.
//! - `api`: one websocket and one login per run, shared by every call; `socket`: the
//!   Engine.IO / Socket.IO framing.

mod api;
pub mod monitor;
pub mod notification;
mod socket;

use fabrik_provider::{
    Applied, Attributes, Client, Context, Creation, Error, ErrorKind, Field, FieldKind, Found,
    Observed, Provider, Read, ResourceType, Result, Target,
};

pub use monitor::schema::MONITOR_TYPE;
pub use notification::schema::NOTIFICATION_TYPE;

/// The `uptimekuma` provider.
#[derive(Debug, Default)]
pub struct UptimeKuma;

impl Provider for UptimeKuma {
    fn name(&self) -> &'static str {
        "uptimekuma"
    }

    fn config_fields(&self) -> Vec<Field> {
        vec![
            Field::required(
                "url",
                FieldKind::String,
                "The server's address, such as \"https://status.example.com\" or \"http://127.0.0.1:3001\".",
            ),
            Field::optional(
                "username",
                FieldKind::String,
                "The user to log in as (with `password`).",
            ),
            Field::optional("password", FieldKind::String, "The user's password.").sensitive(),
            Field::optional(
                "token",
                FieldKind::String,
                "Instead of a username and password: the JWT a login returned (it does not expire, and works with 2FA on).",
            )
            .sensitive(),
        ]
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![
            monitor::schema::resource_type(),
            notification::schema::resource_type(),
        ]
    }

    fn configure(&self, config: &Attributes, context: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(UptimeKumaClient::new(
            config,
            context.cancel.clone(),
        )?))
    }

    fn validate(&self, target: Target<'_>, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            MONITOR_TYPE => monitor::schema::validate(inputs),
            NOTIFICATION_TYPE => notification::schema::validate(inputs),
            _ => Ok(()),
        }
    }

    /// A monitor is paused while what it watches changes, unless the spec keeps it paused
    /// anyway or opts it out (`pause_during_changes: false`).
    fn pausable(&self, type_name: &str, inputs: &Attributes) -> bool {
        type_name == MONITOR_TYPE
            && inputs
                .get("paused")
                .and_then(fabrik_provider::Value::as_bool)
                != Some(true)
            && inputs
                .get(monitor::schema::PAUSE_DURING_CHANGES)
                .and_then(fabrik_provider::Value::as_bool)
                != Some(false)
    }

    fn paused_field(&self, type_name: &str) -> Option<&'static str> {
        (type_name == MONITOR_TYPE).then_some("paused")
    }

    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        match type_name {
            MONITOR_TYPE => monitor::schema::normalise(inputs),
            NOTIFICATION_TYPE => notification::schema::normalise(inputs),
            _ => Ok(inputs.clone()),
        }
    }
}

/// A configured `uptimekuma` provider: one server, one session.
#[derive(Debug)]
pub struct UptimeKumaClient {
    api: api::Api,
}

impl UptimeKumaClient {
    /// A client for the server a `providers.uptimekuma` block names. Nothing connects until
    /// the first call.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a malformed `url`, or credentials that are not either a
    /// `username` with a `password` or a `token`.
    pub fn new(config: &Attributes, cancel: fabrik_provider::Cancel) -> Result<Self> {
        let text = |field: &str| fabrik_provider::config_text(config, "uptimekuma", field);
        let url = fabrik_provider::config_required(config, "uptimekuma", "url")?;
        let address = api::Address::parse(&url)?;
        let credentials = match (text("username")?, text("password")?, text("token")?) {
            (Some(username), Some(password), None) => {
                api::Credentials::Password { username, password }
            }
            (None, None, Some(token)) => api::Credentials::Token(token),
            (_, _, Some(_)) => {
                return Err(invalid(
                    "provider uptimekuma takes either `token` or `username` and `password`, not both",
                ));
            }
            _ => {
                return Err(invalid(
                    "provider uptimekuma needs `username` and `password`, or `token`",
                ));
            }
        };
        Ok(UptimeKumaClient {
            api: api::Api::new(address, credentials, cancel),
        })
    }
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn unknown_type(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the uptimekuma provider has no resource type `{name}`"),
    )
}

impl Client for UptimeKumaClient {
    fn read(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        match target.type_name {
            MONITOR_TYPE => monitor::read(&self.api, id, inputs),
            NOTIFICATION_TYPE => notification::read(&self.api, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        match target.type_name {
            MONITOR_TYPE => monitor::find(&self.api, target, inputs),
            NOTIFICATION_TYPE => notification::find(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match target.type_name {
            MONITOR_TYPE => monitor::create(&self.api, target, inputs),
            NOTIFICATION_TYPE => notification::create(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        match target.type_name {
            MONITOR_TYPE => monitor::adopt(&self.api, target, inputs),
            NOTIFICATION_TYPE => notification::adopt(&self.api, target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        match target.type_name {
            MONITOR_TYPE => monitor::update(&self.api, target, id, prior, inputs),
            NOTIFICATION_TYPE => notification::update(&self.api, target, id, prior, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn delete(&self, target: Target<'_>, id: &str, _inputs: &Attributes) -> Result<()> {
        match target.type_name {
            MONITOR_TYPE => monitor::delete(&self.api, target, id),
            NOTIFICATION_TYPE => notification::delete(&self.api, target, id),
            other => Err(unknown_type(other)),
        }
    }

    fn pause(&self, target: Target<'_>, id: &str) -> Result<bool> {
        match target.type_name {
            MONITOR_TYPE => monitor::pause(&self.api, target, id),
            other => Err(unknown_type(other)),
        }
    }

    fn resume(&self, target: Target<'_>, id: &str) -> Result<()> {
        match target.type_name {
            MONITOR_TYPE => monitor::resume(&self.api, target, id),
            other => Err(unknown_type(other)),
        }
    }

    fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        match target.type_name {
            MONITOR_TYPE => monitor::import(&self.api, target, id, inputs),
            NOTIFICATION_TYPE => notification::import(&self.api, target, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn obstacles(&self, creations: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        creations
            .iter()
            .map(|c| match c.target.type_name {
                MONITOR_TYPE => monitor::obstacle(&self.api, c.target, c.inputs),
                NOTIFICATION_TYPE => notification::obstacle(&self.api, c.target, c.inputs),
                other => Err(unknown_type(other)),
            })
            .collect()
    }

    /// Monitors are read with one list for all of them.
    fn read_many(&self, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        let monitors: Vec<(&str, &Attributes)> = items
            .iter()
            .filter(|i| i.target.type_name == MONITOR_TYPE)
            .map(|i| (i.id, i.inputs))
            .collect();
        let mut seen = monitor::read_many(&self.api, &monitors).into_iter();
        items
            .iter()
            .map(|item| {
                if item.target.type_name == MONITOR_TYPE {
                    seen.next().expect("one answer per monitor")
                } else {
                    self.read(item.target, item.id, item.inputs)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use fabrik_provider::Provider;
    use serde_json::json;

    use super::{MONITOR_TYPE, NOTIFICATION_TYPE, UptimeKuma};

    #[test]
    fn an_active_monitor_is_pausable_unless_paused_or_opted_out() {
        let pausable = |inputs: serde_json::Value| {
            UptimeKuma.pausable(MONITOR_TYPE, inputs.as_object().expect("an object"))
        };
        assert!(pausable(json!({"name": "api", "paused": false})));
        assert!(pausable(
            json!({"name": "api", "pause_during_changes": true})
        ));
        assert!(!pausable(json!({"name": "api", "paused": true})));
        assert!(!pausable(
            json!({"name": "api", "pause_during_changes": false})
        ));
        assert!(!UptimeKuma.pausable(NOTIFICATION_TYPE, &serde_json::Map::new()));
    }
}
