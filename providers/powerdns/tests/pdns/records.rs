//! `powerdns.record`: the life of RRsets of each common type, the normal forms that keep a
//! plan quiet, drift, and answers over DNS.

use fabrik_powerdns::record;
use fabrik_provider::{Attributes, Client, Value};
use hickory_proto::op::ResponseCode;
use serde_json::json;

use crate::dns;
use crate::harness::{Pdns, attrs, make_zone, record_target};

const ZONE: &str = "example.test";

struct Life<'a> {
    resource: &'a str,
    spec: Value,
    fqdn: &'a str,
    served: &'a [&'a str],
    changed: Value,
    served_after: &'a [&'a str],
}

/// Create, read (the spec's own spelling back), find, update, delete; each checked over DNS.
fn life(pdns: &Pdns, client: &dyn Client, case: Life<'_>) {
    let Life {
        resource,
        spec,
        fqdn,
        served,
        changed,
        served_after,
    } = case;
    let t = record_target(resource);
    let spec = attrs(spec);
    let rtype = spec["type"].as_str().unwrap().to_ascii_uppercase();
    let applied = client.create(t, &spec).unwrap();
    assert_eq!(applied.id, format!("example.test./{fqdn}/{rtype}"));
    assert_eq!(applied.outputs["fqdn"], fqdn);
    assert_eq!(
        dns::answers(pdns.dns_port, fqdn, &rtype),
        served,
        "{resource}"
    );

    let seen = client.read(t, &applied.id, &spec).unwrap().unwrap();
    assert_eq!(
        seen.inputs, spec,
        "{resource}: read shows the spec as written"
    );
    assert_eq!(seen.outputs["fqdn"], fqdn);
    let found = client.find(t, &spec).unwrap().unwrap();
    assert_eq!(found.id, applied.id);
    assert_eq!(found.observed.inputs, spec);

    let changed = attrs(changed);
    let updated = client.update(t, &applied.id, &spec, &changed).unwrap();
    assert_eq!(updated.id, applied.id);
    assert_eq!(
        dns::answers(pdns.dns_port, fqdn, &rtype),
        served_after,
        "{resource} after update"
    );
    let seen = client.read(t, &applied.id, &changed).unwrap().unwrap();
    assert_eq!(seen.inputs, changed);

    client.delete(t, &applied.id, &changed).unwrap();
    assert_eq!(client.read(t, &applied.id, &changed).unwrap(), None);
    assert!(dns::answers(pdns.dns_port, fqdn, &rtype).is_empty());
    client.delete(t, &applied.id, &changed).unwrap();
}

#[test]
fn a_aaaa_cname_mx_txt_live_and_die() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    life(
        &pdns,
        client.as_ref(),
        Life {
            resource: "web",
            spec: json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.2", "192.0.2.1"]}),
            fqdn: "www.example.test.",
            served: &["192.0.2.1", "192.0.2.2"],
            changed: json!({"zone": ZONE, "name": "www", "type": "A", "records": ["192.0.2.3"], "ttl": 60}),
            served_after: &["192.0.2.3"],
        },
    );
    life(
        &pdns,
        client.as_ref(),
        Life {
            resource: "web6",
            spec: json!({"zone": ZONE, "name": "www.example.test", "type": "aaaa",
                   "records": ["2001:DB8:0:0::1"]}),
            fqdn: "www.example.test.",
            served: &["2001:db8::1"],
            changed: json!({"zone": ZONE, "name": "www.example.test", "type": "aaaa",
                   "records": ["2001:db8::1", "2001:0db8::2"]}),
            served_after: &["2001:db8::1", "2001:db8::2"],
        },
    );
    life(
        &pdns,
        client.as_ref(),
        Life {
            resource: "alias",
            spec: json!({"zone": "Example.Test.", "name": "Blog.Example.Test.", "type": "CNAME",
                   "records": ["Pages.Example.NET"]}),
            fqdn: "blog.example.test.",
            served: &["pages.example.net."],
            changed: json!({"zone": "Example.Test.", "name": "Blog.Example.Test.", "type": "CNAME",
                   "records": ["www.example.test."]}),
            served_after: &["www.example.test."],
        },
    );
    life(
        &pdns,
        client.as_ref(),
        Life {
            resource: "mail",
            spec: json!({"zone": ZONE, "name": "@", "type": "MX",
                   "records": ["10 Mail.example.test", "20   backup.example.test."]}),
            fqdn: "example.test.",
            served: &["10 mail.example.test.", "20 backup.example.test."],
            changed: json!({"zone": ZONE, "name": "@", "type": "MX", "records": ["5 mail.example.test"]}),
            served_after: &["5 mail.example.test."],
        },
    );
    life(
        &pdns,
        client.as_ref(),
        Life {
            resource: "text",
            spec: json!({"zone": ZONE, "name": "@", "type": "TXT",
                   "records": ["hello world", "\"v=spf1 -all\"", "say \"hi\""]}),
            fqdn: "example.test.",
            served: &["hello world", "say \"hi\"", "v=spf1 -all"],
            changed: json!({"zone": ZONE, "name": "@", "type": "TXT",
                   "records": ["\"a\" \"b\"", &"x".repeat(300)]}),
            served_after: &["ab", &"x".repeat(300)],
        },
    );
}

#[test]
fn every_spelling_of_one_rrset_reads_back_as_written() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let written = attrs(json!({
        "zone": "example.test.", "name": "mixed", "type": "txt", "records": ["Some Text"],
    }));
    let t = record_target("mixed");
    let id = client.create(t, &written).unwrap().id;
    assert_eq!(id, "example.test./mixed.example.test./TXT");
    // The server has it in PowerDNS's form…
    assert_eq!(
        pdns.rrset("example.test.", "mixed.example.test.", "TXT")
            .unwrap()
            .1,
        ["\"Some Text\""]
    );
    // …and every equivalent spelling of the spec reads back exactly as that spelling.
    for spelling in [
        json!({"zone": "Example.Test", "name": "MIXED", "type": "TXT", "records": ["\"Some Text\""]}),
        json!({"zone": "example.test", "name": "mixed.example.test", "type": "TXT",
                   "records": ["Some Text"], "ttl": 300}),
        json!({"zone": "example.test.", "name": "Mixed.Example.Test.", "type": "Txt",
                   "records": ["  \"Some Text\"  "]}),
    ] {
        let spelling = attrs(spelling);
        let seen = client.read(t, &id, &spelling).unwrap().unwrap();
        assert_eq!(seen.inputs, spelling);
        assert_eq!(
            record::normalise(&seen.inputs).unwrap(),
            record::normalise(&written).unwrap()
        );
    }
    // Case matters in TXT content: that is a real difference.
    let other_case = attrs(json!({
        "zone": "example.test.", "name": "mixed", "type": "txt", "records": ["some text"],
    }));
    let seen = client.read(t, &id, &other_case).unwrap().unwrap();
    assert_eq!(seen.inputs["records"], json!(["\"Some Text\""]));
    assert_eq!(seen.inputs["name"], "mixed");

    // A create repeated with an equivalent spelling converges without a change.
    let serial = |pdns: &Pdns| -> u64 {
        let (_, body) = pdns.raw("GET", "/zones/example.test.?rrsets=false", None);
        serde_json::from_str::<Value>(&body).unwrap()["serial"]
            .as_u64()
            .unwrap()
    };
    let before = serial(&pdns);
    let again = attrs(json!({
        "zone": "example.test", "name": "MIXED.example.test.", "type": "TXT",
        "records": ["\"Some Text\""],
    }));
    assert_eq!(client.create(t, &again).unwrap().id, id);
    assert_eq!(serial(&pdns), before, "nothing was written");
}

#[test]
fn relative_absolute_apex_and_wildcard_names() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    for (resource, name, fqdn) in [
        ("relative", "app", "app.example.test."),
        ("deep", "a.b.Deep", "a.b.deep.example.test."),
        ("absolute", "abs.example.test", "abs.example.test."),
        ("dotted", "dot.example.test.", "dot.example.test."),
        ("apex", "@", "example.test."),
        ("wildcard", "*.dev", "*.dev.example.test."),
    ] {
        let spec =
            attrs(json!({"zone": ZONE, "name": name, "type": "A", "records": ["192.0.2.9"]}));
        let applied = client.create(record_target(resource), &spec).unwrap();
        assert_eq!(applied.outputs["fqdn"], fqdn);
        assert_eq!(applied.id, format!("example.test./{fqdn}/A"));
        let asked = if fqdn.starts_with('*') {
            "anything.dev.example.test."
        } else {
            fqdn
        };
        assert_eq!(
            dns::answers(pdns.dns_port, asked, "A"),
            ["192.0.2.9"],
            "{name}"
        );
    }
}

#[test]
fn a_replace_with_a_new_name_moves_the_rrset() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let t = record_target("site");
    let old = attrs(json!({"zone": ZONE, "name": "old", "type": "A", "records": ["192.0.2.1"]}));
    let old_id = client.create(t, &old).unwrap().id;
    // The type says destroy before create: the engine deletes the old RRset, then creates.
    let new = attrs(json!({"zone": ZONE, "name": "new", "type": "A", "records": ["192.0.2.1"]}));
    client.delete(t, &old_id, &old).unwrap();
    let new_id = client.create(t, &new).unwrap().id;
    assert_ne!(new_id, old_id);
    assert!(dns::answers(pdns.dns_port, "old.example.test.", "A").is_empty());
    assert_eq!(
        dns::answers(pdns.dns_port, "new.example.test.", "A"),
        ["192.0.2.1"]
    );
    // Replacing an A RRset by a CNAME of the same name works in that order too.
    let cname = attrs(
        json!({"zone": ZONE, "name": "new", "type": "CNAME", "records": ["www.example.net"]}),
    );
    client.delete(t, &new_id, &new).unwrap();
    client.create(t, &cname).unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "new.example.test.", "CNAME"),
        ["www.example.net."]
    );
    // A respelling of the same RRset, replaced the same way, leaves it in place.
    let respelled = attrs(
        json!({"zone": ZONE, "name": "new.example.test.", "type": "cname",
                                 "records": ["www.example.net."]}),
    );
    client
        .delete(t, "example.test./new.example.test./CNAME", &cname)
        .unwrap();
    client.create(t, &respelled).unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "new.example.test.", "CNAME"),
        ["www.example.net."]
    );
}

#[test]
fn drift_shows_the_servers_values_and_an_update_repairs_it() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let t = record_target("api");
    let spec = attrs(json!({"zone": ZONE, "name": "api", "type": "A", "records": ["192.0.2.1"]}));
    let id = client.create(t, &spec).unwrap().id;

    // Someone changes the records and the TTL through the API (their REPLACE keeps comments).
    pdns.raw_rrset(
        "example.test.",
        "api.example.test.",
        "A",
        60,
        &["198.51.100.7", "192.0.2.1"],
    );
    let seen = client.read(t, &id, &spec).unwrap().unwrap();
    let mut records = seen.inputs["records"].as_array().unwrap().clone();
    records.sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(records, [json!("192.0.2.1"), json!("198.51.100.7")]);
    assert_eq!(seen.inputs["ttl"], 60);
    // What did not change is still as written: no spurious change of name or zone.
    assert_eq!(seen.inputs["name"], "api");
    assert_eq!(seen.inputs["zone"], ZONE);
    assert_eq!(seen.inputs["type"], "A");

    // The update puts back what the spec says.
    client.update(t, &id, &spec, &spec).unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "api.example.test.", "A"),
        ["192.0.2.1"]
    );
    assert_eq!(client.read(t, &id, &spec).unwrap().unwrap().inputs, spec);

    // Deleted behind fabrik's back: read says it is gone, and an update writes it again.
    let (status, _) = pdns.raw(
        "PATCH",
        "/zones/example.test.",
        Some(
            json!({"rrsets": [{"name": "api.example.test.", "type": "A", "changetype": "DELETE"}]}),
        ),
    );
    assert_eq!(status, 204);
    assert_eq!(client.read(t, &id, &spec).unwrap(), None);
    client.update(t, &id, &spec, &spec).unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "api.example.test.", "A"),
        ["192.0.2.1"]
    );
}

#[test]
fn the_marker_is_in_the_rrset_comment() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let spec = attrs(json!({"zone": ZONE, "name": "m", "type": "A", "records": ["192.0.2.1"]}));
    client.create(record_target("marked"), &spec).unwrap();
    let (ttl, records, comments) = pdns.rrset("example.test.", "m.example.test.", "A").unwrap();
    assert_eq!(ttl, 300);
    assert_eq!(records, ["192.0.2.1"]);
    assert_eq!(comments, ["fabrik:pdns-test/marked"]);
}

#[test]
fn deleting_a_missing_rrset_is_ok() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let spec = attrs(json!({"zone": ZONE, "name": "gone", "type": "A", "records": ["192.0.2.1"]}));
    let t = record_target("gone");
    client
        .delete(t, "example.test./gone.example.test./A", &spec)
        .unwrap();
    // Even when the zone itself is gone.
    let elsewhere =
        attrs(json!({"zone": "nowhere.test", "name": "x", "type": "A", "records": ["192.0.2.1"]}));
    client
        .delete(t, "nowhere.test./x.nowhere.test./A", &elsewhere)
        .unwrap();
    assert_eq!(
        client
            .read(t, "nowhere.test./x.nowhere.test./A", &elsewhere)
            .unwrap(),
        None
    );
}

#[test]
fn records_of_one_zone_created_from_many_threads() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let names: Vec<String> = (0..40).map(|i| format!("host{i}")).collect();
    std::thread::scope(|s| {
        for (i, name) in names.iter().enumerate() {
            let client = client.as_ref();
            s.spawn(move || {
                let spec = attrs(json!({
                    "zone": ZONE, "name": name, "type": "A", "records": [format!("192.0.2.{i}")],
                }));
                client.create(record_target(name), &spec).unwrap();
            });
        }
    });
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            dns::answers(pdns.dns_port, &format!("{name}.example.test."), "A"),
            [format!("192.0.2.{i}")]
        );
    }
}

/// PowerDNS 4.7 never answers `Expect: 100-continue`, so a client that sends it waits a
/// second or more on every large body. A PATCH of about 1.5 MB must be stored whole, and the
/// server's own record of the request (its detailed webserver log, see `harness.rs`) must
/// show no `Expect` header: a check that does not depend on how busy the machine is.
#[test]
fn a_large_patch_completes_without_waiting() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let records: Vec<String> = (0..3000)
        .map(|i| format!("{i:05} {}", "y".repeat(480)))
        .collect();
    let spec = attrs(json!({"zone": ZONE, "name": "big", "type": "TXT", "records": records}));
    let body_len = serde_json::to_vec(&spec).unwrap().len();
    assert!(body_len > 1024 * 1024, "{body_len}");
    client.create(record_target("big"), &spec).unwrap();
    let (_, stored, _) = pdns
        .rrset("example.test.", "big.example.test.", "TXT")
        .unwrap();
    assert_eq!(stored.len(), 3000);

    // Each logged request line reads `[webserver] <request id>   <header>: <value>`.
    let log = std::fs::read_to_string(pdns.log()).unwrap();
    let headers_of = |id: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once(&format!("[webserver] {id}   ")))
            .map(|(_, header)| header.to_ascii_lowercase())
            .collect()
    };
    let large: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("[webserver] ")?;
            let (id, header) = rest.split_once("   content-length: ")?;
            (header.trim().parse::<usize>().ok()? > 1024 * 1024).then_some(id)
        })
        .collect();
    assert_eq!(
        large.len(),
        1,
        "the server logged one large request (log: {})",
        pdns.log().display()
    );
    let headers = headers_of(large[0]);
    assert!(
        headers.iter().any(|h| h.starts_with("x-api-key:")),
        "the request's headers were found in the log: {headers:?}"
    );
    assert!(
        !headers.iter().any(|h| h.starts_with("expect:")),
        "the large PATCH asked for `100-continue`: {headers:?}"
    );
}

#[test]
fn answers_over_dns_follow_every_change() {
    let pdns = Pdns::start();
    let client = pdns.client();
    make_zone(client.as_ref(), ZONE);
    let t = record_target("svc");
    let spec = |records: &[&str], ttl: u64| -> Attributes {
        attrs(
            json!({"zone": ZONE, "name": "_sip._tcp", "type": "SRV", "records": records, "ttl": ttl}),
        )
    };
    let first = spec(&["10 5 5060 SIP.example.test"], 120);
    let id = client.create(t, &first).unwrap().id;
    assert_eq!(
        dns::answers(pdns.dns_port, "_sip._tcp.example.test.", "SRV"),
        ["10 5 5060 sip.example.test."]
    );
    let second = spec(
        &["10 5 5060 sip.example.test.", "20 0 5061 sip2.example.test"],
        120,
    );
    client.update(t, &id, &first, &second).unwrap();
    assert_eq!(
        dns::answers(pdns.dns_port, "_sip._tcp.example.test.", "SRV"),
        [
            "10 5 5060 sip.example.test.",
            "20 0 5061 sip2.example.test."
        ]
    );
    client.delete(t, &id, &second).unwrap();
    let gone = dns::ask(pdns.dns_port, "_sip._tcp.example.test.", "SRV");
    assert_eq!(gone.code, ResponseCode::NXDomain);
}
