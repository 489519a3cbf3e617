//! `${env.NAME:-default}`: the default stands for a variable that is unset or empty (as `:-`
//! does in a shell), in resource fields, gates and provider configuration; a saved plan binds
//! the value used, and the state keeps a sensitive provider field as written, default and all.

use crate::harness::Case;

const SPEC: &str = r#"
    stack: shop
    resources:
      web:
        type: local.file
        with: { path: web.conf, content: "port ${env.PORT:-8080}, name ${env.NAME:-}.\n" }
"#;

#[test]
fn env_default_stands_for_an_unset_variable() {
    let case = Case::new().spec(SPEC);
    let out = case.run(["plan"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + web (local.file)
          + path    = "web.conf"
          + content = <<EOT
              port 8080, name .
            EOT

    Plan: 1 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "port 8080, name .\n");
}

#[test]
fn env_default_stands_for_an_empty_variable_too() {
    let case = Case::new().spec(SPEC).env("PORT", "").env("NAME", "");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "port 8080, name .\n");
}

#[test]
fn a_set_variable_wins_over_its_default() {
    let case = Case::new()
        .spec(SPEC)
        .env("PORT", "9090")
        .env("NAME", "web");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(case.read("web.conf"), "port 9090, name web.\n");
    // The value used is what is compared: emptied, the default is a change.
    let out = case.args(["plan"]).env("PORT", "").run();
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      ~ web (local.file)
          ~ content:
              - port 9090, name web.
              + port 8080, name web.

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
}

#[test]
fn a_plain_env_reference_stays_refused_when_unset() {
    let case = Case::new().spec(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: { path: web.conf, content: "${env.PORT:-8080} ${env.HOST}" }
        "#,
    );
    fabrik_snapshot!(case, case.run(["plan"]), @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: environment variable `HOST` is not set
      --> fabrik.yaml:5:57
      |
    5 |     with: { path: web.conf, content: "${env.PORT:-8080} ${env.HOST}" }
      |                                                         ^^^^^^^^^^^
      = help: set it, for example `HOST=… fabrik plan`
    "#);
}

#[test]
fn saved_plan_is_stale_once_a_defaulted_variable_is_set_or_unset() {
    let case = Case::new().spec(SPEC);
    case.expect(["plan", "--out", "./p.json"], 0);
    let out = case.args(["apply", "p.json"]).env("PORT", "9090").run();
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the spec (or an environment variable it uses) changed since the plan was made
    run `fabrik plan --out PLAN` again and review the new plan
    ");
    assert!(!case.exists("web.conf"));
    // Set to its default, the value used is the same: the plan still applies.
    let out = case.args(["apply", "p.json"]).env("PORT", "8080").run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(case.read("web.conf"), "port 8080, name .\n");

    let case = Case::new().spec(SPEC).env("PORT", "9090");
    case.expect(["plan", "--out", "./p.json"], 0);
    let out = case.args(["apply", "p.json"]).env("PORT", "").run();
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("the saved plan is stale"), "{out}");
}

#[test]
fn env_default_in_a_gate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let case = Case::new().spec(&format!(
        r#"
        stack: shop
        resources:
          web:
            type: local.file
            with: {{ path: web.conf, content: "hi\n" }}
            verify:
              - tcp: "${{env.GATE_HOST:-127.0.0.1}}:{port}"
        "#
    ));
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains(&format!("verified tcp 127.0.0.1:{port}")),
        "{out}"
    );
}

/// A provider's sensitive field is kept in the state as written, default and all, so that
/// `destroy` without the spec resolves it again the same way.
#[test]
fn env_default_in_a_provider_configuration_round_trips_through_the_state() {
    use crate::powerdns::harness_pdns::{KEY, Pdns};
    let pdns = Pdns::start();
    let case = Case::new().spec(&format!(
        r#"
        stack: dns-defaults
        providers:
          powerdns: {{ url: "${{env.PDNS_URL:-{url}}}", api_key: "${{env.PDNS_API_KEY:-{KEY}}}" }}
        resources:
          zone:
            type: powerdns.zone
            with: {{ name: example.test, nameservers: [ns1.example.test.] }}
        "#,
        url = pdns.url(),
    ));
    case.expect(["apply", "--yes"], 0);
    let kept = &case.state("dns-defaults")["providers"]["powerdns"];
    assert_eq!(kept["api_key"], format!("${{env.PDNS_API_KEY:-{KEY}}}"));
    assert_eq!(kept["url"], pdns.url());
    case.remove("fabrik.yaml");
    case.expect(["destroy", "--yes", "--stack", "dns-defaults"], 0);
    assert!(case.tracked("dns-defaults").is_empty());
}

/// The backend's `url` takes a default too (the password stays in a secret).
#[test]
fn env_default_in_the_backend_url() {
    let server = crate::postgres::Server::start();
    let url = server.url();
    let (head, tail) = url.split_once('@').unwrap();
    let password = head.rsplit(':').next().unwrap();
    let case = Case::new()
        .spec(&format!(
            r#"
            stack: shop
            backend:
              postgres:
                url: "postgres://fabrik:${{secret.PG_PASSWORD}}@${{env.PG_HOST_PORT:-{tail}}}"
            secrets:
              PG_PASSWORD: {{}}
            resources:
              web:
                type: local.file
                with: {{ path: web.txt, content: "hello\n" }}
            "#
        ))
        .env("PG_PASSWORD", password);
    case.expect(["apply", "--yes"], 0);
    assert!(
        !case.state_file("shop").exists(),
        "the state is in PostgreSQL"
    );
    case.expect(["plan", "--detailed-exitcode"], 0);
}
