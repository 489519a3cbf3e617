//! The field mapping of each monitor type: spec fields in normal form, to Uptime Kuma's
//! monitor object and back.

use super::*;

fn attrs(v: Value) -> Attributes {
    v.as_object().expect("an object").clone()
}

/// `inputs` normalised, written as a new monitor, read back as inputs: the same.
fn round_trip(inputs: Value) -> (Attributes, Map<String, Value>) {
    let normal = normalise(&attrs(inputs)).expect("valid");
    let monitor = new_monitor(&normal, "fabrik:s/m", Some("TOKEN")).expect("writes");
    let mut seen = observed(&Value::Object(monitor.clone()));
    // Tags are rows of their own, written by calls after `add`.
    seen.retain(|k, _| normal.contains_key(k) && k != "tags");
    let mut want = normal.clone();
    want.remove("tags");
    assert_eq!(seen, want, "read back as written: {monitor:?}");
    (normal, monitor)
}

#[test]
fn http_fields_map_to_kumas_keys_and_back() {
    let (normal, m) = round_trip(json!({
        "name": "api", "type": "http", "url": "https://api.example.com/health",
        "method": "post", "headers": {"X-Key": "k"}, "body": "{}",
        "interval": "2m", "max_retries": 3, "accepted_status_codes": ["200-299", 301],
        "ignore_tls": true, "basic_auth": {"username": "u", "password": "p4ssword"},
        "notifications": ["2", 1], "tags": {"env": "prod"}
    }));
    assert_eq!(normal["timeout"], json!("96s"), "80% of the interval");
    assert_eq!(normal["retry_interval"], json!("60s"));
    assert_eq!(normal["notifications"], json!([1, 2]));
    assert_eq!(m["method"], json!("POST"));
    assert_eq!(m["interval"], json!(120));
    assert_eq!(m["maxretries"], json!(3));
    assert_eq!(m["accepted_statuscodes"], json!(["200-299", "301"]));
    assert_eq!(
        m["headers"],
        json!("{\"X-Key\":\"k\"}"),
        "headers go as JSON text"
    );
    assert_eq!(m["ignoreTls"], json!(true));
    assert_eq!(m["authMethod"], json!("basic"));
    assert_eq!(m["basic_auth_pass"], json!("p4ssword"));
    assert_eq!(
        m["notificationIDList"],
        json!({"1": true, "2": true}),
        "links are a map"
    );
    assert_eq!(
        m["conditions"],
        json!([]),
        "add refuses a monitor without conditions"
    );
    assert_eq!(m["description"], json!("fabrik:s/m"));
    assert_eq!(m["active"], json!(true));
}

#[test]
fn keyword_and_json_query_fields() {
    let (_, m) = round_trip(json!({
        "name": "k", "type": "keyword", "url": "http://x", "keyword": "OK", "invert_keyword": true
    }));
    assert_eq!(
        (m["keyword"].clone(), m["invertKeyword"].clone()),
        (json!("OK"), json!(true))
    );
    let (_, m) = round_trip(json!({
        "name": "j", "type": "json-query", "url": "http://x", "json_path": "$.status",
        "expected_value": "up"
    }));
    assert_eq!(m["jsonPath"], json!("$.status"));
    assert_eq!(m["expectedValue"], json!("up"));
    assert_eq!(m["jsonPathOperator"], json!("=="));
}

#[test]
fn port_dns_ping_and_push_fields() {
    let (normal, m) =
        round_trip(json!({"name": "p", "type": "port", "hostname": "db", "port": 5432}));
    assert_eq!(
        (m["hostname"].clone(), m["port"].clone()),
        (json!("db"), json!(5432))
    );
    assert!(
        !normal.contains_key("method"),
        "no HTTP defaults on a port monitor"
    );
    assert_eq!(
        m["accepted_statuscodes"],
        json!(["200-299"]),
        "sent whatever the type"
    );
    let (normal, m) = round_trip(
        json!({"name": "d", "type": "dns", "hostname": "example.com", "dns_resolve_type": "aaaa"}),
    );
    assert_eq!(normal["port"], json!(53));
    assert_eq!(m["dns_resolve_server"], json!("1.1.1.1"));
    assert_eq!(m["dns_resolve_type"], json!("AAAA"));
    let (_, m) =
        round_trip(json!({"name": "i", "type": "ping", "hostname": "10.0.0.1", "paused": true}));
    assert_eq!(
        m["active"],
        json!(false),
        "a paused monitor is created inactive"
    );
    let (_, m) = round_trip(json!({"name": "h", "type": "push"}));
    assert_eq!(m["pushToken"], json!("TOKEN"));
}

#[test]
fn a_field_dropped_from_the_spec_is_reset_and_unmanaged_ones_are_kept() {
    let prior = normalise(&attrs(json!({"name": "a", "type": "http", "url": "http://x", "body": "b", "basic_auth": {"username": "u", "password": "p"}}))).unwrap();
    let now = normalise(&attrs(
        json!({"name": "a", "type": "http", "url": "http://x"}),
    ))
    .unwrap();
    let mut m = attrs(
        json!({"body": "b", "authMethod": "basic", "basic_auth_user": "u", "basic_auth_pass": "p",
        "notificationIDList": {"4": true}, "proxyId": 2, "headers": "{\"A\":\"1\"}"}),
    );
    write(&mut m, &now, Some(&prior)).unwrap();
    assert_eq!(m["body"], Value::Null);
    assert_eq!(m["authMethod"], Value::Null);
    assert_eq!(m["basic_auth_pass"], Value::Null);
    assert_eq!(
        m["notificationIDList"],
        json!({"4": true}),
        "links kept when the spec has none"
    );
    assert_eq!(m["proxyId"], json!(2));
    assert_eq!(
        m["headers"],
        json!("{\"A\":\"1\"}"),
        "headers fabrik never managed stay"
    );
}

#[test]
fn observed_reads_kumas_own_shapes() {
    let seen = observed(&json!({
        "type": "http", "name": "a", "url": "http://x", "method": "GET", "interval": 60,
        "retryInterval": 30, "maxretries": 0, "timeout": 48.0, "accepted_statuscodes": ["300-399", "200-299"],
        "upsideDown": false, "ignoreTls": false, "expiryNotification": false, "active": 0,
        "notificationIDList": {"3": true, "1": true}, "authMethod": null,
        "tags": [{"tag_id": 1, "monitor_id": 1, "name": "env", "value": "prod", "color": "#000"}],
        "port": null, "hostname": null
    }));
    assert_eq!(seen["timeout"], json!("48s"));
    assert_eq!(seen["retry_interval"], json!("30s"));
    assert_eq!(seen["accepted_status_codes"], json!(["200-299", "300-399"]));
    assert_eq!(seen["notifications"], json!([1, 3]));
    assert_eq!(seen["tags"], json!({"env": "prod"}));
    assert_eq!(seen["paused"], json!(true));
    assert!(!seen.contains_key("basic_auth") && !seen.contains_key("hostname"));
}

#[test]
fn bad_inputs_name_the_field() {
    let err = |v: Value| normalise(&attrs(v)).unwrap_err().message;
    assert!(err(json!({"type": "bogus"})).contains("not a monitor type"));
    assert!(err(json!({"type": "http"})).contains("needs `url`"));
    assert!(err(json!({"type": "keyword", "url": "http://x"})).contains("needs `keyword`"));
    assert!(err(json!({"type": "port", "hostname": "h"})).contains("needs `port`"));
    assert!(
        err(json!({"type": "ping", "hostname": "h", "url": "http://x"}))
            .contains("`url` does not apply")
    );
    assert!(err(json!({"type": "http", "url": "ftp://x"})).contains("http://"));
    assert!(err(json!({"type": "push", "interval": "1500ms"})).contains("whole number of seconds"));
    assert!(err(json!({"type": "push", "notifications": ["x"]})).contains("notification ids"));
    assert!(
        err(json!({"type": "http", "url": "http://x", "accepted_status_codes": ["2xx"]}))
            .contains("accepted_status_codes")
    );
    assert!(
        err(json!({"type": "http", "url": "http://x", "basic_auth": {"user": "u"}}))
            .contains("basic_auth")
    );
    assert!(
        validate(&attrs(json!({"url": "http://x"}))).is_ok(),
        "type not known yet"
    );
}

#[test]
fn pause_during_changes_is_fabriks_own_and_never_sent() {
    let inputs = attrs(
        json!({"name": "api", "type": "http", "url": "https://a.example.com",
                              "pause_during_changes": false}),
    );
    validate(&inputs).expect("every type takes it");
    let normal = normalise(&inputs).expect("valid");
    assert_eq!(
        normal["pause_during_changes"],
        json!(false),
        "kept as given"
    );
    let monitor = new_monitor(&normal, "fabrik:s/m", None).expect("writes");
    assert!(
        !monitor.keys().any(|k| k.contains("pause")),
        "nothing of it reaches Uptime Kuma: {monitor:?}"
    );
    let plain = attrs(json!({"name": "api", "type": "http", "url": "https://a.example.com"}));
    assert!(
        !normalise(&plain)
            .unwrap()
            .contains_key("pause_during_changes"),
        "no default: existing monitors hash as before"
    );
}
