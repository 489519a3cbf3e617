//! A stateful fake of the Cloudflare API v4 DNS endpoints, for the `cloudflare` provider's tests.
//!
//! It keeps zones and records, answers in Cloudflare's `{success, errors, messages, result}`
//! envelope and behaves as the real API does: zone lookup by
//! name, record lists with `type`/`name` filters and `page`/`per_page` paging (`result_info`),
//! create, get, overwrite (PUT), update (PATCH), delete, and the batch endpoint
//! (`POST /zones/{zone_id}/dns_records/batch`: deletes, patches, puts, posts in that order, in
//! one transaction, at most 200 records on the Free plan). Duplicates are refused with 81058
//! (identical record; 81057 on request, as older answers had it) and 81053 (a CNAME beside
//! another record of its name); a missing record is 404 with 81044; a wrong token is 401; more
//! requests than the budget in a window is 429 with `retry-after`.
//!
//! Every request is first checked against the published contract
//! (`fixtures/contracts/cloudflare-dns-openapi.json`). The batch endpoint is younger than that
//! document, so its entries are checked against the schemas of the single-record operations
//! they stand for. A request that breaks the contract is answered 400 with the reason and
//! recorded: tests end with [`FakeCloudflare::assert_no_violations`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::contract::Contract;
use crate::http::{Logged, Request, Response, Server};

/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "cf-test-token";
/// The base path of the API, as in the contract's `servers`.
pub const BASE: &str = "/client/v4";
/// The longest comment on the Free plan.
const MAX_COMMENT: usize = 100;

const SINGLE: &str = "/zones/{zone_id}/dns_records/{dns_record_id}";
const COLLECTION: &str = "/zones/{zone_id}/dns_records";

/// The Cloudflare contract, with the waiver its 2024 record schema needs: it reuses the
/// response schema for requests, so it lists the server-assigned `id` as required in the body
/// of a create. Cloudflare's own clients never send it and the API does not ask for it.
pub fn contract() -> Contract {
    let mut contract = Contract::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/contracts/cloudflare-dns-openapi.json"
    ));
    contract.waive_required(
        "#/components/schemas/dns-records_dns-record",
        "id",
        "the record id is assigned by Cloudflare; requests carry it in the path, not the body",
    );
    contract
}

fn shared_contract() -> Arc<Contract> {
    static CONTRACT: OnceLock<Arc<Contract>> = OnceLock::new();
    CONTRACT.get_or_init(|| Arc::new(contract())).clone()
}

/// Knobs a test may turn.
#[derive(Debug, Clone)]
struct Settings {
    token: String,
    /// Requests allowed per window before 429 (Cloudflare: 1,200 per 5 minutes).
    rate_limit: usize,
    window: Duration,
    /// Records per batch (Free plan: 200).
    batch_limit: usize,
    /// The largest page the fake answers, whatever `per_page` asks for.
    max_per_page: usize,
    /// The code of an identical duplicate: 81058 now, 81057 in older answers.
    duplicate_code: u32,
}

#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
}

#[derive(Debug, Clone)]
struct State {
    settings: Settings,
    zones: Vec<Zone>,
    /// Records in creation order.
    records: Vec<Value>,
    next_id: u64,
    window_start: Instant,
    window_count: usize,
    clock: u64,
}

/// The fake, listening on 127.0.0.1. Stopped on drop.
pub struct FakeCloudflare {
    server: Server,
    state: Arc<Mutex<State>>,
}

/// An error answer: HTTP status, Cloudflare code, message.
#[derive(Debug)]
struct ApiError(u16, u32, String);

type Answer = Result<(u16, Value, Option<Value>), ApiError>;

impl FakeCloudflare {
    pub fn start() -> FakeCloudflare {
        let state = Arc::new(Mutex::new(State {
            settings: Settings {
                token: TOKEN.to_string(),
                rate_limit: 1_200,
                window: Duration::from_secs(300),
                batch_limit: 200,
                max_per_page: 5_000_000,
                duplicate_code: 81_058,
            },
            zones: Vec::new(),
            records: Vec::new(),
            next_id: 1,
            window_start: Instant::now(),
            window_count: 0,
            clock: 0,
        }));
        let contract = shared_contract();
        let handler_state = state.clone();
        let server = Server::start(move |request| handle(&contract, &handler_state, request));
        FakeCloudflare { server, state }
    }

    /// The API's base URL, as the provider's `api_url` takes it.
    pub fn url(&self) -> String {
        format!("{}{BASE}", self.server.url())
    }

    /// The HTTP server, to inject faults.
    pub fn http(&self) -> &Server {
        &self.server
    }

    /// The HTTP server, to stop and restart it.
    pub fn http_mut(&mut self) -> &mut Server {
        &mut self.server
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a zone; returns its id.
    pub fn add_zone(&self, name: &str) -> String {
        let mut state = self.state();
        let id = state.new_id();
        state.zones.push(Zone {
            id: id.clone(),
            name: name.trim_end_matches('.').to_ascii_lowercase(),
        });
        id
    }

    /// Allows `limit` requests per `window` before answering 429.
    pub fn set_rate_limit(&self, limit: usize, window: Duration) {
        let mut state = self.state();
        state.settings.rate_limit = limit;
        state.settings.window = window;
        state.window_start = Instant::now();
        state.window_count = 0;
    }

    pub fn set_batch_limit(&self, records: usize) {
        self.state().settings.batch_limit = records;
    }

    /// Answers at most `n` records per page, whatever `per_page` asks.
    pub fn set_max_per_page(&self, n: usize) {
        self.state().settings.max_per_page = n;
    }

    /// Answers identical duplicates with `code` (81057 as older answers did, or 81058).
    pub fn set_duplicate_code(&self, code: u32) {
        self.state().settings.duplicate_code = code;
    }

    pub fn set_token(&self, token: &str) {
        self.state().settings.token = token.to_string();
    }

    /// Creates a record behind the provider's back (someone else's, or drift); `fields` as in
    /// a create body. Returns its id.
    ///
    /// # Panics
    /// If the record is refused (a test's mistake).
    pub fn insert_record(&self, zone: &str, fields: Value) -> String {
        let mut state = self.state();
        let zone = state
            .zone_by_name(zone)
            .unwrap_or_else(|| panic!("no zone {zone}"))
            .clone();
        let record = state
            .build(&zone, None, fields.as_object().expect("an object"))
            .unwrap_or_else(|e| panic!("the fake refused {fields}: {e:?}"));
        let id = record["id"].as_str().unwrap().to_string();
        state.records.push(record);
        id
    }

    /// Changes fields of a record behind the provider's back.
    pub fn edit_record(&self, id: &str, fields: Value) {
        let mut state = self.state();
        let record = state
            .records
            .iter_mut()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no record {id}"));
        for (k, v) in fields.as_object().expect("an object") {
            record[k.as_str()] = v.clone();
        }
    }

    pub fn remove_record(&self, id: &str) {
        self.state().records.retain(|r| r["id"] != id);
    }

    /// The records of a zone, as the API shows them, in creation order.
    pub fn records(&self, zone: &str) -> Vec<Value> {
        let state = self.state();
        let name = zone.trim_end_matches('.').to_ascii_lowercase();
        state
            .records
            .iter()
            .filter(|r| r["zone_name"] == name)
            .cloned()
            .collect()
    }

    pub fn record(&self, id: &str) -> Option<Value> {
        self.state().records.iter().find(|r| r["id"] == id).cloned()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.server.log()
    }

    /// How many requests had this method and a path ending with `suffix` (`/batch`,
    /// `/dns_records`); an empty suffix counts every request of the method.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.server.count(method, suffix)
    }

    pub fn violations(&self) -> Vec<String> {
        self.server.violations()
    }

    /// Fails the test if any request broke the contract.
    ///
    /// # Panics
    /// Listing every violation.
    pub fn assert_no_violations(&self) {
        self.server.assert_no_violations("Cloudflare");
    }
}

fn handle(contract: &Contract, state: &Mutex<State>, request: &Request) -> Response {
    let batch = batch_zone(&request.path);
    let matched = if batch.is_some() && request.method == "POST" {
        None
    } else {
        match contract.check(
            &request.method,
            &request.path,
            &request.query,
            &request.body,
        ) {
            Ok(m) => Some(m),
            Err(v) => return violation(v.to_string()),
        }
    };
    let body: Value = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => return violation(format!("the body is not JSON: {e}")),
        }
    };
    if batch.is_some()
        && request.method == "POST"
        && let Err(v) = check_batch(contract, &body)
    {
        return violation(v);
    }
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let expected = format!("Bearer {}", state.settings.token);
    if request.header("authorization") != Some(expected.as_str()) {
        return envelope(Err(ApiError(401, 10_000, "Authentication error".into())));
    }
    if let Some(wait) = state.over_budget() {
        let mut answer = envelope(Err(ApiError(
            429,
            971,
            "Please wait and consider throttling your request speed".into(),
        )));
        answer = answer.header("retry-after", wait.to_string());
        return answer;
    }
    let answer = match (&batch, matched) {
        // Only a POST is a batch; other methods on that path were routed by the contract.
        (Some(zone_id), None) => state.batch(zone_id, &body),
        (_, Some(m)) => {
            let zone_id = m.path_params.get("zone_id").cloned().unwrap_or_default();
            let record_id = m.path_params.get("dns_record_id").cloned();
            match (request.method.as_str(), m.template.as_str()) {
                ("GET", "/zones") => state.zones_list(request),
                ("GET", "/zones/{zone_id}") => state.zone_get(&zone_id),
                ("GET", COLLECTION) => state.list(&zone_id, request),
                ("POST", COLLECTION) => state.create(&zone_id, &body),
                ("GET", SINGLE) => state.get(&zone_id, record_id.as_deref().unwrap_or("")),
                ("PUT", SINGLE) => state.put(&zone_id, record_id.as_deref().unwrap_or(""), &body),
                ("PATCH", SINGLE) => {
                    state.patch(&zone_id, record_id.as_deref().unwrap_or(""), &body)
                }
                ("DELETE", SINGLE) => state.delete(&zone_id, record_id.as_deref().unwrap_or("")),
                (method, template) => Err(ApiError(
                    501,
                    0,
                    format!("the fake does not implement {method} {template}"),
                )),
            }
        }
        (None, None) => unreachable!("a request is either a batch POST or a checked operation"),
    };
    envelope(answer)
}

/// The zone id of a batch path.
fn batch_zone(path: &str) -> Option<String> {
    let rest = path.strip_prefix(BASE)?.strip_prefix("/zones/")?;
    let (zone, tail) = rest.split_once('/')?;
    (tail == "dns_records/batch" && !zone.is_empty()).then(|| zone.to_string())
}

/// The batch body: only the four lists; each entry valid for the operation it stands for.
fn check_batch(contract: &Contract, body: &Value) -> Result<(), String> {
    let Some(fields) = body.as_object() else {
        return Err("invalid body: the batch body must be a JSON object".into());
    };
    for (key, list) in fields {
        let Some(entries) = list.as_array() else {
            return Err(format!("invalid body: field `/{key}` must be an array"));
        };
        for (i, entry) in entries.iter().enumerate() {
            let what = format!("{key}[{i}]");
            let has_id = entry.get("id").is_some_and(Value::is_string);
            let checked = match key.as_str() {
                "deletes" => {
                    if !has_id || entry.as_object().is_some_and(|o| o.len() != 1) {
                        return Err(format!(
                            "invalid body: {what}: a delete is exactly {{\"id\": …}}"
                        ));
                    }
                    Ok(())
                }
                "patches" | "puts" if !has_id => {
                    return Err(format!("invalid body: {what}: `id` is required"));
                }
                "patches" => contract.check_body_of("PATCH", SINGLE, entry, &what),
                "puts" => contract.check_body_of("PUT", SINGLE, entry, &what),
                "posts" if entry.get("id").is_some() => {
                    return Err(format!(
                        "invalid body: {what}: `id` is assigned by the server, not sent"
                    ));
                }
                "posts" => contract.check_body_of("POST", COLLECTION, entry, &what),
                other => {
                    return Err(format!(
                        "invalid body: field `/{other}` is not one of deletes, patches, puts, posts"
                    ));
                }
            };
            checked.map_err(|v| v.to_string())?;
        }
    }
    Ok(())
}

fn violation(reason: String) -> Response {
    let mut answer = Response::json(
        400,
        &json!({
            "success": false,
            "errors": [{"code": 400, "message": format!("contract violation: {reason}")}],
            "messages": [],
            "result": null,
        }),
    );
    answer.violation = Some(reason);
    answer
}

fn envelope(answer: Answer) -> Response {
    match answer {
        Ok((status, result, info)) => {
            let mut body = json!({
                "success": true,
                "errors": [],
                "messages": [],
                "result": result,
            });
            if let Some(info) = info {
                body["result_info"] = info;
            }
            Response::json(status, &body)
        }
        Err(ApiError(status, code, message)) => Response::json(
            status,
            &json!({
                "success": false,
                "errors": [{"code": code, "message": message}],
                "messages": [],
                "result": null,
            }),
        ),
    }
}

fn not_found() -> ApiError {
    ApiError(404, 81_044, "Record does not exist.".into())
}

fn no_zone(id: &str) -> ApiError {
    ApiError(
        404,
        7_003,
        format!(
            "Could not route to /zones/{id}/dns_records, perhaps your object identifier is invalid?"
        ),
    )
}

impl State {
    fn new_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        // 32 hex digits, as Cloudflare's identifiers; the high bits make them look unrelated.
        format!("{:016x}{n:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn now(&mut self) -> String {
        self.clock += 1;
        format!(
            "2026-01-01T00:{:02}:{:02}.{:06}Z",
            (self.clock / 60) % 60,
            self.clock % 60,
            self.clock
        )
    }

    /// Counts a request; `Some(seconds)` to wait when the window's budget is spent.
    fn over_budget(&mut self) -> Option<u64> {
        let elapsed = self.window_start.elapsed();
        if elapsed >= self.settings.window {
            self.window_start = Instant::now();
            self.window_count = 0;
        }
        self.window_count += 1;
        if self.window_count > self.settings.rate_limit {
            let left = self
                .settings
                .window
                .saturating_sub(self.window_start.elapsed());
            return Some(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        None
    }

    fn zone_by_name(&self, name: &str) -> Option<&Zone> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.zones.iter().find(|z| z.name == name)
    }

    fn zone(&self, id: &str) -> Result<Zone, ApiError> {
        self.zones
            .iter()
            .find(|z| z.id == id)
            .cloned()
            .ok_or_else(|| no_zone(id))
    }

    fn zone_json(zone: &Zone) -> Value {
        json!({
            "id": zone.id, "name": zone.name, "status": "active", "paused": false,
            "type": "full", "name_servers": ["ns1.example.test", "ns2.example.test"],
        })
    }

    fn zones_list(&self, request: &Request) -> Answer {
        let zones: Vec<Value> = self
            .zones
            .iter()
            .filter(|z| {
                request
                    .query("name")
                    .is_none_or(|n| n.eq_ignore_ascii_case(&z.name))
            })
            .map(State::zone_json)
            .collect();
        let info = json!({"page": 1, "per_page": 20, "count": zones.len(), "total_count": zones.len(), "total_pages": 1});
        Ok((200, Value::Array(zones), Some(info)))
    }

    fn zone_get(&self, id: &str) -> Answer {
        Ok((200, State::zone_json(&self.zone(id)?), None))
    }

    fn list(&self, zone_id: &str, request: &Request) -> Answer {
        let zone = self.zone(zone_id)?;
        for (name, _) in &request.query {
            if !["type", "name", "page", "per_page"].contains(&name.as_str()) {
                return Err(ApiError(
                    501,
                    0,
                    format!("the fake does not implement the list filter `{name}`"),
                ));
            }
        }
        let want_type = request.query("type");
        let want_name = request.query("name").map(str::to_ascii_lowercase);
        let matching: Vec<&Value> = self
            .records
            .iter()
            .filter(|r| r["zone_id"] == zone.id)
            .filter(|r| want_type.is_none_or(|t| r["type"] == t))
            .filter(|r| want_name.as_deref().is_none_or(|n| r["name"] == n))
            .collect();
        let page: usize = request
            .query("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let per_page: usize = request
            .query("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100)
            .clamp(1, self.settings.max_per_page);
        let slice: Vec<Value> = matching
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|r| (*r).clone())
            .collect();
        let total = matching.len();
        let info = json!({
            "page": page, "per_page": per_page, "count": slice.len(),
            "total_count": total, "total_pages": total.div_ceil(per_page),
        });
        Ok((200, Value::Array(slice), Some(info)))
    }

    fn get(&self, zone_id: &str, id: &str) -> Answer {
        let zone = self.zone(zone_id)?;
        self.records
            .iter()
            .find(|r| r["id"] == id && r["zone_id"] == zone.id)
            .map(|r| (200, r.clone(), None))
            .ok_or_else(not_found)
    }

    fn create(&mut self, zone_id: &str, body: &Value) -> Answer {
        let zone = self.zone(zone_id)?;
        let record = self.build(&zone, None, body.as_object().unwrap_or(&Map::new()))?;
        self.records.push(record.clone());
        Ok((200, record, None))
    }

    fn put(&mut self, zone_id: &str, id: &str, body: &Value) -> Answer {
        let zone = self.zone(zone_id)?;
        let at = self.position(&zone, id)?;
        let old = self.records[at].clone();
        let record = self.build(&zone, Some(&old), body.as_object().unwrap_or(&Map::new()))?;
        self.records[at] = record.clone();
        Ok((200, record, None))
    }

    fn patch(&mut self, zone_id: &str, id: &str, body: &Value) -> Answer {
        let zone = self.zone(zone_id)?;
        let at = self.position(&zone, id)?;
        let old = self.records[at].clone();
        // A patch keeps what it does not name: start from the record, overlay the body.
        let mut fields: Map<String, Value> = Map::new();
        for key in [
            "type", "name", "content", "ttl", "proxied", "comment", "tags", "priority",
        ] {
            if let Some(v) = old.get(key)
                && !v.is_null()
            {
                fields.insert(key.to_string(), v.clone());
            }
        }
        for (k, v) in body.as_object().into_iter().flatten() {
            if k != "id" {
                fields.insert(k.clone(), v.clone());
            }
        }
        let record = self.build(&zone, Some(&old), &fields)?;
        self.records[at] = record.clone();
        Ok((200, record, None))
    }

    fn delete(&mut self, zone_id: &str, id: &str) -> Answer {
        let zone = self.zone(zone_id)?;
        let at = self.position(&zone, id)?;
        self.records.remove(at);
        Ok((200, json!({"id": id}), None))
    }

    fn position(&self, zone: &Zone, id: &str) -> Result<usize, ApiError> {
        self.records
            .iter()
            .position(|r| r["id"] == id && r["zone_id"] == zone.id)
            .ok_or_else(not_found)
    }

    /// One transaction: deletes, patches, puts, posts, each list in order; the first error
    /// leaves every record as it was.
    fn batch(&mut self, zone_id: &str, body: &Value) -> Answer {
        self.zone(zone_id)?;
        let list = |key: &str| -> Vec<Value> {
            body.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (deletes, patches, puts, posts) = (
            list("deletes"),
            list("patches"),
            list("puts"),
            list("posts"),
        );
        let total = deletes.len() + patches.len() + puts.len() + posts.len();
        if total > self.settings.batch_limit {
            // Cloudflare's code for this is not in the contract; the message says what it is.
            return Err(ApiError(
                400,
                1_004,
                format!(
                    "A batch may change at most {} records on this plan, not {total}",
                    self.settings.batch_limit
                ),
            ));
        }
        let mut draft = self.clone();
        let mut result = json!({"deletes": [], "patches": [], "puts": [], "posts": []});
        let id_of = |entry: &Value| entry["id"].as_str().unwrap_or_default().to_string();
        for entry in &deletes {
            let at = draft.position(&draft.zone(zone_id)?, &id_of(entry))?;
            let gone = draft.records.remove(at);
            push(&mut result, "deletes", gone);
        }
        for entry in &patches {
            let (_, record, _) = draft.patch(zone_id, &id_of(entry), entry)?;
            push(&mut result, "patches", record);
        }
        for entry in &puts {
            let mut fields = entry.clone();
            if let Some(o) = fields.as_object_mut() {
                o.remove("id");
            }
            let (_, record, _) = draft.put(zone_id, &id_of(entry), &fields)?;
            push(&mut result, "puts", record);
        }
        for entry in &posts {
            let (_, record, _) = draft.create(zone_id, entry)?;
            push(&mut result, "posts", record);
        }
        *self = draft;
        Ok((200, result, None))
    }

    /// A record from request fields, checked as Cloudflare checks it; `old` is the record
    /// being overwritten (its id and creation time are kept).
    fn build(
        &mut self,
        zone: &Zone,
        old: Option<&Value>,
        fields: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let invalid = |code: u32, message: String| ApiError(400, code, message);
        let rtype = fields
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(9_000, "DNS record type is invalid.".into()))?
            .to_ascii_uppercase();
        let raw_name = fields.get("name").and_then(Value::as_str).unwrap_or("");
        let name = fqdn(raw_name, &zone.name);
        if name != zone.name && !name.ends_with(&format!(".{}", zone.name)) {
            return Err(invalid(
                9_007,
                format!("DNS record name {raw_name} is not in zone {}", zone.name),
            ));
        }
        let raw_content = fields.get("content").and_then(Value::as_str).unwrap_or("");
        let content = match rtype.as_str() {
            "A" => raw_content
                .parse::<Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| {
                    invalid(
                        9_005,
                        "Content for A record must be a valid IPv4 address.".into(),
                    )
                })?,
            "AAAA" => raw_content
                .parse::<Ipv6Addr>()
                .map(|a| a.to_string())
                .map_err(|_| {
                    invalid(
                        9_005,
                        "Content for AAAA record must be a valid IPv6 address.".into(),
                    )
                })?,
            "CNAME" | "MX" | "NS" | "PTR" => raw_content.trim_end_matches('.').to_ascii_lowercase(),
            _ => raw_content.to_string(),
        };
        if content.is_empty() {
            return Err(invalid(9_005, "DNS record content is empty.".into()));
        }
        let ttl = fields.get("ttl").and_then(Value::as_u64).unwrap_or(1);
        if ttl != 1 && !(60..=86_400).contains(&ttl) {
            return Err(invalid(
                9_021,
                "TTL must be between 60 and 86400 seconds, or 1 for Automatic.".into(),
            ));
        }
        let proxiable = matches!(rtype.as_str(), "A" | "AAAA" | "CNAME");
        let proxied = fields
            .get("proxied")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if proxied && !proxiable {
            return Err(invalid(
                9_004,
                format!("{rtype} records cannot be proxied."),
            ));
        }
        let priority = fields.get("priority").and_then(Value::as_u64);
        if rtype == "MX" && priority.is_none() {
            return Err(invalid(9_100, "MX records need a priority.".into()));
        }
        let comment = match fields.get("comment") {
            Some(Value::String(c)) if !c.is_empty() => Value::String(c.clone()),
            _ => Value::Null,
        };
        if comment
            .as_str()
            .is_some_and(|c| c.chars().count() > MAX_COMMENT)
        {
            return Err(invalid(
                9_102,
                format!("Comments may be at most {MAX_COMMENT} characters on this plan."),
            ));
        }
        let id = match old {
            Some(old) => old["id"].as_str().unwrap_or_default().to_string(),
            None => self.new_id(),
        };
        // Duplicates, against every other record of the zone.
        for other in self
            .records
            .iter()
            .filter(|r| r["zone_id"] == zone.id && r["id"] != id)
        {
            if other["name"] != name {
                continue;
            }
            if other["type"] == rtype && other["content"] == content {
                let code = self.settings.duplicate_code;
                let message = if code == 81_057 {
                    "The record already exists."
                } else {
                    "An identical record already exists."
                };
                return Err(invalid(code, message.into()));
            }
            if rtype == "CNAME" || other["type"] == "CNAME" {
                return Err(invalid(
                    81_053,
                    "An A, AAAA, or CNAME record with that host already exists.".into(),
                ));
            }
        }
        let now = self.now();
        let created = old
            .and_then(|o| o.get("created_on").cloned())
            .unwrap_or_else(|| Value::String(now.clone()));
        let mut record = json!({
            "id": id,
            "zone_id": zone.id,
            "zone_name": zone.name,
            "name": name,
            "type": rtype,
            "content": content,
            "proxiable": proxiable,
            "proxied": proxied,
            "ttl": ttl,
            "locked": false,
            "comment": comment,
            "tags": fields.get("tags").cloned().unwrap_or_else(|| json!([])),
            "meta": {"auto_added": false, "source": "primary"},
            "created_on": created,
            "modified_on": now,
        });
        if let Some(p) = priority {
            record["priority"] = json!(p);
        }
        Ok(record)
    }
}

fn push(result: &mut Value, key: &str, record: Value) {
    if let Some(list) = result[key].as_array_mut() {
        list.push(record);
    }
}

/// A name as Cloudflare stores it: `@` is the apex, a name outside the zone is taken as
/// relative to it, lower case, no trailing dot.
fn fqdn(name: &str, zone: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name == "@" || name.is_empty() {
        return zone.to_string();
    }
    if name == zone || name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request to the fake: status, body and `retry-after`.
    fn call(
        fake: &FakeCloudflare,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", fake.url());
        let bearer = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let result = match method {
            "GET" => agent.get(&url).header("Authorization", &bearer).call(),
            "POST" => agent
                .post(&url)
                .header("Authorization", &bearer)
                .send(&body),
            "PUT" => agent.put(&url).header("Authorization", &bearer).send(&body),
            "PATCH" => agent
                .patch(&url)
                .header("Authorization", &bearer)
                .send(&body),
            _ => agent
                .delete(&url)
                .header("Authorization", &bearer)
                .force_send_body()
                .send("{}"),
        };
        let mut response = result.expect("the fake answers");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap(), retry_after)
    }

    fn setup() -> (FakeCloudflare, String) {
        let fake = FakeCloudflare::start();
        let zone = fake.add_zone("example.com");
        (fake, zone)
    }

    #[test]
    fn put_resets_what_it_omits_and_patch_keeps_it() {
        let (fake, zone) = setup();
        let path = format!("/zones/{zone}/dns_records");
        let (status, created, _) = call(
            &fake,
            TOKEN,
            "POST",
            &path,
            Some(
                json!({"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 300, "comment": "c"}),
            ),
        );
        assert_eq!(status, 200, "{created}");
        let id = created["result"]["id"].as_str().unwrap().to_string();
        assert_eq!(created["result"]["name"], "www.example.com");
        let one = format!("{path}/{id}");
        let (_, patched, _) = call(
            &fake,
            TOKEN,
            "PATCH",
            &one,
            Some(json!({"type": "A", "name": "www", "content": "192.0.2.2"})),
        );
        assert_eq!(
            (
                patched["result"]["ttl"].as_u64(),
                patched["result"]["comment"].as_str()
            ),
            (Some(300), Some("c"))
        );
        let (_, put, _) = call(
            &fake,
            TOKEN,
            "PUT",
            &one,
            Some(json!({"type": "A", "name": "www", "content": "192.0.2.3"})),
        );
        assert_eq!(put["result"]["ttl"], 1);
        assert!(put["result"]["comment"].is_null());
        let (status, gone, _) = call(&fake, TOKEN, "DELETE", &one, None);
        assert_eq!(
            (status, gone["result"]["id"].as_str()),
            (200, Some(id.as_str()))
        );
        let (status, missing, _) = call(&fake, TOKEN, "GET", &one, None);
        assert_eq!(
            (status, missing["errors"][0]["code"].as_u64()),
            (404, Some(81_044))
        );
        fake.assert_no_violations();
    }

    #[test]
    fn a_batch_deletes_before_it_posts_and_is_all_or_nothing() {
        let (fake, zone) = setup();
        let old = fake.insert_record(
            "example.com",
            json!({"type": "A", "name": "www", "content": "192.0.2.1"}),
        );
        let path = format!("/zones/{zone}/dns_records/batch");
        // Posting the identical record works only because the delete runs first.
        let (status, answer, _) = call(
            &fake,
            TOKEN,
            "POST",
            &path,
            Some(json!({
                "posts": [{"type": "A", "name": "www", "content": "192.0.2.1"}],
                "deletes": [{"id": old}],
            })),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"]["deletes"][0]["id"], old.as_str());
        let new = answer["result"]["posts"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(fake.records("example.com").len(), 1);
        // One bad action (a delete of a missing record) and nothing happens.
        let (status, answer, _) = call(
            &fake,
            TOKEN,
            "POST",
            &path,
            Some(json!({
                "posts": [{"type": "A", "name": "api", "content": "192.0.2.9"}],
                "patches": [{"id": new, "type": "A", "name": "www", "content": "192.0.2.5"}],
                "deletes": [{"id": "0".repeat(32)}],
            })),
        );
        assert_eq!(
            (status, answer["errors"][0]["code"].as_u64()),
            (404, Some(81_044))
        );
        let records = fake.records("example.com");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["content"], "192.0.2.1");
        // Only a POST is a batch: a GET of that path asks for a record called `batch`.
        let (status, _, _) = call(&fake, TOKEN, "GET", &path, None);
        assert_eq!(status, 404);
        assert_eq!(fake.records("example.com").len(), 1);
        // Over the plan's limit.
        fake.set_batch_limit(1);
        let (status, _, _) = call(
            &fake,
            TOKEN,
            "POST",
            &path,
            Some(json!({"posts": [
                {"type": "A", "name": "a", "content": "192.0.2.1"},
                {"type": "A", "name": "b", "content": "192.0.2.1"},
            ]})),
        );
        assert_eq!(status, 400);
        fake.assert_no_violations();
    }

    #[test]
    fn requests_breaking_the_contract_are_refused_and_recorded() {
        let (fake, zone) = setup();
        let (status, answer, _) = call(
            &fake,
            TOKEN,
            "POST",
            &format!("/zones/{zone}/dns_records"),
            Some(json!({"type": "A", "name": "www", "content": "192.0.2.1", "ttl_seconds": 60})),
        );
        assert_eq!(status, 400);
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("`/ttl_seconds`"),
            "{answer}"
        );
        let (status, _, _) = call(
            &fake,
            TOKEN,
            "POST",
            &format!("/zones/{zone}/dns_records/batch"),
            Some(json!({"posts": [{"type": "A", "name": "www", "content": "nope"}]})),
        );
        assert_eq!(status, 400);
        let (status, _, _) = call(
            &fake,
            TOKEN,
            "POST",
            &format!("/zones/{zone}/dns_records/batch"),
            Some(json!({"deletes": [{"id": "x", "type": "A"}]})),
        );
        assert_eq!(status, 400);
        let violations = fake.violations();
        assert_eq!(violations.len(), 3, "{violations:?}");
        assert!(violations[1].contains("posts[0]"), "{violations:?}");
        assert!(fake.records("example.com").is_empty());
    }

    #[test]
    fn tokens_budgets_and_pages() {
        let (fake, zone) = setup();
        let (status, _, _) = call(&fake, "wrong", "GET", "/zones?name=example.com", None);
        assert_eq!(status, 401);
        let (status, zones, _) = call(&fake, TOKEN, "GET", "/zones?name=example.com", None);
        assert_eq!(
            (status, zones["result"][0]["id"].as_str()),
            (200, Some(zone.as_str()))
        );
        for i in 0..5 {
            fake.insert_record(
                "example.com",
                json!({"type": "TXT", "name": "t", "content": format!("v{i}")}),
            );
        }
        let (_, page, _) = call(
            &fake,
            TOKEN,
            "GET",
            &format!("/zones/{zone}/dns_records?type=TXT&page=2&per_page=2"),
            None,
        );
        assert_eq!(page["result"].as_array().unwrap().len(), 2);
        assert_eq!(page["result_info"]["total_count"], 5);
        assert_eq!(page["result"][0]["content"], "v2");
        fake.set_rate_limit(1, Duration::from_secs(30));
        call(&fake, TOKEN, "GET", "/zones", None);
        let (status, answer, retry_after) = call(&fake, TOKEN, "GET", "/zones", None);
        assert_eq!(status, 429, "{answer}");
        let wait: u64 = retry_after.unwrap().parse().unwrap();
        assert!((1..=30).contains(&wait));
        fake.assert_no_violations();
    }
}
