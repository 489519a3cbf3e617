//! Gate tests, each against a real server on 127.0.0.1 that the test starts and stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData};
use serde_json::json;

use super::test_support::{DnsServer, HttpServer, Pki, Reply, Validity, Zone, closed_port};
use super::{Gate, check_entry};
use crate::spec::Spec;

fn gate(value: serde_json::Value) -> Gate {
    Gate::from_value(&value, std::path::Path::new("/nonexistent")).unwrap()
}

fn run(gate: &Gate) -> Result<(), String> {
    gate.run(&AtomicBool::new(false))
}

// ---- http ----------------------------------------------------------------------------------

#[test]
fn http_matching_status_headers_and_body_pass() {
    let server = HttpServer::start(|path| {
        assert_eq!(path, "/health");
        Reply::new(200, "{\"status\":\"ok\"}")
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Release", "v42")
    });
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/health", server.port),
        "body_contains": "\"ok\"",
        "headers": { "content-type": "application/json", "X-Release": "v42" },
        "timeout": "2s",
    }));
    assert_eq!(
        g.describe(),
        format!("http http://127.0.0.1:{}/health", server.port)
    );
    run(&g).unwrap();
}

#[test]
fn http_status_mismatch_names_the_status_and_an_excerpt_of_the_body() {
    let server = HttpServer::start(|_| Reply::new(500, "database\n  unreachable"));
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "timeout": "300ms",
        "interval": "100ms",
    }));
    let err = run(&g).unwrap_err();
    assert!(
        err.starts_with(
            "expected status 200, got 500 Internal Server Error (body: \"database unreachable\") (gave up after 300ms, "
        ),
        "{err}"
    );
}

#[test]
fn http_body_without_the_expected_text_fails() {
    let server = HttpServer::start(|_| Reply::new(200, "starting"));
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "body_contains": "ready",
        // One attempt with time to spare, so that a loaded machine still sees the answer (an
        // interval as long as the timeout leaves no room for a second attempt).
        "timeout": "2s",
        "interval": "2s",
    }));
    let err = run(&g).unwrap_err();
    assert!(
        err.starts_with("status 200, but the body does not contain \"ready\" (body: \"starting\")"),
        "{err}"
    );
}

#[test]
fn http_header_mismatch_and_missing_header_fail() {
    let server =
        HttpServer::start(|_| Reply::new(200, "<html>").header("Content-Type", "text/html"));
    let url = format!("http://127.0.0.1:{}/", server.port);
    let err = run(&gate(json!({
        "http": url, "headers": { "content-type": "application/json" }, "timeout": "2s", "interval": "2s",
    })))
    .unwrap_err();
    assert!(
        err.starts_with(
            "status 200, but the header content-type is \"text/html\" (expected \"application/json\")"
        ),
        "{err}"
    );
    let err = run(&gate(json!({
        "http": url, "headers": { "x-release": "v42" }, "timeout": "2s", "interval": "2s",
    })))
    .unwrap_err();
    assert!(
        err.starts_with("status 200, but the header x-release is missing"),
        "{err}"
    );
}

#[test]
fn http_slow_start_passes_before_the_timeout() {
    let started = Instant::now();
    let server = HttpServer::start(move |_| {
        if started.elapsed() < Duration::from_secs(1) {
            Reply::new(503, "warming up")
        } else {
            Reply::new(200, "ok")
        }
    });
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "timeout": "5s",
        "interval": "100ms",
    }));
    run(&g).unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn http_timeout_expires_when_the_gate_never_passes() {
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let server = HttpServer::start(move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
        Reply::new(502, "")
    });
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "timeout": "700ms",
        "interval": "100ms",
    }));
    let start = Instant::now();
    let err = run(&g).unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let attempts = hits.load(Ordering::Relaxed);
    assert!(attempts >= 3, "{attempts} attempts");
    assert!(
        err.starts_with(
            "expected status 200, got 502 Bad Gateway (empty body) (gave up after 700ms, "
        ),
        "{err}"
    );
    assert!(err.ends_with(&format!("{attempts} attempts)")), "{err}");
}

#[test]
fn http_a_hung_server_cannot_stall_the_gate_past_its_timeout() {
    let server = HttpServer::start(|_| Reply::hang());
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "timeout": "500ms",
    }));
    let start = Instant::now();
    let err = run(&g).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn http_connection_refused_says_so() {
    let port = closed_port();
    let g = gate(json!({ "http": format!("http://127.0.0.1:{port}/"), "timeout": "200ms" }));
    let err = run(&g).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "cannot reach 127.0.0.1:{port}: connection refused (nothing listens there)"
        )),
        "{err}"
    );
}

#[test]
fn http_cancel_stops_the_gate_early() {
    let server = HttpServer::start(|_| Reply::new(500, "down"));
    let g = gate(json!({
        "http": format!("http://127.0.0.1:{}/", server.port),
        "timeout": "30s",
        "interval": "10s",
    }));
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::Relaxed);
    });
    let start = Instant::now();
    let err = g.run(&cancel).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        err,
        "cancelled; the last attempt had failed: expected status 200, got 500 Internal Server Error (body: \"down\")"
    );
}

#[test]
fn http_cancel_is_seen_while_an_attempt_hangs() {
    let server = HttpServer::start(|_| Reply::hang());
    let g = gate(json!({ "http": format!("http://127.0.0.1:{}/", server.port), "timeout": "30s" }));
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::Relaxed);
    });
    let start = Instant::now();
    assert_eq!(g.run(&cancel).unwrap_err(), "cancelled");
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn http_expected_redirect_is_seen_not_followed() {
    let server = HttpServer::start(|path| match path {
        "/old" => Reply::new(301, "").header("Location", "/new"),
        _ => Reply::new(200, "new"),
    });
    let base = format!("http://127.0.0.1:{}", server.port);
    run(&gate(
        json!({ "http": format!("{base}/old"), "status": 301, "timeout": "2s" }),
    ))
    .unwrap();
    // Expecting a 200, the redirect is followed.
    run(&gate(
        json!({ "http": format!("{base}/old"), "body_contains": "new", "timeout": "2s" }),
    ))
    .unwrap();
}

#[test]
fn https_trusts_the_ca_file_and_nothing_else() {
    let pki = Pki::new("fabrik test CA");
    let dir = tempfile::tempdir().unwrap();
    pki.write_ca(dir.path());
    let server = HttpServer::start_tls(pki.server(&["127.0.0.1"], Validity::days(-1, 30)), |_| {
        Reply::new(200, "ok")
    });
    let url = format!("https://127.0.0.1:{}/health", server.port);
    // Relative to the spec's directory.
    let g = Gate::from_value(
        &json!({ "http": url, "ca_file": "ca.pem", "body_contains": "ok", "timeout": "3s" }),
        dir.path(),
    )
    .unwrap();
    run(&g).unwrap();

    let err = run(&gate(json!({ "http": url, "timeout": "300ms" }))).unwrap_err();
    assert!(err.contains("not trusted"), "{err}");
}

#[test]
fn https_missing_ca_file_fails_at_once() {
    let start = Instant::now();
    let err = run(&gate(json!({
        "http": "https://127.0.0.1:1/", "ca_file": "missing.pem", "timeout": "10s",
    })))
    .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        err.starts_with("cannot read ca_file /nonexistent/missing.pem"),
        "{err}"
    );
}

// ---- tls -----------------------------------------------------------------------------------

/// A TLS gate against a server presenting a leaf for `names` with `validity`.
fn tls_gate(
    pki: &Pki,
    names: &[&str],
    validity: Validity,
    extra: serde_json::Value,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path());
    let server = HttpServer::start_tls(pki.server(names, validity), |_| Reply::new(200, ""));
    let mut value = json!({
        "tls": "127.0.0.1",
        "port": server.port,
        "ca_file": ca.to_str().unwrap(),
        "timeout": "300ms",
        "interval": "100ms",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            value.as_object_mut().unwrap().remove(k);
        } else {
            value[k] = v.clone();
        }
    }
    let g = Gate::from_value(&value, dir.path()).unwrap();
    assert!(
        g.describe()
            .starts_with(&format!("tls 127.0.0.1:{}", server.port))
    );
    run(&g)
}

#[test]
fn tls_valid_certificate_passes() {
    let pki = Pki::new("fabrik test CA");
    tls_gate(
        &pki,
        &["127.0.0.1"],
        Validity::days(-1, 90),
        json!({ "min_valid_days": 14 }),
    )
    .unwrap();
}

#[test]
fn tls_expired_certificate_fails_saying_expired() {
    let pki = Pki::new("fabrik test CA");
    let err = tls_gate(&pki, &["127.0.0.1"], Validity::days(-30, -3), json!({})).unwrap_err();
    assert!(err.starts_with("the certificate expired on "), "{err}");
    assert!(err.contains("(3 days ago)"), "{err}");
}

#[test]
fn tls_certificate_for_another_host_fails_with_hostname_mismatch() {
    let pki = Pki::new("fabrik test CA");
    let err = tls_gate(
        &pki,
        &["other.example", "www.other.example"],
        Validity::days(-1, 90),
        json!({}),
    )
    .unwrap_err();
    assert!(
        err.starts_with(
            "the certificate does not match the hostname 127.0.0.1 (hostname mismatch): it is for other.example, www.other.example"
        ),
        "{err}"
    );
}

#[test]
fn tls_certificate_from_an_unknown_ca_is_untrusted() {
    let pki = Pki::new("fabrik test CA");
    // No ca_file: the system roots, which do not know this CA.
    let err = tls_gate(
        &pki,
        &["127.0.0.1"],
        Validity::days(-1, 90),
        json!({ "ca_file": null }),
    )
    .unwrap_err();
    assert!(
        err.starts_with(
            "the certificate is not trusted (unknown issuer): its chain (issued by `CN=fabrik test CA`) does not lead to the system roots"
        ) || err.starts_with("no system root certificates found"),
        "{err}"
    );
    // Another CA given as ca_file is no better.
    let other = Pki::new("another CA");
    let dir = tempfile::tempdir().unwrap();
    let other_ca = other.write_ca(dir.path());
    let err = tls_gate(
        &pki,
        &["127.0.0.1"],
        Validity::days(-1, 90),
        json!({ "ca_file": other_ca.to_str().unwrap() }),
    )
    .unwrap_err();
    assert!(err.contains("not trusted (unknown issuer)"), "{err}");
    assert!(err.contains("the CA in ca_file"), "{err}");
}

#[test]
fn tls_min_valid_days_beyond_the_remaining_validity_fails_with_the_days_left() {
    let pki = Pki::new("fabrik test CA");
    let validity = || Validity {
        from: -86_400,
        until: 10 * 86_400 + 3600,
    };
    let err = tls_gate(
        &pki,
        &["127.0.0.1"],
        validity(),
        json!({ "min_valid_days": 30 }),
    )
    .unwrap_err();
    assert!(
        err.starts_with("the certificate expires in 10 days (on "),
        "{err}"
    );
    assert!(err.contains("but min_valid_days is 30"), "{err}");
    tls_gate(
        &pki,
        &["127.0.0.1"],
        validity(),
        json!({ "min_valid_days": 10 }),
    )
    .unwrap();
}

#[test]
fn tls_host_with_port_and_refused_connection() {
    let port = closed_port();
    let err = run(&gate(
        json!({ "tls": format!("127.0.0.1:{port}"), "timeout": "200ms" }),
    ))
    .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused"
        )) || err.starts_with("no system root certificates found"),
        "{err}"
    );
}

// ---- dns -----------------------------------------------------------------------------------

fn zone() -> Zone {
    let name = |n: &str| Name::from_ascii(n).unwrap();
    Zone::new()
        .add("api.shop.test", RData::A(A::new(203, 0, 113, 10)))
        .add("api.shop.test", RData::A(A::new(203, 0, 113, 11)))
        .add("www.shop.test", RData::CNAME(CNAME(name("API.shop.test."))))
        .add(
            "shop.test",
            RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
        )
        .add("shop.test", RData::MX(MX::new(10, name("mail.shop.test."))))
        .add("big.shop.test", RData::A(A::new(203, 0, 113, 99)))
        .truncate_udp("big.shop.test")
}

fn dns_gate(server: &DnsServer, name: &str, rtype: &str, expect: serde_json::Value) -> Gate {
    gate(json!({
        "dns": name,
        "type": rtype,
        "expect": expect,
        "nameserver": server.addr.to_string(),
        "timeout": "300ms",
        "interval": "100ms",
    }))
}

#[test]
fn dns_expected_answers_pass_in_any_order() {
    let server = DnsServer::start(zone());
    let g = dns_gate(
        &server,
        "api.shop.test",
        "A",
        json!(["203.0.113.11", "203.0.113.10"]),
    );
    assert_eq!(
        g.describe(),
        format!("dns A api.shop.test @{}", server.addr)
    );
    run(&g).unwrap();
    run(&dns_gate(
        &server,
        "WWW.shop.test.",
        "cname",
        json!(["api.shop.test"]),
    ))
    .unwrap();
    run(&dns_gate(
        &server,
        "shop.test",
        "MX",
        json!(["10 mail.shop.test."]),
    ))
    .unwrap();
}

#[test]
fn dns_different_answers_fail_showing_what_was_seen() {
    let server = DnsServer::start(zone());
    let err = run(&dns_gate(
        &server,
        "api.shop.test",
        "A",
        json!(["203.0.113.10"]),
    ))
    .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "expected api.shop.test A to be [203.0.113.10], but {} answered [203.0.113.10, 203.0.113.11]",
            server.addr
        )),
        "{err}"
    );
    let err = run(&dns_gate(
        &server,
        "www.shop.test",
        "A",
        json!(["203.0.113.10"]),
    ))
    .unwrap_err();
    assert!(err.contains("answered no records"), "{err}");
}

#[test]
fn dns_nxdomain_fails() {
    let server = DnsServer::start(zone());
    let err = run(&dns_gate(
        &server,
        "gone.shop.test",
        "A",
        json!(["203.0.113.10"]),
    ))
    .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{} answered NXDOMAIN: gone.shop.test does not exist",
            server.addr
        )),
        "{err}"
    );
}

#[test]
fn dns_txt_compares_the_joined_text_without_quotes() {
    let server = DnsServer::start(zone());
    run(&dns_gate(
        &server,
        "shop.test",
        "TXT",
        json!(["\"v=spf1 -all\""]),
    ))
    .unwrap();
    run(&dns_gate(&server, "shop.test", "TXT", json!("v=spf1 -all"))).unwrap();
    let err = run(&dns_gate(
        &server,
        "shop.test",
        "TXT",
        json!(["v=spf1 ~all"]),
    ))
    .unwrap_err();
    assert!(
        err.starts_with("expected shop.test TXT to be [\"v=spf1 ~all\"], but ")
            && err.contains("answered [\"v=spf1 -all\"]"),
        "{err}"
    );
}

#[test]
fn dns_truncated_udp_answers_are_asked_again_over_tcp() {
    let server = DnsServer::start(zone());
    run(&dns_gate(
        &server,
        "big.shop.test",
        "A",
        json!(["203.0.113.99"]),
    ))
    .unwrap();
}

#[test]
fn dns_without_expect_passes_on_any_answer() {
    let server = DnsServer::start(zone());
    run(&gate(
        json!({ "dns": "api.shop.test", "nameserver": server.addr.to_string() }),
    ))
    .unwrap();
}

#[test]
fn dns_silent_nameserver_times_out() {
    // A UDP socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let g = gate(json!({
        "dns": "api.shop.test", "nameserver": silent.local_addr().unwrap().to_string(), "timeout": "300ms",
    }));
    let start = Instant::now();
    let err = run(&g).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(900));
    assert!(
        err.starts_with("no answer from nameserver 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("timed out"), "{err}");
}

// ---- tcp -----------------------------------------------------------------------------------

#[test]
fn tcp_gate_passes_on_a_listener_and_fails_on_a_closed_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let g = gate(json!({ "tcp": format!("127.0.0.1:{port}"), "timeout": "1s" }));
    assert_eq!(g.describe(), format!("tcp 127.0.0.1:{port}"));
    run(&g).unwrap();
    drop(listener);
    let port = closed_port();
    let err = run(&gate(
        json!({ "tcp": format!("127.0.0.1:{port}"), "timeout": "200ms", "interval": "50ms" }),
    ))
    .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused (nothing listens there) (gave up after 200ms, "
        )),
        "{err}"
    );
}

// ---- from_value ----------------------------------------------------------------------------

#[test]
fn from_value_reports_every_problem_and_accepts_resolved_numbers() {
    let err = Gate::from_value(
        &json!({ "http": "ftp://x", "status": 42, "timeout": "soon" }),
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert!(
        err.contains("`http`: `ftp://x` uses `ftp:`; use http or https"),
        "{err}"
    );
    assert!(
        err.contains("`status` is 42, but an HTTP status is from 100 to 599"),
        "{err}"
    );
    assert!(err.contains("`timeout`: `soon` is not a duration"), "{err}");
    // A reference resolved to a string still counts as a number.
    gate(json!({ "http": "http://127.0.0.1/", "status": "204" }));
    let err = Gate::from_value(&json!({ "dns": "x.test" }), std::path::Path::new(".")).unwrap_err();
    assert!(err.contains("needs a `nameserver`"), "{err}");
    let err =
        Gate::from_value(&json!({ "tcp": "127.0.0.1" }), std::path::Path::new(".")).unwrap_err();
    assert!(err.contains("has no port"), "{err}");
}

#[test]
fn describe_hides_a_password_in_the_url() {
    let g = gate(json!({ "http": "https://ops:s3cret@status.example/health" }));
    assert_eq!(g.describe(), "http https://ops:***@status.example/health");
}

// ---- check_entry ---------------------------------------------------------------------------

/// The `verify:` entries of a tiny spec, loaded through the real spec loader.
fn entries(yaml: &str) -> Vec<crate::spec::Expr> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabrik.yaml");
    std::fs::write(&path, format!("stack: t\nresources: {{}}\nverify:\n{yaml}")).unwrap();
    match Spec::load(&path) {
        Ok(spec) => spec.verify,
        Err(e) => panic!("{e}"),
    }
}

fn problems(yaml: &str) -> Vec<(u32, u32, String, Option<String>)> {
    entries(yaml)
        .iter()
        .flat_map(check_entry)
        .map(|d| (d.loc.line, d.loc.column, d.message, d.help))
        .collect()
}

#[test]
fn check_accepts_well_formed_entries_and_leaves_references_alone() {
    let yaml = r#"  - http: "https://api.shop.example/health"
    status: 200
    body_contains: ok
    headers: { content-type: application/json }
    timeout: 2m
    interval: 500ms
    ca_file: certs/ca.pem
  - tls: api.shop.example:8443
    min_valid_days: 14
  - dns: api.shop.example
    type: aaaa
    expect: ["2001:db8::1"]
    nameserver: 127.0.0.1:5353
  - tcp: "127.0.0.1:8080"
  - http: "${api.url}/health"
    status: "${api.status}"
    timeout: "${env.TIMEOUT}"
  - dns: "${api.host}"
    expect: ["${api.ip}"]
    nameserver: "${env.NS}"
"#;
    assert_eq!(problems(yaml), vec![]);
}

#[test]
fn check_unknown_option_suggests_the_closest() {
    let found = problems("  - http: \"https://x.example/\"\n    stauts: 200\n");
    assert_eq!(
        found,
        vec![(
            5,
            5,
            "unknown option `stauts` in an `http` gate".to_string(),
            Some("did you mean `status`?".to_string())
        )]
    );
    let found = problems("  - http: \"https://x.example/\"\n    min_valid_days: 3\n");
    assert_eq!(
        found[0].2,
        "`min_valid_days` is an option of a `tls` gate, not of an `http` gate"
    );
    assert_eq!((found[0].0, found[0].1), (5, 5));
}

#[test]
fn check_two_kind_keys_and_no_kind_key() {
    let found = problems("  - http: \"https://x.example/\"\n    tls: x.example\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0, found[0].1, found[0].2.as_str()),
        (
            5,
            5,
            "a verify entry checks one thing, but this one has both `http` and `tls`"
        )
    );
    let found = problems("  - status: 200\n    timeout: 5s\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, "this verify entry does not say what to check");
    assert_eq!((found[0].0, found[0].1), (4, 5));
    // A misspelt kind is that typo only, not also an entry that says nothing to check.
    let found = problems("  - htp: \"https://x.example/\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.3.as_deref() == Some("did you mean `http`?")),
        "{found:?}"
    );
}

#[test]
fn check_bad_durations_and_value_kinds_are_located() {
    let yaml = "  - tcp: \"127.0.0.1:80\"\n    timeout: 30\n    interval: fast\n  - http: \"https://x.example/\"\n    status: \"200\"\n    headers: [a]\n  - tls: x.example\n    port: 70000\n";
    let found = problems(yaml);
    let summary: Vec<(u32, u32, &str)> = found.iter().map(|p| (p.0, p.1, p.2.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (
                5,
                14,
                "`timeout` must be a duration with a unit, not a bare number"
            ),
            (
                6,
                15,
                "`interval`: `fast` is not a duration (expected number at 0)"
            ),
            (8, 13, "`status` must be an integer, not a string"),
            (9, 14, "`headers` must be a map, not a list"),
            (
                11,
                11,
                "`port` is 70000, but a port number is from 1 to 65535"
            ),
        ],
        "{found:#?}"
    );
    assert_eq!(found[0].3.as_deref(), Some("write e.g. `30s`"));
    assert_eq!(found[2].3.as_deref(), Some("write 200 without quotes"));
}

#[test]
fn check_dns_type_answers_and_nameserver() {
    let found = problems("  - dns: x.example\n    type: AAA\n    expect: [\"1.2.3.4\"]\n");
    let messages: Vec<&str> = found.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "a `dns` gate needs a `nameserver`",
            "`AAA` is not a DNS record type a gate can check",
        ]
    );
    assert_eq!(found[1].3.as_deref(), Some("did you mean `AAAA`?"));
    let found =
        problems("  - dns: x.example\n    expect: [\"2001:db8::1\"]\n    nameserver: 127.0.0.1\n");
    assert_eq!(
        found[0].2,
        "`expect`: `2001:db8::1` is not an IPv4 address (type A)"
    );
    assert_eq!((found[0].0, found[0].1), (5, 14));
}

#[test]
fn check_entry_that_is_not_a_map() {
    let found = problems("  - \"https://x.example/\"\n");
    assert_eq!(found[0].2, "a verify entry must be a map, not a string");
    assert_eq!((found[0].0, found[0].1), (4, 5));
}
