//! The fields of `uptimekuma.notification` and how they map to the object Uptime Kuma stores:
//! `name`, `type` and `isDefault` beside the type's own settings, in one flat object, with the
//! ownership marker as one more key.

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Value,
};
use serde_json::{Map, json};

pub const NOTIFICATION_TYPE: &str = "uptimekuma.notification";

/// The key of a notification's config that holds the ownership marker.
pub const MARKER_KEY: &str = "fabrikOwner";

/// Keys of the stored object that are not the type's settings.
const META: [&str; 8] = [
    "name",
    "type",
    "isDefault",
    "applyExisting",
    "id",
    "active",
    "userId",
    MARKER_KEY,
];

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: NOTIFICATION_TYPE,
        description: "A notification on an Uptime Kuma server (a webhook, a chat, a mail server) that monitors send to.",
        fields: vec![
            Field::required("name", FieldKind::String, "Its name as the UI shows it."),
            Field::required(
                "type",
                FieldKind::String,
                "Uptime Kuma's name for the kind: webhook, telegram, slack, discord, smtp, ntfy, …",
            ),
            Field::optional(
                "settings",
                FieldKind::Map,
                "The kind's fields as Uptime Kuma names them, such as `{ webhookURL, webhookContentType }`.",
            ),
            Field::optional(
                "default",
                FieldKind::Boolean,
                "Turned on for new monitors (default false).",
            ),
        ],
        outputs: vec![OutputField::new(
            "id",
            "The notification's id in Uptime Kuma.",
        )],
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

pub fn validate(inputs: &Attributes) -> Result<()> {
    if let Some(Value::String(kind)) = inputs.get("type")
        && (kind.trim().is_empty() || kind.chars().any(char::is_whitespace))
    {
        return Err(invalid(format!(
            "`type` must be Uptime Kuma's name for a notification kind (webhook, slack, …), not {kind:?}"
        )));
    }
    if let Some(Value::Object(settings)) = inputs.get("settings")
        && let Some(key) = settings.keys().find(|k| META.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "`settings` may not set `{key}`: it is the notification's own field{}",
            match key.as_str() {
                "name" | "type" => format!(" (give `{key}` beside `settings`)"),
                "isDefault" => " (give `default` beside `settings`)".to_string(),
                _ => String::new(),
            }
        )));
    }
    Ok(())
}

pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    validate(inputs)?;
    let mut out = inputs.clone();
    out.entry("settings").or_insert_with(|| json!({}));
    out.entry("default").or_insert(json!(false));
    Ok(out)
}

/// The object `addNotification` is sent: `current` (what is stored now, so that keys fabrik
/// does not manage stay), less the settings `prior` had that `inputs` dropped, with `inputs`
/// and the marker written over it.
pub fn config_object(
    mut current: Map<String, Value>,
    prior: Option<&Attributes>,
    inputs: &Attributes,
    marker: &str,
) -> Map<String, Value> {
    let settings = match inputs.get("settings") {
        Some(Value::Object(s)) => s.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(before)) = prior.and_then(|p| p.get("settings")) {
        for key in before.keys() {
            if !settings.contains_key(key) {
                current.remove(key);
            }
        }
    }
    for key in ["id", "active", "userId"] {
        current.remove(key);
    }
    current.extend(settings);
    for key in ["name", "type"] {
        if let Some(v) = inputs.get(key) {
            current.insert(key.into(), v.clone());
        }
    }
    current.insert(
        "isDefault".into(),
        json!(inputs.get("default").and_then(Value::as_bool) == Some(true)),
    );
    current.insert("applyExisting".into(), json!(false));
    current.insert(MARKER_KEY.into(), json!(marker));
    current
}

/// A stored notification as a spec's inputs: `settings` holds the keys the recorded settings
/// have (others are not fabrik's), or every setting when nothing is recorded.
pub fn observed(entry: &Value, config: &Map<String, Value>, recorded: &Attributes) -> Attributes {
    let mut out = Attributes::new();
    let name = entry
        .get("name")
        .or_else(|| config.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    out.insert("name".into(), name);
    out.insert(
        "type".into(),
        config.get("type").cloned().unwrap_or(Value::Null),
    );
    let default = entry
        .get("isDefault")
        .or_else(|| config.get("isDefault"))
        .is_some_and(|d| d.as_bool() == Some(true) || d.as_i64() == Some(1));
    out.insert("default".into(), json!(default));
    let settings: Map<String, Value> = match recorded.get("settings") {
        Some(Value::Object(keys)) => config
            .iter()
            .filter(|(k, _)| keys.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => config
            .iter()
            .filter(|(k, _)| !META.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    out.insert("settings".into(), Value::Object(settings));
    out
}

/// Every text of the settings: a refusal must not quote any (tokens, passwords, webhook URLs
/// with their keys).
pub fn secrets(inputs: &Attributes) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(settings) = inputs.get("settings") {
        walk(settings, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_config_keeps_what_fabrik_does_not_manage_and_drops_what_the_spec_dropped() {
        let current = attrs(
            json!({"name":"old","type":"webhook","webhookURL":"a","extra":1,"gone":"x","id":3}),
        );
        let prior = attrs(json!({"settings":{"webhookURL":"a","gone":"x"}}));
        let inputs = attrs(
            json!({"name":"hook","type":"webhook","settings":{"webhookURL":"b"},"default":true}),
        );
        let config = config_object(current, Some(&prior), &inputs, "fabrik:s/hook");
        assert_eq!(
            Value::Object(config),
            json!({"name":"hook","type":"webhook","webhookURL":"b","extra":1,"isDefault":true,
                   "applyExisting":false,"fabrikOwner":"fabrik:s/hook"})
        );
    }

    #[test]
    fn observed_settings_are_those_recorded() {
        let config = attrs(
            json!({"name":"hook","type":"webhook","webhookURL":"b","extra":1,"fabrikOwner":"m"}),
        );
        let entry = json!({"id":1,"name":"hook","isDefault":0,"config":"…"});
        let recorded = attrs(json!({"settings":{"webhookURL":"a"}}));
        assert_eq!(
            Value::Object(observed(&entry, &config, &recorded)),
            json!({"name":"hook","type":"webhook","default":false,"settings":{"webhookURL":"b"}})
        );
        assert_eq!(
            observed(&entry, &config, &Attributes::new())["settings"],
            json!({"webhookURL":"b","extra":1})
        );
    }

    #[test]
    fn settings_may_not_set_the_notifications_own_fields() {
        let err = validate(&attrs(json!({"settings":{"isDefault":true}}))).unwrap_err();
        assert!(err.message.contains("give `default`"), "{}", err.message);
        assert!(validate(&attrs(json!({"type":"web hook"}))).is_err());
    }
}
