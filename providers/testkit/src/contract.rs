//! Checks requests against a published OpenAPI document (3.0 or 3.1), so a fake server can
//! refuse anything the real API's contract does not allow: a provider that passes its tests
//! against a fake then speaks the real API's language, not the fake's.
//!
//! A request is checked for: a method and path that match an operation (path templates such as
//! `/zones/{zone_id}/dns_records/{dns_record_id}`, below the base path of the document's first
//! `servers` entry), path and query parameters that are declared and valid for their schemas,
//! and a JSON body valid for the operation's `requestBody` schema, `$ref`s resolved inside the
//! document. On top of JSON Schema, body fields the schema never declares are refused (so a
//! misspelt field is caught even where the document leaves objects open), and so are fields
//! marked `readOnly`.
//!
//! OpenAPI's schema dialect differs from JSON Schema in ways that would refuse valid requests,
//! so the document is first translated:
//! - 3.0 `nullable: true` becomes a type union with `null` (3.1 writes the union itself);
//! - a `readOnly` property listed in `required` is required in responses only, so it is dropped
//!   from `required` for requests (Cloudflare's record schema requires `id` and `created_on`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

/// Where the inline schemas of operations are copied, so every schema has a short JSON pointer
/// (pointers into `paths` would need `{`, `}` and `/` escaped inside a URI fragment).
const SLOT: &str = "x-testkit-schemas";
/// How deep the walks below follow `$ref`s and nesting before giving up on a cyclic schema.
const MAX_DEPTH: usize = 64;

/// Which rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No operation has this path (below the base path).
    UnknownPath,
    /// The path exists, but not with this method.
    MethodNotAllowed,
    /// A path or query parameter is not valid for its schema, is missing or is not declared.
    Parameter,
    /// The body is missing, is not JSON, or is not valid for the request schema.
    Body,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::UnknownPath => "unknown path",
            Rule::MethodNotAllowed => "method not allowed",
            Rule::Parameter => "invalid parameter",
            Rule::Body => "invalid body",
        })
    }
}

/// A request the contract does not allow: which rule, and what exactly (field and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

impl std::error::Error for Violation {}

impl Violation {
    fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Violation {
            rule,
            detail: detail.into(),
        }
    }
}

/// The operation a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The path template as the document writes it, such as `/zones/{zone_id}`.
    pub template: String,
    pub operation_id: Option<String>,
    /// The values of the template's parameters, percent-decoded.
    pub path_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: Location,
    required: bool,
    /// A pointer to its schema, or `None` where it has none.
    schema: Option<String>,
}

#[derive(Debug)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    operation_id: Option<String>,
    params: Vec<Param>,
    body_required: bool,
    /// A pointer to the JSON body's schema; `None` where the body is not JSON or has no schema.
    body_schema: Option<String>,
    /// Whether the operation accepts a JSON body at all.
    json_body: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A loaded contract. Cheap to share between threads; validators are built on first use.
pub struct Contract {
    doc: Value,
    draft: Draft,
    base_path: String,
    operations: Vec<Operation>,
    waivers: Vec<String>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("base_path", &self.base_path)
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

impl Contract {
    /// Loads an OpenAPI document from a JSON file.
    ///
    /// # Panics
    /// If the file cannot be read or is not an OpenAPI 3.0 or 3.1 document: a test server
    /// without its contract must not start.
    pub fn load(path: impl AsRef<Path>) -> Contract {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read the contract {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the contract {} is not JSON: {e}", path.display()));
        Contract::from_document(doc)
            .unwrap_or_else(|e| panic!("the contract {} is unusable: {e}", path.display()))
    }

    /// Builds a contract from a parsed OpenAPI document.
    pub fn from_document(mut doc: Value) -> Result<Contract, String> {
        let version = doc
            .get("openapi")
            .and_then(Value::as_str)
            .ok_or("no `openapi` version field")?
            .to_string();
        let draft = if version.starts_with("3.0") {
            // OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4/5 (boolean
            // `exclusiveMinimum`, no type unions of their own).
            nullable_to_union(&mut doc, 0);
            Draft::Draft4
        } else if version.starts_with("3.1") {
            Draft::Draft202012
        } else {
            return Err(format!(
                "OpenAPI {version} is not supported (3.0 and 3.1 are)"
            ));
        };
        let base_path = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(base_path_of)
            .unwrap_or_default();
        let mut slots = Vec::new();
        let mut operations = Vec::new();
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no `paths`")?;
        for (template, item) in paths {
            let shared = item.get("parameters").and_then(Value::as_array);
            for (method, op) in item.as_object().into_iter().flatten() {
                let method = method.to_ascii_uppercase();
                if ![
                    "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
                ]
                .contains(&method.as_str())
                {
                    continue;
                }
                operations.push(operation(&doc, template, &method, op, shared, &mut slots)?);
            }
        }
        doc.as_object_mut()
            .ok_or("the document is not an object")?
            .insert(SLOT.into(), Value::Array(slots));
        drop_read_only_required(&mut doc);
        Ok(Contract {
            doc,
            draft,
            base_path,
            operations,
            waivers: Vec::new(),
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// Stops requiring `property` in the schema at `pointer` (`#/components/schemas/…`), for a
    /// known mistake of the document that the real API does not enforce; `why` is kept so a
    /// reader of the fake sees each waiver with its reason.
    ///
    /// # Panics
    /// If the schema does not require `property`: a waiver that waives nothing is stale.
    pub fn waive_required(&mut self, pointer: &str, property: &str, why: &str) {
        self.waivers.push(format!("{pointer} `{property}`: {why}"));
        let schema = pointer
            .strip_prefix('#')
            .and_then(|p| self.doc.pointer_mut(p))
            .unwrap_or_else(|| panic!("the contract has no schema {pointer}"));
        let Some(Value::Array(required)) = schema.get_mut("required") else {
            panic!("{pointer} requires nothing");
        };
        let before = required.len();
        required.retain(|r| r.as_str() != Some(property));
        assert!(
            required.len() < before,
            "{pointer} does not require `{property}`"
        );
        self.validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Stops checking the `format` of path parameter `param` of `method template`, for a
    /// known mistake of the document (an identifier declared a `uuid` that the real API never
    /// gives in that form); `why` is kept as for [`Contract::waive_required`].
    ///
    /// # Panics
    /// If there is no such operation or parameter, or its schema has no `format`.
    pub fn waive_format(&mut self, method: &str, template: &str, param: &str, why: &str) {
        self.waivers
            .push(format!("{method} {template} `{param}` format: {why}"));
        let pointer = self
            .operations
            .iter()
            .find(|op| op.method == method && op.template == template)
            .and_then(|op| op.params.iter().find(|p| p.name == param))
            .and_then(|p| p.schema.clone())
            .unwrap_or_else(|| panic!("no parameter `{param}` of {method} {template}"));
        let schema = pointer
            .strip_prefix('#')
            .and_then(|p| self.doc.pointer_mut(p))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("the contract has no schema {pointer}"));
        assert!(
            schema.remove("format").is_some(),
            "{method} {template} `{param}` has no format"
        );
        self.validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The waivers in force, each with its reason.
    pub fn waivers(&self) -> &[String] {
        &self.waivers
    }

    /// The path every operation's path is below (the first server URL's path), such as
    /// `/client/v4`; empty when the document has none.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Checks one request. `path` is the request target's path (base path included, no
    /// query), `query` its decoded query pairs, `body` its raw bytes (empty for none).
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Matched, Violation> {
        let method = method.to_ascii_uppercase();
        let Some(rest) = path.strip_prefix(&self.base_path) else {
            return Err(Violation::new(
                Rule::UnknownPath,
                format!("{path} is not below the API's base path {}", self.base_path),
            ));
        };
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let mut candidates: Vec<(&Operation, BTreeMap<String, String>)> = Vec::new();
        for op in &self.operations {
            if let Some(params) = match_segments(&op.segments, &parts) {
                candidates.push((op, params));
            }
        }
        if candidates.is_empty() {
            return Err(Violation::new(
                Rule::UnknownPath,
                format!("no operation has the path {rest}"),
            ));
        }
        // A literal segment beats a parameter (`/dns_records/export` before `/{id}`).
        candidates.sort_by_key(|(op, _)| {
            std::cmp::Reverse(
                op.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count(),
            )
        });
        let best = candidates
            .iter()
            .find(|(op, _)| op.method == method)
            .ok_or_else(|| {
                let template = &candidates[0].0.template;
                let allowed: BTreeSet<&str> = candidates
                    .iter()
                    .filter(|(op, _)| &op.template == template)
                    .map(|(op, _)| op.method.as_str())
                    .collect();
                Violation::new(
                    Rule::MethodNotAllowed,
                    format!(
                        "{method} is not an operation of {template} (it has {})",
                        allowed.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
        let (op, path_params) = best;
        self.check_params(op, path_params, query)?;
        self.check_body(op, body)?;
        Ok(Matched {
            template: op.template.clone(),
            operation_id: op.operation_id.clone(),
            path_params: path_params.clone(),
        })
    }

    /// Checks a JSON value against the request body schema of the operation `method
    /// template` (for endpoints whose entries reuse another operation's schema, such as a
    /// batch of creates).
    ///
    /// # Errors
    /// [`Rule::Body`] naming the field, with `what` saying which value it was.
    ///
    /// # Panics
    /// If the document has no such operation or it has no JSON body schema.
    pub fn check_body_of(
        &self,
        method: &str,
        template: &str,
        value: &Value,
        what: &str,
    ) -> Result<(), Violation> {
        let op = self
            .operations
            .iter()
            .find(|op| op.method.eq_ignore_ascii_case(method) && op.template == template)
            .unwrap_or_else(|| panic!("the contract has no operation {method} {template}"));
        let pointer = op
            .body_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{method} {template} has no JSON body schema"));
        self.check_value(pointer, value)
            .map_err(|detail| Violation::new(Rule::Body, format!("{what}: {detail}")))
    }

    fn check_params(
        &self,
        op: &Operation,
        path_params: &BTreeMap<String, String>,
        query: &[(String, String)],
    ) -> Result<(), Violation> {
        for (name, value) in path_params {
            let declared = op
                .params
                .iter()
                .find(|p| p.location == Location::Path && &p.name == name);
            if let Some(Param {
                schema: Some(schema),
                ..
            }) = declared
            {
                self.check_param_value(schema, value).map_err(|e| {
                    Violation::new(Rule::Parameter, format!("path parameter `{name}`: {e}"))
                })?;
            }
        }
        for (name, value) in query {
            let Some(param) = op
                .params
                .iter()
                .find(|p| p.location == Location::Query && &p.name == name)
            else {
                return Err(Violation::new(
                    Rule::Parameter,
                    format!(
                        "query parameter `{name}` is not declared for {} {}",
                        op.method, op.template
                    ),
                ));
            };
            if let Some(schema) = &param.schema {
                self.check_param_value(schema, value).map_err(|e| {
                    Violation::new(Rule::Parameter, format!("query parameter `{name}`: {e}"))
                })?;
            }
        }
        for param in op
            .params
            .iter()
            .filter(|p| p.required && p.location == Location::Query)
        {
            if !query.iter().any(|(n, _)| n == &param.name) {
                return Err(Violation::new(
                    Rule::Parameter,
                    format!("required query parameter `{}` is missing", param.name),
                ));
            }
        }
        Ok(())
    }

    /// Query and path values are text; a schema of a number or boolean is checked against the
    /// value the text spells.
    fn check_param_value(&self, pointer: &str, text: &str) -> Result<(), String> {
        let schema = self.at(pointer);
        let kinds = schema_types(schema);
        let value = if kinds.iter().any(|k| k == "number" || k == "integer") {
            match text.parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
                Ok(n) => json!(n),
                Err(_) => return Err(format!("{text:?} is not a number")),
            }
        } else if kinds.iter().any(|k| k == "boolean") {
            match text {
                "true" => json!(true),
                "false" => json!(false),
                _ => return Err(format!("{text:?} is not a boolean")),
            }
        } else {
            json!(text)
        };
        self.check_value(pointer, &value)
    }

    fn check_body(&self, op: &Operation, body: &[u8]) -> Result<(), Violation> {
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if blank {
            if op.body_required {
                return Err(Violation::new(
                    Rule::Body,
                    format!("{} {} requires a request body", op.method, op.template),
                ));
            }
            return Ok(());
        }
        if !op.json_body {
            return Err(Violation::new(
                Rule::Body,
                format!("{} {} takes no JSON request body", op.method, op.template),
            ));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Violation::new(Rule::Body, format!("the body is not JSON: {e}")))?;
        match &op.body_schema {
            Some(pointer) => self
                .check_value(pointer, &value)
                .map_err(|detail| Violation::new(Rule::Body, detail)),
            None => Ok(()),
        }
    }

    /// Validates `value` against the schema at `pointer` (`#/…` in the translated document):
    /// JSON Schema first, then the undeclared and read-only fields.
    fn check_value(&self, pointer: &str, value: &Value) -> Result<(), String> {
        let validator = self.validator(pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| describe(&e.instance_path().to_string(), &e.to_string()))
            .collect();
        if !errors.is_empty() {
            // `oneOf` failures say only that no alternative fits; the closest alternative
            // says which field is wrong.
            let schema = self.at(pointer);
            if let Some(closest) = self.closest_alternative(schema, value) {
                return Err(closest);
            }
            return Err(errors.join("; "));
        }
        let schema = self.at(pointer).clone();
        let mut problems = Vec::new();
        self.undeclared(&schema, value, "", &mut problems, 0);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// For a `oneOf` schema: the errors of the alternative with the fewest, named by its title.
    fn closest_alternative(&self, schema: &Value, value: &Value) -> Option<String> {
        let alternatives = schema.get("oneOf")?.as_array()?;
        let mut best: Option<(usize, String)> = None;
        for (i, alternative) in alternatives.iter().enumerate() {
            let pointer = match alternative.get("$ref").and_then(Value::as_str) {
                Some(r) => r.to_string(),
                None => continue,
            };
            let Ok(validator) = self.validator(&pointer) else {
                continue;
            };
            let errors: Vec<String> = validator
                .iter_errors(value)
                .map(|e| describe(&e.instance_path().to_string(), &e.to_string()))
                .collect();
            if errors.is_empty() {
                // Valid for this one: the `oneOf` failed because several matched.
                return Some(format!(
                    "the body matches more than one alternative of the schema (alternative {i} \
                     among them)"
                ));
            }
            let title = self
                .resolve(alternative, 0)
                .get("title")
                .and_then(Value::as_str)
                .map_or_else(|| format!("alternative {i}"), str::to_string);
            if best.as_ref().is_none_or(|(n, _)| errors.len() < *n) {
                best = Some((
                    errors.len(),
                    format!(
                        "no alternative of the schema fits; the closest ({title}) says: {}",
                        errors.join("; ")
                    ),
                ));
            }
        }
        best.map(|(_, message)| message)
    }

    /// Collects fields of `value` that `schema` never declares, or declares `readOnly`.
    fn undeclared(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        problems: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Object(fields) => {
                let mut declared: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                let mut open = false;
                self.declared_properties(schema, &mut declared, &mut open, 0);
                if declared.is_empty() {
                    // A free-form object: nothing to say about its keys.
                    return;
                }
                for (key, field) in fields {
                    let here = format!("{at}/{key}");
                    match declared.get(key) {
                        Some(schemas) => {
                            // Read-only only where every alternative says so (SRV's
                            // `content` is read-only, A's is not).
                            if schemas
                                .iter()
                                .all(|s| s.get("readOnly") == Some(&Value::Bool(true)))
                            {
                                problems.push(format!(
                                    "field `{here}` is read-only and may not be sent"
                                ));
                                continue;
                            }
                            for sub in schemas {
                                self.undeclared(sub, field, &here, problems, depth + 1);
                            }
                        }
                        None if open => {}
                        None => problems.push(format!(
                            "field `{here}` is not declared in the request schema"
                        )),
                    }
                }
            }
            Value::Array(items) => {
                let schema = self.resolve(schema, 0);
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.undeclared(
                            item_schema,
                            item,
                            &format!("{at}/{i}"),
                            problems,
                            depth + 1,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// The properties a schema declares, through `$ref`, `allOf`, `anyOf` and `oneOf`, each
    /// with its (resolved) schemas; `open` is set where `additionalProperties` allows more.
    fn declared_properties(
        &self,
        schema: &Value,
        out: &mut BTreeMap<String, Vec<Value>>,
        open: &mut bool,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let schema = self.resolve(schema, 0);
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                out.entry(name.clone())
                    .or_default()
                    .push(self.resolve(sub, 0).clone());
            }
        }
        match schema.get("additionalProperties") {
            Some(Value::Bool(false)) | None => {}
            Some(_) => *open = true,
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for sub in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.declared_properties(sub, out, open, depth + 1);
            }
        }
    }

    /// The schema at `pointer` (`#/…`), its own `$ref`s followed.
    fn at(&self, pointer: &str) -> &Value {
        pointer
            .strip_prefix('#')
            .and_then(|p| self.doc.pointer(p))
            .map_or(&Value::Null, |s| self.resolve(s, 0))
    }

    /// Follows `$ref`s (`#/…` only) to the schema they name.
    fn resolve<'a>(&'a self, schema: &'a Value, depth: usize) -> &'a Value {
        resolve_in(&self.doc, schema, depth)
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        // The whole document is the root resource, so every `#/components/…` reference inside
        // the schema resolves; the root `$ref` picks the schema to apply (other root keys are
        // not JSON Schema keywords and are ignored).
        let mut root = Map::new();
        for (k, v) in self.doc.as_object().into_iter().flatten() {
            if k != "paths" {
                root.insert(k.clone(), v.clone());
            }
        }
        root.insert("$ref".into(), Value::String(pointer.to_string()));
        let validator = jsonschema::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|e| format!("the contract's schema {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), validator.clone());
        Ok(validator)
    }
}

fn describe(instance_path: &str, message: &str) -> String {
    if instance_path.is_empty() {
        format!("the body: {message}")
    } else {
        format!("field `{instance_path}`: {message}")
    }
}

fn resolve_in<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) if depth < MAX_DEPTH => match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => resolve_in(doc, target, depth + 1),
            None => schema,
        },
        _ => schema,
    }
}

fn schema_types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => {
            let mut out = Vec::new();
            for key in ["anyOf", "oneOf", "allOf"] {
                for sub in schema
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(schema_types(sub));
                }
            }
            out
        }
    }
}

/// The path of a server URL: `https://api.cloudflare.com/client/v4` → `/client/v4`.
fn base_path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = match after_scheme.find('/') {
        Some(i) if url.contains("://") => &after_scheme[i..],
        Some(_) => after_scheme,
        None => "",
    };
    path.trim_end_matches('/').to_string()
}

fn operation(
    doc: &Value,
    template: &str,
    method: &str,
    op: &Value,
    shared: Option<&Vec<Value>>,
    slots: &mut Vec<Value>,
) -> Result<Operation, String> {
    let mut slot = |schema: &Value| -> String {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str)
            && schema.as_object().is_some_and(|o| o.len() == 1)
        {
            return r.to_string();
        }
        slots.push(schema.clone());
        format!("#/{SLOT}/{}", slots.len() - 1)
    };
    let mut params: Vec<Param> = Vec::new();
    let own = op.get("parameters").and_then(Value::as_array);
    // Operation parameters override path-level ones of the same name and location.
    for raw in own
        .into_iter()
        .flatten()
        .chain(shared.into_iter().flatten())
    {
        let raw = resolve_in(doc, raw, 0);
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{method} {template}: a parameter without a name"))?;
        let location = match raw.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            // Headers and cookies are the server's business, not the contract's here.
            _ => continue,
        };
        if params
            .iter()
            .any(|p| p.name == name && p.location == location)
        {
            continue;
        }
        params.push(Param {
            name: name.to_string(),
            location,
            required: raw.get("required") == Some(&Value::Bool(true)),
            schema: raw.get("schema").map(&mut slot),
        });
    }
    let body = op.get("requestBody").map(|b| resolve_in(doc, b, 0));
    let json_media = body.and_then(|b| b.get("content")).and_then(|c| {
        c.as_object()?
            .iter()
            .find(|(media, _)| media.starts_with("application/json") || media.ends_with("+json"))
            .map(|(_, m)| m)
    });
    let segments = template
        .trim_start_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect();
    Ok(Operation {
        method: method.to_string(),
        template: template.to_string(),
        segments,
        operation_id: op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string),
        params,
        body_required: body.is_some_and(|b| b.get("required") == Some(&Value::Bool(true))),
        body_schema: json_media.and_then(|m| m.get("schema")).map(&mut slot),
        json_body: json_media.is_some(),
    })
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<BTreeMap<String, String>> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(_) if part.is_empty() => return None,
            Segment::Param(name) => {
                params.insert(name.clone(), percent_decode(part));
            }
        }
    }
    Some(params)
}

/// Decodes `%XX` escapes (and `+` is kept: it means a space only in form bodies).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// OpenAPI 3.0 `nullable: true` as JSON Schema: `null` joins the type (and the enum).
fn nullable_to_union(value: &mut Value, depth: usize) {
    if depth > 512 {
        return;
    }
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = t.clone();
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(ts)) => {
                        if !ts.contains(&json!("null")) {
                            ts.push(json!("null"));
                        }
                    }
                    _ => {
                        // No type of its own (an allOf, a $ref): null or the schema.
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([{ "type": "null" }, inner]));
                    }
                }
                if let Some(Value::Array(values)) = map.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            for v in map.values_mut() {
                nullable_to_union(v, depth + 1);
            }
        }
        Value::Array(items) => {
            for v in items {
                nullable_to_union(v, depth + 1);
            }
        }
        _ => {}
    }
}

/// Drops from every `required` list the properties the schema declares `readOnly` (OpenAPI:
/// such a property is required in responses only).
fn drop_read_only_required(doc: &mut Value) {
    // First find, for each schema object holding `required`, which names are read-only; then
    // edit. Schemas are addressed by JSON pointer so the walk can borrow the document.
    let mut edits: Vec<(String, Vec<String>)> = Vec::new();
    collect_read_only(doc, doc, String::new(), &mut edits, 0);
    for (pointer, names) in edits {
        if let Some(Value::Array(required)) = doc
            .pointer_mut(&pointer)
            .and_then(|s| s.get_mut("required"))
        {
            required.retain(|r| r.as_str().is_none_or(|r| !names.iter().any(|n| n == r)));
        }
    }
}

fn collect_read_only(
    doc: &Value,
    here: &Value,
    pointer: String,
    edits: &mut Vec<(String, Vec<String>)>,
    depth: usize,
) {
    if depth > 512 {
        return;
    }
    match here {
        Value::Object(map) => {
            if let Some(Value::Array(required)) = map.get("required") {
                let read_only: Vec<String> = required
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|name| is_read_only(doc, here, name, 0))
                    .map(str::to_string)
                    .collect();
                if !read_only.is_empty() {
                    edits.push((pointer.clone(), read_only));
                }
            }
            for (k, v) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                collect_read_only(doc, v, format!("{pointer}/{key}"), edits, depth + 1);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_read_only(doc, v, format!("{pointer}/{i}"), edits, depth + 1);
            }
        }
        _ => {}
    }
}

/// Whether `schema` declares property `name` only as `readOnly` (through its combinators).
fn is_read_only(doc: &Value, schema: &Value, name: &str, depth: usize) -> bool {
    let mut seen = Vec::new();
    property_schemas(doc, schema, name, &mut seen, depth);
    !seen.is_empty()
        && seen
            .iter()
            .all(|s| s.get("readOnly") == Some(&Value::Bool(true)))
}

fn property_schemas<'a>(
    doc: &'a Value,
    schema: &'a Value,
    name: &str,
    out: &mut Vec<&'a Value>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = resolve_in(doc, schema, 0);
    if let Some(sub) = schema.get("properties").and_then(|p| p.get(name)) {
        out.push(resolve_in(doc, sub, 0));
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            property_schemas(doc, sub, name, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudflare() -> Contract {
        crate::cloudflare::contract()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

    #[test]
    fn a_valid_create_passes_and_names_its_operation() {
        let c = cloudflare();
        let body = br#"{"type":"A","name":"www.example.com","content":"192.0.2.1","ttl":1,"proxied":false,"comment":"fabrik:s/www"}"#;
        let matched = c
            .check(
                "POST",
                &format!("/client/v4/zones/{ZONE}/dns_records"),
                &[],
                body,
            )
            .unwrap();
        assert_eq!(matched.template, "/zones/{zone_id}/dns_records");
        assert_eq!(matched.path_params["zone_id"], ZONE);
        assert_eq!(
            matched.operation_id.as_deref(),
            Some("dns-records-for-a-zone-create-dns-record")
        );
    }

    #[test]
    fn read_only_required_fields_are_not_required_in_requests() {
        // The record schema requires `id`, `proxiable`, `created_on` and `modified_on`, all
        // read-only: a create without them is valid, one that sends them is not.
        let c = cloudflare();
        let path = format!("/client/v4/zones/{ZONE}/dns_records");
        let body =
            br#"{"type":"MX","name":"example.com","content":"mail.example.com","priority":10}"#;
        c.check("POST", &path, &[], body).unwrap();
        let sent = br#"{"type":"A","name":"a.example.com","content":"192.0.2.1","created_on":"2014-01-01T05:20:00Z"}"#;
        let err = c.check("POST", &path, &[], sent).unwrap_err();
        assert_eq!(err.rule, Rule::Body);
        assert!(err.detail.contains("`/created_on` is read-only"), "{err}");
    }

    #[test]
    fn the_base_path_and_templates_route_requests() {
        let c = cloudflare();
        assert_eq!(c.base_path(), "/client/v4");
        let m = c
            .check(
                "GET",
                &format!("/client/v4/zones/{ZONE}/dns_records/export"),
                &[],
                b"",
            )
            .unwrap();
        assert_eq!(m.template, "/zones/{zone_id}/dns_records/export");
        let m = c
            .check(
                "GET",
                &format!("/client/v4/zones/{ZONE}/dns_records/{ZONE}"),
                &[],
                b"",
            )
            .unwrap();
        assert_eq!(m.template, "/zones/{zone_id}/dns_records/{dns_record_id}");
        let err = c.check("GET", "/zones", &[], b"").unwrap_err();
        assert_eq!(err.rule, Rule::UnknownPath, "{err}");
    }

    #[test]
    fn a_wrong_method_fails_naming_the_allowed_ones() {
        let c = cloudflare();
        let err = c
            .check(
                "PUT",
                &format!("/client/v4/zones/{ZONE}/dns_records"),
                &[],
                b"{}",
            )
            .unwrap_err();
        assert_eq!(err.rule, Rule::MethodNotAllowed);
        assert!(err.detail.contains("GET, POST"), "{err}");
    }

    #[test]
    fn an_unknown_path_fails() {
        let c = cloudflare();
        let err = c
            .check(
                "POST",
                &format!("/client/v4/zones/{ZONE}/dns_records/batch/extra"),
                &[],
                b"{}",
            )
            .unwrap_err();
        assert_eq!(err.rule, Rule::UnknownPath);
        assert!(
            err.to_string().starts_with("unknown path: no operation"),
            "{err}"
        );
    }

    #[test]
    fn query_parameters_must_be_declared_and_valid() {
        let c = cloudflare();
        let path = format!("/client/v4/zones/{ZONE}/dns_records");
        c.check(
            "GET",
            &path,
            &q(&[
                ("type", "A"),
                ("name", "www.example.com"),
                ("page", "2"),
                ("per_page", "100"),
            ]),
            b"",
        )
        .unwrap();
        let err = c
            .check("GET", &path, &q(&[("pagesize", "10")]), b"")
            .unwrap_err();
        assert_eq!(err.rule, Rule::Parameter);
        assert!(err.detail.contains("`pagesize` is not declared"), "{err}");
        let err = c
            .check("GET", &path, &q(&[("per_page", "many")]), b"")
            .unwrap_err();
        assert!(err.detail.contains("`per_page`"), "{err}");
        let err = c
            .check("GET", &path, &q(&[("type", "BOGUS")]), b"")
            .unwrap_err();
        assert!(err.detail.contains("query parameter `type`"), "{err}");
        let err = c
            .check(
                "GET",
                &format!("/client/v4/zones/{}/dns_records", "x".repeat(40)),
                &[],
                b"",
            )
            .unwrap_err();
        assert!(err.detail.contains("path parameter `zone_id`"), "{err}");
    }

    #[test]
    fn bodies_with_unknown_or_invalid_fields_fail_naming_the_field() {
        let c = cloudflare();
        let path = format!("/client/v4/zones/{ZONE}/dns_records");
        let unknown =
            br#"{"type":"A","name":"www.example.com","content":"192.0.2.1","comments":"x"}"#;
        let err = c.check("POST", &path, &[], unknown).unwrap_err();
        assert_eq!(err.rule, Rule::Body);
        assert!(
            err.detail.contains("field `/comments` is not declared"),
            "{err}"
        );

        let bad_ip = br#"{"type":"A","name":"www.example.com","content":"not-an-ip"}"#;
        let err = c.check("POST", &path, &[], bad_ip).unwrap_err();
        assert!(err.detail.contains("A Record"), "{err}");
        assert!(err.detail.contains("/content"), "{err}");

        let bad_ttl =
            br#"{"type":"A","name":"www.example.com","content":"192.0.2.1","ttl":"auto"}"#;
        let err = c.check("POST", &path, &[], bad_ttl).unwrap_err();
        assert!(err.detail.contains("/ttl"), "{err}");

        let no_content = br#"{"type":"A","name":"www.example.com"}"#;
        let err = c.check("POST", &path, &[], no_content).unwrap_err();
        assert!(err.detail.contains("content"), "{err}");

        let err = c.check("POST", &path, &[], b"{not json").unwrap_err();
        assert!(err.detail.contains("not JSON"), "{err}");
        let err = c.check("POST", &path, &[], b"").unwrap_err();
        assert!(err.detail.contains("requires a request body"), "{err}");
    }

    #[test]
    fn nullable_is_a_type_union() {
        let doc = json!({
            "openapi": "3.0.3",
            "paths": {"/things": {"post": {
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "note": {"type": "string", "nullable": true},
                        "size": {"type": "integer"}
                    }
                }}}}
            }}}
        });
        let c = Contract::from_document(doc).unwrap();
        c.check("POST", "/things", &[], br#"{"note": null}"#)
            .unwrap();
        c.check("POST", "/things", &[], br#"{"note": "x"}"#)
            .unwrap();
        let err = c
            .check("POST", "/things", &[], br#"{"size": null}"#)
            .unwrap_err();
        assert!(err.detail.contains("/size"), "{err}");
    }

    #[test]
    fn openapi_3_1_documents_load_with_their_server_path() {
        let doc = json!({
            "openapi": "3.1.0",
            "servers": [{"url": "https://app.example.test/api/v1"}],
            "paths": {"/items/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                "patch": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
                }
            }},
            "components": {"schemas": {"Item": {"type": "object", "properties": {"name": {"type": ["string", "null"]}}}}}
        });
        let c = Contract::from_document(doc).unwrap();
        let id = "6f1d0c3e-8f7b-4a44-9a53-0d3c7c4d1b2a";
        c.check(
            "PATCH",
            &format!("/api/v1/items/{id}"),
            &[],
            br#"{"name": null}"#,
        )
        .unwrap();
        let err = c
            .check(
                "PATCH",
                &format!("/api/v1/items/{id}"),
                &[],
                br#"{"name": 5}"#,
            )
            .unwrap_err();
        assert!(err.detail.contains("/name"), "{err}");
        let err = c
            .check("PATCH", "/api/v1/items/nope", &[], b"")
            .unwrap_err();
        assert!(err.detail.contains("path parameter `id`"), "{err}");
    }

    #[test]
    fn the_coolify_document_loads() {
        let c = Contract::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/contracts/coolify-openapi.json"
        ));
        assert_eq!(c.base_path(), "/api/v1");
        c.check(
            "POST",
            "/api/v1/projects",
            &[],
            br#"{"name": "shop", "description": "the shop"}"#,
        )
        .unwrap();
        let err = c
            .check("POST", "/api/v1/projects", &[], br#"{"name": 7}"#)
            .unwrap_err();
        assert!(err.detail.contains("/name"), "{err}");
        let err = c
            .check("POST", "/api/v1/projects", &[], br#"{"title": "shop"}"#)
            .unwrap_err();
        assert!(err.detail.contains("`/title` is not declared"), "{err}");
        let m = c
            .check("GET", "/api/v1/applications/abc123", &[], b"")
            .unwrap();
        assert_eq!(m.path_params["uuid"], "abc123");
    }
}
