//! Unit tests of `powerdns.record`: its normal forms and ids (`schema.rs`) and how a read
//! reports what the server has (`mod.rs`). Against a real server: `tests/pdns/`.

use std::net::Ipv6Addr;

use super::schema::*;
use super::*;
use serde_json::json;

fn attrs(value: Value) -> Attributes {
    value.as_object().unwrap().clone()
}

#[test]
fn normal_form() {
    let got = normalise(&attrs(json!({
        "zone": "Example.Test",
        "name": "WWW",
        "type": "cname",
        "records": ["Target.Example.Com"],
    })))
    .unwrap();
    assert_eq!(
        Value::Object(got),
        json!({
            "zone": "example.test.",
            "name": "www.example.test.",
            "type": "CNAME",
            "records": ["target.example.com."],
            "ttl": 300,
        })
    );
    let apex = normalise(&attrs(json!({
        "zone": "example.test.",
        "name": "@",
        "type": "TXT",
        "records": ["b text", "\"a\"  \"quoted\""],
        "ttl": 60,
    })))
    .unwrap();
    assert_eq!(apex["name"], "example.test.");
    assert_eq!(apex["records"], json!(["\"a\" \"quoted\"", "\"b text\""]));
}

#[test]
fn ids_round_trip() {
    for (zone, name, rtype) in [
        ("example.test.", "www.example.test.", "A"),
        ("example.test.", "example.test.", "MX"),
        (
            "0/26.2.0.192.in-addr.arpa.",
            "1.0/26.2.0.192.in-addr.arpa.",
            "PTR",
        ),
    ] {
        let id = identity_id(zone, name, rtype);
        assert_eq!(
            parse_id(&id),
            Some((zone.to_string(), name.to_string(), rtype.to_string()))
        );
    }
    assert_eq!(parse_id("nonsense"), None);
}

#[test]
fn import_ids_are_read_in_any_spelling_of_the_printed_one() {
    let www = Some((
        "example.test.".to_string(),
        "www.example.test.".to_string(),
        "A".to_string(),
    ));
    for id in [
        "example.test./www.example.test./A",
        "Example.Test/WWW.example.test/a",
        "example.test./www/A",
        " example.test./www.example.test./A ",
    ] {
        assert_eq!(import_id(id).ok(), www, "{id}");
    }
    assert_eq!(
        import_id("example.test./@/MX").unwrap().1,
        "example.test.",
        "the apex"
    );
    assert_eq!(
        import_id("0/26.2.0.192.in-addr.arpa./1.0/26.2.0.192.in-addr.arpa./PTR").unwrap(),
        (
            "0/26.2.0.192.in-addr.arpa.".to_string(),
            "1.0/26.2.0.192.in-addr.arpa.".to_string(),
            "PTR".to_string()
        )
    );
    for bad in [
        "",
        "www",
        "example.test./A",
        "/www.example.test./A",
        "example.test./www.other.test./A",
        "example.test./www/A B",
    ] {
        let err = import_id(bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}");
    }
}

#[test]
fn validation() {
    let bad = [
        json!({"type": "A", "records": ["192.0.2.300"]}),
        json!({"type": "A", "records": ["2001:db8::1"]}),
        json!({"type": "AAAA", "records": ["192.0.2.1"]}),
        json!({"type": "CNAME", "records": ["a.example.", "b.example."]}),
        json!({"zone": "example.test", "name": "@", "type": "CNAME", "records": ["a.example."]}),
        json!({"type": "MX", "records": ["mail.example.test"]}),
        json!({"type": "TXT", "records": ["\"unterminated"]}),
        json!({"records": []}),
        json!({"records": [1]}),
        json!({"type": "A", "records": ["192.0.2.1", " 192.0.2.1"]}),
        json!({"ttl": 0}),
        json!({"ttl": 2_147_483_648u64}),
        json!({"ttl": -5}),
        json!({"type": "A B"}),
        json!({"zone": "example.test", "name": "www.other.test."}),
        json!({"name": "a..b"}),
        json!({"zone": "bad zone"}),
    ];
    for inputs in bad {
        match validate(&attrs(inputs.clone())) {
            Err(e) => assert_eq!(e.kind, ErrorKind::InvalidInput, "{inputs}"),
            Ok(()) => panic!("{inputs} passed validation"),
        }
    }
    validate(&attrs(json!({"name": "www", "ttl": 2_147_483_647u64}))).unwrap();
    validate(&attrs(json!({"records": ["anything"]}))).unwrap();
}

#[test]
fn owners_relative_absolute_and_apex() {
    let zone = "example.test.";
    assert_eq!(owner("www", zone).unwrap(), "www.example.test.");
    assert_eq!(owner("WWW", zone).unwrap(), "www.example.test.");
    assert_eq!(
        owner("www.example.test", zone).unwrap(),
        "www.example.test."
    );
    assert_eq!(
        owner("Www.Example.Test.", zone).unwrap(),
        "www.example.test."
    );
    assert_eq!(owner("@", zone).unwrap(), zone);
    assert_eq!(owner("example.test", zone).unwrap(), zone);
    assert_eq!(owner("a.b", zone).unwrap(), "a.b.example.test.");
    assert_eq!(owner("*.dev", zone).unwrap(), "*.dev.example.test.");
    assert!(owner("a..b", zone).is_err());
    assert!(owner("", zone).is_err());
    assert!(owner("has space", zone).is_err());
    assert!(owner(&"x".repeat(64), zone).is_err());
}

#[test]
fn contents_by_type() {
    let c = |t: &str, v: &str| content(t, v).unwrap();
    assert_eq!(c("A", " 192.0.2.1 "), "192.0.2.1");
    assert!(content("A", "192.0.2.300").is_err());
    assert!(content("A", "2001:db8::1").is_err());
    assert_eq!(c("AAAA", "2001:DB8:0:0::1"), "2001:db8::1");
    assert_eq!(c("AAAA", "2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
    assert_eq!(c("AAAA", "::ffff:192.0.2.1"), "::ffff:c000:201");
    assert_eq!(c("AAAA", "::1"), "::1");
    assert_eq!(c("AAAA", "::"), "::");
    assert_eq!(c("AAAA", "1:0:0:2:0:0:0:3"), "1:0:0:2::3");
    assert_eq!(c("AAAA", "1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
    assert_eq!(c("AAAA", "1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
    assert!(content("AAAA", "192.0.2.1").is_err());
    assert_eq!(c("CNAME", "Target.Example.com"), "target.example.com.");
    assert_eq!(c("NS", "ns1.example.com."), "ns1.example.com.");
    assert_eq!(c("MX", "010   Mail.Example.com"), "10 mail.example.com.");
    assert_eq!(c("MX", "0 ."), "0 .");
    assert!(content("MX", "mail.example.com").is_err());
    assert!(content("MX", "70000 mail.example.com").is_err());
    assert_eq!(
        c("SRV", "1 2 443 Srv.Example.com"),
        "1 2 443 srv.example.com."
    );
    assert!(content("SRV", "1 2 srv.example.com").is_err());
    assert_eq!(
        c("CAA", " 0 issue \"letsencrypt.org\" "),
        "0 issue \"letsencrypt.org\""
    );
}

#[test]
fn txt_is_quoted_once() {
    let c = |v: &str| content("TXT", v).unwrap();
    assert_eq!(c("hello world"), "\"hello world\"");
    assert_eq!(c("\"hello world\""), "\"hello world\"");
    assert_eq!(c("  \"a\"    \"b\" "), "\"a\" \"b\"");
    assert_eq!(c("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
    assert_eq!(c("\"a\\\"b\""), "\"a\\\"b\"");
    assert_eq!(c("v=spf1 -all"), "\"v=spf1 -all\"");
    assert_eq!(c("Case Kept"), "\"Case Kept\"");
    assert_eq!(c("\"\""), "\"\"");
    assert!(content("TXT", "\"a\" b").is_err());
    assert!(content("TXT", "\"open").is_err());
    assert!(content("TXT", "\"a\\").is_err());
    assert!(content("TXT", &"x".repeat(70_000)).is_err());
    assert!(content("TXT", &"x".repeat(60_000)).is_ok());
}

#[test]
fn escapes_count_as_one_byte() {
    assert_eq!(unescaped_len("a\\\"b"), 3);
    assert_eq!(unescaped_len("\\065bc"), 3);
    assert_eq!(unescaped_len("\\\\"), 1);
}

#[test]
fn ipv6_text_matches_std_where_std_prints_hex() {
    for text in [
        "2001:db8::1",
        "fe80::1:2",
        "::",
        "1::",
        "2001:db8:0:0:1:0:0:1",
    ] {
        let addr: Ipv6Addr = text.parse().unwrap();
        assert_eq!(ipv6(addr), addr.to_string(), "{text}");
    }
}

#[test]
fn read_keeps_the_users_spelling_and_reports_drift() {
    let info: RRsetInfo = serde_json::from_value(json!({
        "name": "www.example.test.", "type": "TXT", "ttl": 300,
        "records": [{"content": "\"hello world\"", "disabled": false}],
        "comments": [],
    }))
    .unwrap();
    let server = server_rrset("example.test.", &info);
    let recorded = attrs(json!({
        "zone": "example.test", "name": "WWW", "type": "txt", "records": ["hello world"],
    }));
    assert_eq!(observed_inputs(&server, &info, &recorded), recorded);

    let drifted = attrs(json!({
        "zone": "example.test", "name": "www", "type": "TXT", "records": ["bye"], "ttl": 60,
    }));
    assert_eq!(
        Value::Object(observed_inputs(&server, &info, &drifted)),
        json!({
            "zone": "example.test", "name": "www", "type": "TXT",
            "records": ["\"hello world\""], "ttl": 300,
        })
    );
}
