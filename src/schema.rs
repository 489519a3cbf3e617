//! The spec as a JSON Schema (draft 2020-12), for editors: `fabrik schema` prints it and the
//! examples point at the copy in `schema/fabrik.schema.json` through a
//! `# yaml-language-server: $schema=…` line, so a spec is completed and checked as it is typed.
//!
//! The schema is built from the [`Registry`] at run time (each provider's configuration fields,
//! each resource type's fields), so it is written with `serde_json::json!` rather than derived
//! with schemars: the spec is read from a YAML tree by hand (`spec/load.rs`), there is no Rust
//! type whose derive would describe it, and the per-type parts exist only as runtime data.
//!
//! The schema accepts a little more than `fabrik validate` (references are not followed, a
//! duration is any string), never less: what it refuses, validate refuses too
//! (`tests/it/schema.rs` holds the two together on the examples and on bad inputs).

use serde_json::{Map, Value, json};

use crate::registry::Registry;
use fabrik_provider::{Field, FieldKind};

/// Where the committed copy of the schema lives, relative to the repository's root.
pub const SCHEMA_PATH: &str = "schema/fabrik.schema.json";

/// A name as stacks and resources are named (`spec::valid_name`).
const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$";
/// A name as secrets and variables are named: like an environment variable.
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// DNS record types a `dns` gate asks for (`verify/parse.rs`), in either case as it accepts.
const DNS_TYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "TXT", "MX", "NS", "PTR", "SRV", "CAA", "SOA",
];

/// The JSON Schema of a spec whose providers are those of `registry`.
pub fn spec_schema(registry: &Registry) -> Value {
    let mut defs = Map::new();
    defs.insert(
        "reference".into(),
        json!({
            "description": "A value known at plan or apply time: `${var.NAME}`, `${secret.NAME}`, `${env.NAME}`, `${each.key}`, `${NAME.OUTPUT}`.",
            "type": "string",
            "pattern": "^\\$\\{[^}]+\\}$"
        }),
    );
    defs.insert("duration".into(), duration());
    defs.insert("gate".into(), gate());
    defs.insert("resource".into(), resource(registry));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "fabrik spec",
        "description": "A fabrik stack: its providers, resources and gates (see the \"Spec reference\", docs/spec.md).",
        "type": "object",
        "required": ["stack"],
        "additionalProperties": false,
        "properties": {
            "stack": {
                "description": "The stack's name: it names the state.",
                "type": "string",
                "pattern": NAME_PATTERN
            },
            "backend": backend(),
            "providers": providers(registry),
            "secrets": secrets(),
            "vars": vars(),
            "outputs": outputs(),
            "moved": moved(),
            "resources": {
                "description": "The resources of the stack, by name.",
                "type": ["object", "null"],
                "propertyNames": { "pattern": NAME_PATTERN, "not": { "enum": crate::template::RESERVED_NAMES } },
                "additionalProperties": { "$ref": "#/$defs/resource" }
            },
            "verify": gates("Stack-level gates, run after every change is applied.")
        },
        "$defs": defs
    })
}

/// A value of `kind`, or a reference standing for one.
fn field_schema(field: &Field) -> Value {
    let mut schema = match field.kind {
        FieldKind::String if !field.one_of.is_empty() => one_of(field.one_of),
        FieldKind::String => json!({ "type": "string" }),
        FieldKind::Duration => json!({ "$ref": "#/$defs/duration" }),
        FieldKind::Integer => or_reference(json!({ "type": "integer" })),
        FieldKind::Boolean => or_reference(json!({ "type": "boolean" })),
        FieldKind::List => or_reference(json!({ "type": "array" })),
        FieldKind::Map => or_reference(json!({ "type": "object" })),
        FieldKind::Any => json!({}),
    };
    let mut description = field.description.to_string();
    if field.sensitive {
        description.push_str(" Sensitive: write it as a `${secret.NAME}` reference.");
    }
    if field.force_new {
        description.push_str(" Changing it replaces the object.");
    }
    if !description.is_empty() {
        schema["description"] = Value::String(description);
    }
    schema
}

/// A field with a list of values: the values as the provider spells them (what an editor
/// offers), the same in any case with blanks around (what `validate` takes, `Field::allows`),
/// or a reference.
fn one_of(values: &[&str]) -> Value {
    let any_case: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .map(|c| match (c.to_ascii_lowercase(), c.to_ascii_uppercase()) {
                    (l, u) if l != u => format!("[{u}{l}]"),
                    _ if ".*+?()[]{}|^$\\/".contains(c) => format!("\\{c}"),
                    _ => c.to_string(),
                })
                .collect()
        })
        .collect();
    json!({
        "anyOf": [
            { "enum": values },
            { "type": "string", "pattern": format!("^\\s*(?:{})\\s*$", any_case.join("|")) },
            { "$ref": "#/$defs/reference" }
        ]
    })
}

fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

fn or_reference(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "$ref": "#/$defs/reference" }] })
}

/// The fields of a `with:` or a provider block: each known field, the required ones.
fn fields_schema(fields: &[Field], description: &str) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_string(), field_schema(f)))
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut schema = json!({
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "properties": properties
    });
    if required.is_empty() {
        // `local: {}` and `local:` alike: a block left empty gives no field.
        schema["type"] = json!(["object", "null"]);
    } else {
        schema["required"] = json!(required);
    }
    schema
}

fn duration() -> Value {
    json!({
        "description": "A duration with a unit, such as \"90s\", \"5m\" or \"500ms\".",
        "type": "string"
    })
}

fn providers(registry: &Registry) -> Value {
    let properties: Map<String, Value> = registry
        .provider_names()
        .filter_map(|name| {
            let provider = registry.provider(name)?;
            let fields = provider.config_fields();
            let schema = fields_schema(&fields, &format!("The `{name}` provider's configuration."));
            Some((name.to_string(), schema))
        })
        .collect();
    json!({
        "description": "Each provider's configuration, by provider name.",
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": properties
    })
}

/// One entry of `resources:`: its keys, and the fields of its `type` (one `if`/`then` per type,
/// so an editor offers the fields of the type written).
fn resource(registry: &Registry) -> Value {
    let types: Vec<&str> = registry.type_names().collect();
    let branches: Vec<Value> = types
        .iter()
        .filter_map(|&name| {
            let ty = registry.resource_type(name)?;
            let with = fields_schema(&ty.fields, ty.description);
            let mut then = json!({ "properties": { "with": with } });
            if ty.fields.iter().any(|f| f.required) {
                then["required"] = json!(["with"]);
            }
            Some(json!({
                "if": { "properties": { "type": { "const": name } }, "required": ["type"] },
                "then": then
            }))
        })
        .collect();
    let type_docs: Vec<String> = types
        .iter()
        .filter_map(|&name| {
            let ty = registry.resource_type(name)?;
            Some(format!("`{name}`: {}", ty.description))
        })
        .collect();
    json!({
        "type": "object",
        "required": ["type"],
        "additionalProperties": false,
        "properties": {
            "type": {
                "description": format!("The resource type. {}", type_docs.join(" ")),
                "enum": types
            },
            "with": { "description": "The resource's fields, as its type defines them.", "type": ["object", "null"] },
            "for_each": {
                "description": "Make one instance per key: a list of strings, a map, or a `${var.NAME}` of either; `${each.key}` and `${each.value}` name the instance's.",
                "anyOf": [
                    { "type": "array", "items": { "type": "string" } },
                    { "type": "object" },
                    { "$ref": "#/$defs/reference" }
                ]
            },
            "depends_on": names("Resources this one waits for, besides those its references name."),
            "protect": { "description": "Refuse to delete or replace this resource.", "type": "boolean" },
            "on_failure": {
                "description": "`rollback` (the default) undoes this resource's change when the apply fails; `keep` leaves it.",
                "enum": ["rollback", "keep"]
            },
            "verify": gates("Gates run once this resource and what it needs are applied."),
            "adopt": { "description": "Take over an object already there without fabrik's marker instead of stopping the apply.", "type": "boolean" },
            "ignore_changes": names("Fields whose differences are not planned once the object exists.")
        },
        "allOf": branches
    })
}

/// One name or a list of names (`depends_on`, `ignore_changes`).
fn names(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "type": "string" } }
        ]
    })
}

fn gates(description: &str) -> Value {
    json!({
        "description": description,
        "type": ["array", "null"],
        "items": { "anyOf": [{ "$ref": "#/$defs/gate" }, { "$ref": "#/$defs/reference" }] }
    })
}

/// A gate kind's name, the schema of its kind key's value, and its options' schemas.
type GateKind = (&'static str, Value, Vec<(&'static str, Value)>);

/// A `verify:` entry: one kind key (`http`, `tls`, `dns`, `tcp`, `command`) and that kind's
/// options (`verify/entry.rs`).
fn gate() -> Value {
    let int = |min: i64, max: i64, description: &str| {
        described(
            or_reference(json!({ "type": "integer", "minimum": min, "maximum": max })),
            description,
        )
    };
    let string =
        |description: &str| json!({ "type": "string", "minLength": 1, "description": description });
    let strings_map = |description: &str| json!({ "type": "object", "additionalProperties": { "type": "string" }, "description": description });
    let timing = [
        (
            "timeout",
            json!({ "$ref": "#/$defs/duration", "description": "How long the gate may keep trying (default 30s)." }),
        ),
        (
            "interval",
            json!({ "$ref": "#/$defs/duration", "description": "How long to wait between tries." }),
        ),
    ];
    let dns_types: Vec<String> = DNS_TYPES
        .iter()
        .flat_map(|t| [t.to_string(), t.to_ascii_lowercase()])
        .collect();
    let kinds: [GateKind; 5] = [
        (
            "http",
            json!({ "type": "string", "description": "A URL such as \"https://api.example.com/health\": passes on the expected answer." }),
            vec![
                (
                    "status",
                    int(100, 599, "The HTTP status expected (default: any 2xx)."),
                ),
                (
                    "body_contains",
                    json!({ "type": "string", "description": "Text the body must contain." }),
                ),
                ("headers", strings_map("Request headers.")),
                (
                    "ca_file",
                    string("A PEM file of certificate authorities to trust."),
                ),
            ],
        ),
        (
            "tls",
            json!({ "type": "string", "description": "A host such as \"api.example.com\" or \"api.example.com:8443\": passes when its certificate is valid." }),
            vec![
                ("port", int(1, 65535, "The port (default 443).")),
                (
                    "ca_file",
                    string("A PEM file of certificate authorities to trust."),
                ),
                (
                    "min_valid_days",
                    int(0, 36500, "Days the certificate must still be valid."),
                ),
            ],
        ),
        (
            "dns",
            json!({ "type": "string", "description": "A name such as \"api.example.com\": passes when the nameserver answers as expected." }),
            vec![
                (
                    "type",
                    described(
                        or_reference(json!({ "enum": dns_types })),
                        "The record type asked for (default A).",
                    ),
                ),
                (
                    "expect",
                    json!({
                        "description": "The answer (or answers) expected.",
                        "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
                    }),
                ),
                (
                    "nameserver",
                    string("The server to ask, HOST or HOST:PORT (port 53 by default)."),
                ),
            ],
        ),
        (
            "tcp",
            json!({ "type": "string", "description": "HOST:PORT such as \"127.0.0.1:8080\": passes when a connection opens." }),
            vec![],
        ),
        (
            "command",
            json!({
                "type": "array",
                "minItems": 1,
                "items": { "type": "string" },
                "description": "A program and its arguments, such as [\"./smoke-test.sh\", \"--quick\"], run without a shell: passes when it exits 0."
            }),
            vec![
                ("env", strings_map("Extra environment variables.")),
                (
                    "dir",
                    string("The working directory, relative to the spec's directory."),
                ),
            ],
        ),
    ];
    let branches: Vec<Value> = kinds
        .into_iter()
        .map(|(kind, target, options)| {
            let mut properties = Map::new();
            properties.insert(kind.to_string(), target);
            for (name, schema) in options.into_iter().chain(timing.clone()) {
                properties.insert(name.to_string(), schema);
            }
            json!({
                "type": "object",
                "required": [kind],
                "additionalProperties": false,
                "properties": properties
            })
        })
        .collect();
    json!({
        "description": "A gate: one of `http`, `tls`, `dns` (with `nameserver`), `tcp` or `command`, with that kind's options.",
        "oneOf": branches,
        "if": { "required": ["dns"] },
        "then": { "required": ["nameserver"] }
    })
}

fn backend() -> Value {
    json!({
        "description": "Where the stack's state is kept, when not in `.fabrik/` beside the spec.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "postgres": {
                "description": "A PostgreSQL database shared by a team.",
                "type": "object",
                "additionalProperties": false,
                "required": ["url"],
                "properties": {
                    "url": { "type": "string", "description": "The connection string, through `${secret.NAME}` or `${env.NAME}`: it holds a password." },
                    "schema": { "type": "string", "description": "The database schema the state's tables live in." }
                }
            }
        }
    })
}

fn secrets() -> Value {
    json!({
        "description": "The secrets the spec uses, by name; each is read from the environment or `.env`.",
        "type": ["object", "null"],
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": {
            "type": ["object", "null"],
            "additionalProperties": false,
            "properties": {
                "generate": {
                    "description": "Make a random value when none is found, and keep it in `.env`.",
                    "type": ["object", "null"],
                    "additionalProperties": false,
                    "properties": {
                        "length": { "type": "integer", "minimum": crate::spec::SECRET_LENGTHS.start(), "maximum": crate::spec::SECRET_LENGTHS.end() },
                        "alphabet": { "enum": ["alnum", "hex", "base64url"] }
                    }
                }
            }
        }
    })
}

fn vars() -> Value {
    json!({
        "description": "The variables the spec takes (`--var`, `FABRIK_VAR_NAME`, `fabrik.vars.yaml`), by name.",
        "type": ["object", "null"],
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": {
            "type": ["object", "null"],
            "additionalProperties": false,
            "properties": {
                "type": { "enum": ["string", "number", "bool", "list", "map"], "description": "The variable's type (default string)." },
                "default": { "description": "The value when none is given." },
                "description": { "type": "string" },
                "sensitive": { "type": "boolean", "description": "Shown and stored by its keyed hash only." }
            }
        }
    })
}

fn outputs() -> Value {
    json!({
        "description": "Values the stack hands out once applied (`fabrik output`), by name.",
        "type": ["object", "null"],
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": false,
            "properties": {
                "value": { "description": "The value, usually a reference such as `${web.url}`." },
                "description": { "type": "string" },
                "sensitive": { "type": "boolean", "description": "Shown as `(sensitive)` unless asked for." }
            }
        }
    })
}

fn moved() -> Value {
    json!({
        "description": "Resources renamed in the spec whose objects stay.",
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "required": ["from", "to"],
            "additionalProperties": false,
            "properties": {
                "from": { "type": "string", "description": "The address the state knows (`NAME` or `NAME[key]`)." },
                "to": { "type": "string", "description": "The address the spec gives it now." }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the spec reader takes has a place in the schema, and no other.
    #[test]
    fn schema_keys_are_the_readers_keys() {
        let schema = spec_schema(&Registry::builtin());
        let keys = |v: &Value| {
            let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let mut top = crate::spec::TOP_LEVEL_KEYS.map(String::from).to_vec();
        top.sort();
        assert_eq!(keys(&schema["properties"]), top);
        let mut resource = crate::spec::RESOURCE_KEYS.map(String::from).to_vec();
        resource.sort();
        assert_eq!(keys(&schema["$defs"]["resource"]["properties"]), resource);
    }

    /// Each gate kind takes exactly the options `verify` reads.
    #[test]
    fn gate_options_are_the_verifiers() {
        let schema = spec_schema(&Registry::builtin());
        for branch in schema["$defs"]["gate"]["oneOf"].as_array().unwrap() {
            let kind = branch["required"][0].as_str().unwrap();
            let mut found: Vec<&str> = branch["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|k| *k != kind)
                .collect();
            found.sort_unstable();
            let mut want = crate::verify::gate_options(kind).unwrap().to_vec();
            want.sort_unstable();
            assert_eq!(found, want, "options of `{kind}`");
        }
    }
}
