//! A fake Cloudflare with one zone, and a client of it with short waits.

use std::time::Duration;

use fabrik_cloudflare::{CloudflareClient, RECORD_TYPE, Tuning};
use fabrik_provider::{Attributes, Target, Value};
use fabrik_testkit::cloudflare::{FakeCloudflare, TOKEN};
use serde_json::json;

pub const ZONE: &str = "example.com";
pub const STACK: &str = "cf-test";

pub fn attrs(value: Value) -> Attributes {
    value.as_object().expect("an object").clone()
}

pub fn target(name: &str) -> Target<'_> {
    Target {
        stack: STACK,
        name,
        type_name: RECORD_TYPE,
    }
}

pub fn quick() -> Tuning {
    Tuning {
        attempts: 4,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        rate_limit_wait: Duration::from_secs(5),
        budget_window: Duration::from_secs(300),
    }
}

/// A fake with the zone `example.com`.
pub fn fake() -> FakeCloudflare {
    let fake = FakeCloudflare::start();
    fake.add_zone(ZONE);
    fake
}

pub fn client(fake: &FakeCloudflare) -> CloudflareClient {
    client_with(fake, json!({}), quick())
}

/// A client with extra provider settings (`batch_size`, `request_budget`, `token`).
pub fn client_with(fake: &FakeCloudflare, extra: Value, tuning: Tuning) -> CloudflareClient {
    let mut config = attrs(json!({"api_url": fake.url(), "token": TOKEN}));
    config.extend(attrs(extra));
    CloudflareClient::new(&config, tuning).expect("a valid configuration")
}

/// An A record `name` → `ip` in the zone.
pub fn a_record(name: &str, ip: &str) -> Attributes {
    attrs(json!({"zone": ZONE, "name": name, "type": "A", "content": ip}))
}

/// The fake's records of the zone with this name (FQDN).
pub fn named(fake: &FakeCloudflare, fqdn: &str) -> Vec<Value> {
    fake.records(ZONE)
        .into_iter()
        .filter(|r| r["name"] == fqdn)
        .collect()
}
