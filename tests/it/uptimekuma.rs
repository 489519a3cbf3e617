//! The Uptime Kuma provider through the binary, against the stateful fake of its Socket.IO API
//! (providers/testkit/src/uptimekuma.rs): monitors and a notification they link to are
//! created, left alone when nothing changed, updated without losing the links and fields fabrik
//! does not manage, and destroyed; an unmarked namesake stops the plan until adopted or
//! imported; a failed login says why; secrets never show; a failed apply deletes what it
//! created; a run killed during a create converges without a duplicate; drift is seen by a
//! refresh.

use std::time::Duration;

use fabrik_testkit::uptimekuma::{FakeKuma, PASSWORD};
use serde_json::Value;
use serde_json::json;

use crate::harness::{Case, dedent};

/// The webhook's token: a secret inside a notification's settings.
const HOOK_TOKEN: &str = "hook-token-0123456789";
/// A basic-auth password given to a monitor.
const BASIC_PASSWORD: &str = "basic-auth-pass-9876";

/// The provider block and its secrets, then `body` (the `resources:` and anything after).
fn spec(stack: &str, fake: &FakeKuma, body: &str) -> String {
    format!(
        "stack: {stack}\n{}{}",
        dedent(&format!(
            r#"
            providers:
              uptimekuma: {{ url: "{url}", username: admin, password: "${{secret.KUMA_PASSWORD}}" }}
            secrets:
              KUMA_PASSWORD: {{}}
              HOOK_TOKEN: {{}}
              BASIC_PASSWORD: {{}}
            "#,
            url = fake.url()
        )),
        dedent(body)
    )
}

/// A notification, an HTTP monitor linked to it (interval from `INTERVAL`), a push monitor.
const STACK: &str = r#"
    resources:
      hook:
        type: uptimekuma.notification
        with:
          name: ops
          type: webhook
          settings: { webhookURL: "https://hooks.example.com/${secret.HOOK_TOKEN}", webhookContentType: json }
      api:
        type: uptimekuma.monitor
        with:
          name: shop api
          type: http
          url: https://shop.example.com/health
          interval: ${env.INTERVAL:-60s}
          basic_auth: { username: probe, password: "${secret.BASIC_PASSWORD}" }
          notifications: ["${hook.id}"]
          tags: { env: prod }
      beacon:
        type: uptimekuma.monitor
        with: { name: nightly job, type: push }
    "#;

fn case(stack: &str, fake: &FakeKuma, body: &str) -> Case {
    let case = Case::new()
        .spec(&spec(stack, fake, body))
        .env("KUMA_PASSWORD", PASSWORD)
        .env("HOOK_TOKEN", HOOK_TOKEN)
        .env("BASIC_PASSWORD", BASIC_PASSWORD);
    case.redact(fake.url(), "KUMA");
    case
}

fn monitor_named(fake: &FakeKuma, name: &str) -> Value {
    let all: Vec<Value> = fake
        .monitors()
        .into_iter()
        .filter(|m| m["name"] == name)
        .collect();
    assert_eq!(all.len(), 1, "one monitor named {name}: {all:#?}");
    all[0].clone()
}

/// No secret (the password, the webhook token, the basic-auth password, the push token) in
/// what the runs printed or in any file under the state directory.
fn assert_no_secret(case: &Case, fake: &FakeKuma, outputs: &[&crate::harness::Output]) {
    let push_tokens: Vec<String> = fake
        .monitors()
        .iter()
        .filter_map(|m| m["pushToken"].as_str().map(str::to_string))
        .collect();
    let mut secrets = vec![PASSWORD, HOOK_TOKEN, BASIC_PASSWORD];
    secrets.extend(push_tokens.iter().map(String::as_str));
    for secret in secrets {
        for out in outputs {
            assert!(!out.stdout.contains(secret), "{secret} printed:\n{out}");
            assert!(!out.stderr.contains(secret), "{secret} printed:\n{out}");
        }
        for (path, bytes) in case.state_files() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} holds {secret}",
                path.display()
            );
        }
    }
}

#[test]
fn monitors_and_a_notification_are_created_kept_updated_and_destroyed() {
    let fake = FakeKuma::start();
    let case = case("kuma-life", &fake, STACK);
    let created = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, created.with_parallel_lines_sorted(), @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-life`:

      + hook (uptimekuma.notification)
          + name     = "ops"
          + type     = "webhook"
          + settings = (sensitive)
          + default  = false

      + api (uptimekuma.monitor)
          + name                  = "shop api"
          + type                  = "http"
          + url                   = "https://shop.example.com/health"
          + method                = "GET"
          + interval              = "60s"
          + retry_interval        = "60s"
          + max_retries           = 0
          + timeout               = "48s"
          + accepted_status_codes = ["200-299"]
          + upside_down           = false
          + ignore_tls            = false
          + expiry_notification   = false
          + basic_auth            = (sensitive)
          + notifications         = (known after apply)
          + tags                  = {"env":"prod"}
          + paused                = false

      + beacon (uptimekuma.monitor)
          + name           = "nightly job"
          + type           = "push"
          + interval       = "60s"
          + retry_interval = "60s"
          + max_retries    = 0
          + timeout        = "48s"
          + upside_down    = false
          + paused         = false

    Plan: 3 to add, 0 to change, 0 to destroy.

      + api (uptimekuma.monitor): created [TIME]
      + beacon (uptimekuma.monitor): created [TIME]
      + hook (uptimekuma.notification): created [TIME]

    Apply complete: 3 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let api = monitor_named(&fake, "shop api");
    let hook = &fake.notifications()[0];
    assert_eq!(api["description"], "fabrik:kuma-life/api");
    assert_eq!(
        api["notificationIDList"],
        json!({ hook["id"].to_string(): true })
    );
    assert_eq!(api["tags"][0]["value"], "prod");
    assert!(
        hook["config"]
            .as_str()
            .unwrap()
            .contains("fabrik:kuma-life/hook")
    );
    let again = case.run(["plan", "--detailed-exitcode"]);
    fabrik_snapshot!(case, again, @r"
    exit code: 0
    ----- stdout -----
    No changes. Stack `kuma-life` matches the spec.

    ----- stderr -----
    ");
    let updated = case.args(["apply", "--yes"]).env("INTERVAL", "30s").run();
    fabrik_snapshot!(case, updated, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-life`:

      ~ api (uptimekuma.monitor)
          ~ interval = "60s" → "30s"
          ~ timeout  = "48s" → "24s"

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ api (uptimekuma.monitor): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let api = monitor_named(&fake, "shop api");
    assert_eq!(api["interval"], 30);
    assert_eq!(
        api["notificationIDList"],
        json!({ hook["id"].to_string(): true }),
        "the link survives the whole-monitor edit"
    );
    let destroyed = case.run(["destroy", "--yes"]);
    fabrik_snapshot!(case, destroyed.with_parallel_lines_sorted(), @r"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-life`:

      - api (uptimekuma.monitor)

      - beacon (uptimekuma.monitor)

      - hook (uptimekuma.notification)

    Plan: 0 to add, 0 to change, 3 to destroy.

      - api (uptimekuma.monitor): destroyed [TIME]
      - beacon (uptimekuma.monitor): destroyed [TIME]
      - hook (uptimekuma.notification): destroyed [TIME]

    Destroy complete: 3 destroyed in [TIME].

    ----- stderr -----
    ");
    assert!(fake.monitors().is_empty());
    assert!(fake.notifications().is_empty());
    assert_no_secret(&case, &fake, &[&created, &again, &updated, &destroyed]);
    let logins = fake.events().iter().filter(|e| *e == "login").count();
    assert_eq!(logins, 4, "one login per run");
    fake.assert_no_violations();
}

/// A monitor whose spec gives no `notifications` or `tags` keeps the links, tags and fields
/// someone set in the UI across an update: the edit sends back the monitor whole.
#[test]
fn an_update_keeps_links_and_fields_set_in_the_ui() {
    let fake = FakeKuma::start();
    let case = case("kuma-keep", &fake, STACK);
    case.expect(["apply", "--yes"], 0);
    let beacon = monitor_named(&fake, "nightly job");
    let id = beacon["id"].as_i64().unwrap();
    let pager = fake.add_notification(json!({"name": "pager", "type": "pushover"}));
    fake.link(id, pager);
    fake.edit_monitor(id, json!({"resendInterval": 5, "description": "fabrik:kuma-keep/beacon\nowned by the data team"}));
    let spec = spec(
        "kuma-keep",
        &fake,
        &STACK.replace(
            "name: nightly job, type: push",
            "name: nightly job, type: push, max_retries: 2",
        ),
    );
    case.set_spec(&spec);
    let updated = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, updated, @r"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-keep`:

      ~ beacon (uptimekuma.monitor)
          ~ max_retries = 0 → 2

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ beacon (uptimekuma.monitor): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    let beacon = monitor_named(&fake, "nightly job");
    assert_eq!(beacon["maxretries"], 2);
    assert_eq!(
        beacon["notificationIDList"],
        json!({ pager.to_string(): true })
    );
    assert_eq!(beacon["resendInterval"], 5);
    assert_eq!(
        beacon["description"],
        "fabrik:kuma-keep/beacon\nowned by the data team"
    );
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    fake.assert_no_violations();
}

const ONE_MONITOR: &str = r#"
    resources:
      api:
        type: uptimekuma.monitor
        with: { name: shop api, type: keyword, url: "https://shop.example.com/", keyword: Welcome }
    "#;

/// A monitor someone made in the UI with the spec's name is never taken by name: the plan stops
/// at the resource with the two ways to take it over, and `adopt: true` takes it, keeping its id.
#[test]
fn an_unmarked_namesake_stops_the_plan_until_adopted() {
    let fake = FakeKuma::start();
    let theirs = fake.add_monitor(
        json!({"name": "shop api", "type": "http", "url": "https://old.example.com/"}),
    );
    let case = case("kuma-theirs", &fake, ONE_MONITOR);
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `api`: cannot create monitor "shop api": Uptime Kuma already has a monitor of that name (id 1) that is not managed by fabrik (its description carries no `fabrik:kuma-theirs/api` line); fabrik never takes it over by name. To manage it with fabrik, import it (`fabrik import api 1`) or set `adopt: true` on the resource; otherwise rename one of them
      --> fabrik.yaml:9:3
      |
    9 |   api:
      |   ^^^
    "#);
    assert_eq!(
        case.run(["apply", "--yes"]),
        plan,
        "an apply refuses the same way"
    );
    assert_eq!(fake.monitors().len(), 1, "nothing was created");
    assert_eq!(
        monitor_named(&fake, "shop api")["url"],
        "https://old.example.com/"
    );
    case.set_spec(&spec(
        "kuma-theirs",
        &fake,
        &ONE_MONITOR.replace("        with:", "        adopt: true\n        with:"),
    ));
    let adopted = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, adopted, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-theirs`:

      + api (uptimekuma.monitor)
          + name                  = "shop api"
          + type                  = "keyword"
          + url                   = "https://shop.example.com/"
          + method                = "GET"
          + keyword               = "Welcome"
          + invert_keyword        = false
          + interval              = "60s"
          + retry_interval        = "60s"
          + max_retries           = 0
          + timeout               = "48s"
          + accepted_status_codes = ["200-299"]
          + upside_down           = false
          + ignore_tls            = false
          + expiry_notification   = false
          + paused                = false

    Plan: 1 to add, 0 to change, 0 to destroy.

      + api (uptimekuma.monitor): created [TIME]

    Apply complete: 1 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let api = monitor_named(&fake, "shop api");
    assert_eq!(api["id"], theirs);
    assert_eq!(api["description"], "fabrik:kuma-theirs/api");
    assert_eq!(api["type"], "keyword");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    fake.assert_no_violations();
}

/// `fabrik import NAME ID`, as the refusal says: the marker is stamped, nothing else changes,
/// and the next plan shows how the monitor differs from the spec.
#[test]
fn an_unmarked_namesake_is_imported_as_the_error_says() {
    let fake = FakeKuma::start();
    let theirs = fake.add_monitor(json!({"name": "shop api", "type": "keyword", "url": "https://shop.example.com/", "keyword": "Hello"}));
    let case = case("kuma-import", &fake, ONE_MONITOR);
    let imported = case.run(["import", "api", &theirs.to_string()]);
    fabrik_snapshot!(case, imported, @r"
    exit code: 0
    ----- stdout -----
    imported api (1)
    Run `fabrik plan` to see how it differs from the spec.

    ----- stderr -----
    ");
    let api = monitor_named(&fake, "shop api");
    assert_eq!(api["description"], "fabrik:kuma-import/api");
    assert_eq!(api["keyword"], "Hello", "an import changes nothing else");
    let plan = case.run(["plan"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-import`:

      ~ api (uptimekuma.monitor)
          ~ keyword = "Hello" → "Welcome"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(monitor_named(&fake, "shop api")["keyword"], "Welcome");
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.monitors().is_empty());
    fake.assert_no_violations();
}

/// Each way a login fails says why, never with the password.
#[test]
fn failed_logins_say_why_without_the_password() {
    let fake = FakeKuma::start();
    let wrong = case("kuma-login", &fake, ONE_MONITOR).env("KUMA_PASSWORD", "not-the-password-42");
    let refused = wrong.run(["plan"]);
    fabrik_snapshot!(wrong, refused, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: checking what is in the way of `api`: Uptime Kuma at [KUMA] refused the username or password
    ");
    fake.set_two_factor(true);
    let case = case("kuma-login", &fake, ONE_MONITOR);
    let two_factor = case.run(["plan"]);
    fabrik_snapshot!(case, two_factor, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: checking what is in the way of `api`: Uptime Kuma at [KUMA] asks for a two-factor code: the account has 2FA on, and fabrik cannot log in with a password alone. Give the provider a `token` instead (the JWT a login in the browser stored as `token` in local storage)
    ");
    fake.set_two_factor(false);
    fake.exhaust_logins();
    let limited = case.run(["plan"]);
    fabrik_snapshot!(case, limited, @r"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: checking what is in the way of `api`: Uptime Kuma at [KUMA] is refusing logins for now: it allows 20 a minute for the whole server. Try again in a minute, or give the provider a `token`, whose logins are not limited
    ");
    for out in [&refused, &two_factor, &limited] {
        assert!(!out.stderr.contains("not-the-password-42") && !out.stderr.contains(PASSWORD));
    }
    assert!(fake.monitors().is_empty());
    fake.assert_no_violations();
}

/// An apply that fails after creating a monitor deletes it again in its rollback.
#[test]
fn a_failed_apply_deletes_the_monitor_it_created() {
    let fake = FakeKuma::start();
    let case = case(
        "kuma-rollback",
        &fake,
        &format!(
            "{ONE_MONITOR}  doomed:\n        type: local.file\n        with: {{ path: blocker/doomed.txt, content: \"x\" }}\n        depends_on: [api]\n"
        ),
    );
    case.write(
        "blocker",
        "a regular file, so blocker/doomed.txt cannot be written",
    );
    let failed = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, failed, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `kuma-rollback`:

      + api (uptimekuma.monitor)
          + name                  = "shop api"
          + type                  = "keyword"
          + url                   = "https://shop.example.com/"
          + method                = "GET"
          + keyword               = "Welcome"
          + invert_keyword        = false
          + interval              = "60s"
          + retry_interval        = "60s"
          + max_retries           = 0
          + timeout               = "48s"
          + accepted_status_codes = ["200-299"]
          + upside_down           = false
          + ignore_tls            = false
          + expiry_notification   = false
          + paused                = false

      + doomed (local.file)
          + path    = "blocker/doomed.txt"
          + content = "x"

    Plan: 2 to add, 0 to change, 0 to destroy.

      + api (uptimekuma.monitor): created [TIME]
      ✗ doomed (local.file): failed
    Rolling back the changes this run made…
      ↩ api (uptimekuma.monitor): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      doomed: creating [TEMP]/blocker: File exists (os error 17)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(
        fake.monitors().is_empty(),
        "the rollback deleted the monitor"
    );
    let events = fake.events();
    assert!(events.contains(&"add".to_string()) && events.contains(&"deleteMonitor".to_string()));
    fake.assert_no_violations();
}

/// A run killed while Uptime Kuma has made the monitor but not yet answered: the next apply
/// finds it by its marker and takes it over instead of making a second one.
#[test]
fn a_run_killed_during_a_create_converges_without_a_duplicate() {
    let fake = FakeKuma::start();
    fake.delay_ack("add", Duration::from_secs(3));
    let case = case("kuma-crash", &fake, ONE_MONITOR);
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fabrik starts");
    let started = std::time::Instant::now();
    while fake.monitors().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the add never came"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    fake.delay_ack("add", Duration::ZERO);
    let converged = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, converged, @r"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      api: adopted 1 (its create was interrupted)

    fabrik will make these changes to stack `kuma-crash`:

      = api (uptimekuma.monitor)  # found after an interrupted run

    Plan: 1 to adopt, 0 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    ");
    assert_eq!(fake.monitors().len(), 1, "no duplicate");
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.monitors().is_empty());
}

/// A change made in the UI shows in `plan --refresh`, and an apply puts the spec back.
#[test]
fn drift_made_in_the_ui_is_shown_by_a_refresh_and_repaired() {
    let fake = FakeKuma::start();
    let case = case("kuma-drift", &fake, ONE_MONITOR);
    case.expect(["apply", "--yes"], 0);
    let id = monitor_named(&fake, "shop api")["id"].as_i64().unwrap();
    fake.edit_monitor(
        id,
        json!({"keyword": "Maintenance", "interval": 300, "active": false}),
    );
    let plan = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `kuma-drift`:

      ~ api (uptimekuma.monitor)  # changed outside fabrik
          ~ keyword  = "Maintenance" → "Welcome"
          ~ interval = "300s" → "60s"
          ~ paused   = true → false

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes", "--refresh"], 0);
    let api = monitor_named(&fake, "shop api");
    assert_eq!(
        (
            api["keyword"].clone(),
            api["interval"].clone(),
            api["active"].clone()
        ),
        (json!("Welcome"), json!(60), json!(true))
    );
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    fake.assert_no_violations();
}

/// A monitor of every type fabrik manages is created, plans no change (its normal form is what
/// Uptime Kuma gives back), is changed in place and destroyed.
#[test]
fn monitors_of_every_type_round_trip() {
    let fake = FakeKuma::start();
    let every = |interval: &str| {
        format!(
            r#"
            resources:
              web:
                type: uptimekuma.monitor
                with: {{ name: web, type: http, url: "https://shop.example.com/", method: head, accepted_status_codes: ["200-299", 301], headers: {{ X-Probe: fabrik }}, interval: {interval} }}
              word:
                type: uptimekuma.monitor
                with: {{ name: word, type: keyword, url: "https://shop.example.com/", keyword: Welcome, invert_keyword: true, interval: {interval} }}
              json:
                type: uptimekuma.monitor
                with: {{ name: json, type: json-query, url: "https://shop.example.com/api", json_path: "$.status", expected_value: ok, interval: {interval} }}
              db:
                type: uptimekuma.monitor
                with: {{ name: db, type: port, hostname: db.internal, port: 5432, interval: {interval} }}
              dns:
                type: uptimekuma.monitor
                with: {{ name: dns, type: dns, hostname: shop.example.com, dns_resolve_type: aaaa, interval: {interval} }}
              ping:
                type: uptimekuma.monitor
                with: {{ name: ping, type: ping, hostname: 192.0.2.1, paused: true, interval: {interval} }}
              push:
                type: uptimekuma.monitor
                with: {{ name: push, type: push, upside_down: true, interval: {interval} }}
            "#
        )
    };
    let case = case("kuma-types", &fake, &every("60s"));
    case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.monitors().len(), 7);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "every type reads back as written:\n{plan}");
    case.set_spec(&spec("kuma-types", &fake, &every("2m")));
    let changed = case.run(["apply", "--yes"]);
    assert_eq!(changed.code, 0, "{changed}");
    assert!(
        changed
            .stdout
            .contains("Plan: 0 to add, 7 to change, 0 to destroy."),
        "{changed}"
    );
    assert!(fake.monitors().iter().all(|m| m["interval"] == 120));
    let db = monitor_named(&fake, "db");
    assert_eq!(db["port"], 5432, "the port survives the whole-monitor edit");
    assert_eq!(monitor_named(&fake, "ping")["active"], false);
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.monitors().is_empty());
    fake.assert_no_violations();
}

/// An apply that fails after updating a monitor puts the monitor back as it was.
#[test]
fn a_failed_apply_restores_the_monitor_it_updated() {
    let fake = FakeKuma::start();
    let case = case("kuma-restore", &fake, ONE_MONITOR);
    case.expect(["apply", "--yes"], 0);
    let before = monitor_named(&fake, "shop api");
    let changed = ONE_MONITOR.replace("keyword: Welcome", "keyword: Hello, interval: 20s");
    case.set_spec(&spec(
        "kuma-restore",
        &fake,
        &format!(
            "{changed}  doomed:\n        type: local.file\n        with: {{ path: blocker/doomed.txt, content: \"x\" }}\n        depends_on: [api]\n"
        ),
    ));
    case.write(
        "blocker",
        "a regular file, so blocker/doomed.txt cannot be written",
    );
    let failed = case.run(["apply", "--yes"]);
    assert_eq!(failed.code, 3, "{failed}");
    assert!(
        failed
            .stdout
            .contains("api (uptimekuma.monitor): rolled back"),
        "{failed}"
    );
    let after = monitor_named(&fake, "shop api");
    assert_eq!(after["keyword"], "Welcome");
    assert_eq!(after["interval"], 60);
    assert_eq!(after, before, "the monitor as it was, whole");
    fake.assert_no_violations();
}

/// Uptime Kuma's SQL errors quote the whole insert, secrets included: what fabrik prints of a
/// refused create, and what it keeps, holds none of them.
#[test]
fn a_refusal_quoting_the_secrets_sent_prints_and_keeps_none_of_them() {
    let fake = FakeKuma::start();
    let case = case("kuma-echo", &fake, STACK);
    fake.refuse_next_add();
    let failed = case.run(["apply", "--yes"]);
    assert_eq!(failed.code, 3, "{failed}");
    assert!(
        failed.stderr.contains("insert into `monitor`"),
        "the server's own words are shown:\n{failed}"
    );
    assert!(failed.stderr.contains("(sensitive)"), "{failed}");
    assert_no_secret(&case, &fake, &[&failed]);
    fake.assert_no_violations();
}
