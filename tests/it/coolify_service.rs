//! `coolify.service` through the binary, against the stateful Coolify fake: a Docker Compose
//! stack is created (its body checked as strict base64 by the fake), started and waited for,
//! its URLs given as outputs; Coolify's re-dumped compose plans nothing; a changed compose
//! updates it in place and restarts it; a one-click service is made by `type`; destroy deletes
//! both and waits until Coolify has.

use std::process::Stdio;
use std::time::Duration;

use fabrik_testkit::coolify::{FakeCoolify, TOKEN};

use crate::harness::{Case, dedent};

fn fake() -> FakeCoolify {
    let fake = FakeCoolify::start();
    fake.set_delete_delay(Duration::from_millis(100));
    fake.set_service_start(Duration::from_millis(150));
    fake.add_server("main");
    fake
}

fn spec(stack: &str, fake: &FakeCoolify, web_image: &str) -> String {
    format!(
        "stack: {stack}\n{}",
        dedent(&format!(
            r#"
            providers:
              coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
            secrets:
              COOLIFY_TOKEN: {{}}
            resources:
              front:
                type: coolify.service
                with:
                  project: shop
                  server: main
                  start_timeout: 5s
                  compose: |
                    # the shop's front and its cache
                    services:
                      web:
                        image: "{web_image}"
                        environment:
                          - SERVICE_FQDN_WEB_80
                      cache:
                        image: redis:7
              status:
                type: coolify.service
                with: {{ type: uptime-kuma, project: shop, server: main, start_timeout: 5s }}
            "#,
            url = fake.url(),
        ))
    )
}

fn case(stack: &str, fake: &FakeCoolify, web_image: &str) -> Case {
    let case = Case::new()
        .spec(&spec(stack, fake, web_image))
        .env("COOLIFY_TOKEN", TOKEN);
    case.redact(fake.url(), "COOLIFY");
    case
}

fn by_name(fake: &FakeCoolify, name: &str) -> serde_json::Value {
    let all = fake.services();
    let named: Vec<_> = all.iter().filter(|s| s["name"] == name).collect();
    assert_eq!(named.len(), 1, "one service named {name}: {all:?}");
    named[0].clone()
}

#[test]
fn a_compose_stack_and_a_one_click_service_are_created_updated_and_deleted() {
    let fake = fake();
    let case = case("shop-svc", &fake, "nginx:1.27");
    let created = case.expect(["apply", "--yes"], 0);
    let stack = by_name(&fake, "front");
    let uuid = stack["uuid"].as_str().unwrap().to_string();
    case.redact(&uuid, "UUID");
    assert_eq!(stack["description"], "fabrik:shop-svc/front");
    assert_eq!(stack["status"], "running:healthy", "{created}");
    assert!(
        stack["docker_compose_raw"]
            .as_str()
            .unwrap()
            .contains("nginx:1.27")
    );
    let status = by_name(&fake, "status");
    assert_eq!(status["service_type"], "uptime-kuma");
    assert_eq!(status["status"], "running:healthy");
    let state = case.state("shop-svc");
    assert_eq!(
        state["resources"]["front"]["outputs"]["urls"]["web"],
        format!("http://web-{uuid}.203.0.113.10.sslip.io").as_str()
    );
    assert!(state["resources"]["front"]["outputs"]["urls"]["cache"].is_null());

    // Coolify answers the compose re-dumped, without its comment: the same YAML, no change.
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");

    // A new image is an update of the same service, restarted and waited for.
    case.set_spec(&spec("shop-svc", &fake, "nginx:1.28"));
    let updated = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, updated, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc`:

      ~ front (coolify.service)
          ~ compose:
                # the shop's front and its cache
                services:
                  web:
              -     image: "nginx:1.27"
              +     image: "nginx:1.28"
                    environment:
                      - SERVICE_FQDN_WEB_80
                  cache:

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ front (coolify.service): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let stack = by_name(&fake, "front");
    assert_eq!(stack["uuid"], uuid.as_str(), "updated in place");
    assert!(
        stack["docker_compose_raw"]
            .as_str()
            .unwrap()
            .contains("nginx:1.28")
    );
    assert_eq!(stack["status"], "running:healthy");

    case.expect(["destroy", "--yes"], 0);
    assert!(fake.services().is_empty(), "{:?}", fake.services());
    fake.assert_no_violations();
}

/// A service that never runs fails its create with its status and is deleted again; a
/// service made by hand is taken over by `fabrik import` and then managed as the spec says.
#[test]
fn a_service_that_never_runs_is_deleted_again_and_one_made_by_hand_is_imported() {
    let fake = fake();
    let case = case("shop-svc-bad", &fake, "nginx:crash");
    case.set_spec(
        &spec("shop-svc-bad", &fake, "nginx:crash")
            .replace("start_timeout: 5s", "start_timeout: 1s"),
    );
    let failed = case.run(["apply", "--yes"]);
    assert_eq!(failed.code, 3, "{failed}");
    assert!(
        failed
            .stderr
            .contains("is still restarting:unknown 1 s after its start"),
        "{failed}"
    );
    assert!(
        fake.services().iter().all(|s| s["name"] != "front"),
        "the service that never ran is gone: {:?}",
        fake.services()
    );
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.services().is_empty());

    // One made by hand, then imported: it carries the marker and the spec's compose.
    let case = self::case("shop-svc-import", &fake, "nginx:1.27");
    let both = spec("shop-svc-import", &fake, "nginx:1.27");
    case.set_spec(both.split("  status:").next().unwrap());
    let theirs = fake.insert_service(
        "shop",
        "production",
        "main",
        "services:\n  web:\n    image: nginx:1.26\n",
    );
    case.expect(["import", "front", &theirs], 0);
    case.expect(["apply", "--yes"], 0);
    let services = fake.services();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0]["uuid"], theirs.as_str());
    assert_eq!(services[0]["description"], "fabrik:shop-svc-import/front");
    assert!(
        services[0]["docker_compose_raw"]
            .as_str()
            .unwrap()
            .contains("nginx:1.27")
    );
    assert_eq!(services[0]["status"], "running:healthy");
    fake.assert_no_violations();
}

/// A run killed right after Coolify made the service (before its start) is followed by one
/// that takes that service over, starts it, and makes no second one.
#[test]
fn a_run_killed_during_the_create_of_a_service_is_followed_by_one_that_converges() {
    let fake = fake();
    let case = case("shop-svc-kill", &fake, "nginx:1.27");
    let both = spec("shop-svc-kill", &fake, "nginx:1.27");
    case.set_spec(both.split("  status:").next().unwrap());
    fake.http().set_delay(Duration::from_millis(150));
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fabrik starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.count("POST", "/services") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    fake.http().set_delay(Duration::ZERO);
    let services = fake.services();
    assert_eq!(services.len(), 1, "{services:?}");
    let uuid = services[0]["uuid"].as_str().unwrap().to_string();
    assert_eq!(services[0]["status"], "exited", "killed before the start");

    let out = case.run(["apply", "--yes"]);
    case.redact(&uuid, "UUID");
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      front: adopted [UUID] (its create was interrupted)

    fabrik will make these changes to stack `shop-svc-kill`:

      = front (coolify.service)  # found after an interrupted run

    Plan: 1 to adopt, 0 to add, 0 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let services = fake.services();
    assert_eq!(services.len(), 1, "one service, not two: {services:?}");
    assert_eq!(services[0]["uuid"], uuid.as_str());
    assert_eq!(services[0]["status"], "running:healthy");
    fake.assert_no_violations();
}

const API_KEY: &str = "svc-api-key-correct-horse";
const API_KEY_2: &str = "svc-api-key-battery-staple";

/// A compose stack with variables (one a secret) and a URL for its `web` container.
/// `web_image` and `extra_env` (lines added to `env`) vary between steps.
fn env_spec(stack: &str, fake: &FakeCoolify, web_image: &str, extra_env: &str) -> String {
    format!(
        "stack: {stack}\n{}",
        dedent(&format!(
            r#"
            providers:
              coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
            secrets:
              COOLIFY_TOKEN: {{}}
              API_KEY: {{}}
            resources:
              front:
                type: coolify.service
                with:
                  project: shop
                  server: main
                  start_timeout: 2s
                  compose: |
                    services:
                      web:
                        image: "{web_image}"
                        environment:
                          - SHOP_NAME=$${{SHOP_NAME:-shop}}
                  env:
                    API_KEY: "${{secret.API_KEY}}"
                    {extra_env}
                  domains:
                    web: ["https://Shop.example.com"]
            "#,
            url = fake.url(),
        ))
    )
}

fn env_case(stack: &str, fake: &FakeCoolify, web_image: &str, extra_env: &str) -> Case {
    let case = Case::new()
        .spec(&env_spec(stack, fake, web_image, extra_env))
        .env("COOLIFY_TOKEN", TOKEN)
        .env("API_KEY", API_KEY);
    case.redact(fake.url(), "COOLIFY");
    case
}

/// `key` = value of each env row of the service named `name`.
fn rows(fake: &FakeCoolify, name: &str) -> Vec<String> {
    let uuid = by_name(fake, name)["uuid"].as_str().unwrap().to_string();
    fake.service_envs(&uuid)
        .iter()
        .map(|r| {
            format!(
                "{}={}",
                r["key"].as_str().unwrap(),
                r["value"].as_str().unwrap()
            )
        })
        .collect()
}

/// No secret in what was printed or in any file under the state directory.
fn assert_no_secret(case: &Case, outputs: &[&crate::harness::Output]) {
    for secret in [TOKEN, API_KEY, API_KEY_2] {
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

/// `env` overrides a service's variables (a secret among them) and leaves its own alone; only
/// the rows that differ are written; a row changed in the dashboard is drift; a key removed
/// from the spec is deleted even though the state holds the map by its hash only. `domains`
/// gives a container its URLs, reported in `urls`.
#[test]
fn a_service_gets_its_variables_and_urls_and_their_drift_is_seen() {
    let fake = fake();
    let case = env_case("shop-svc-env", &fake, "nginx:1.27", "MODE: prod");
    let created = case.run(["apply", "--yes"]);
    assert_eq!(created.code, 0, "{created}");
    let stack = by_name(&fake, "front");
    let uuid = stack["uuid"].as_str().unwrap().to_string();
    case.redact(&uuid, "UUID");
    assert_eq!(stack["status"], "running:healthy");
    assert_eq!(
        stack["description"],
        "fabrik:shop-svc-env/front\nfabrik-env: API_KEY,MODE"
    );
    assert_eq!(
        rows(&fake, "front"),
        [
            "SHOP_NAME=shop".to_string(),
            format!("API_KEY={API_KEY}"),
            "MODE=prod".to_string()
        ],
        "the compose's own row is left alone"
    );
    let state = case.state("shop-svc-env");
    assert_eq!(
        state["resources"]["front"]["outputs"]["urls"]["web"],
        "https://shop.example.com"
    );
    let noop = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{noop}");

    // A row changed in the dashboard is drift, put back by an apply.
    fake.edit_service_env(&uuid, "MODE", "debug");
    let drift = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, drift, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-env`:

      ~ front (coolify.service)  # changed outside fabrik
          ~ env: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes", "--refresh"], 0);
    assert!(rows(&fake, "front").contains(&"MODE=prod".to_string()));

    // A new secret writes that row only, and restarts the service.
    let patches = fake.count("PATCH", "/envs");
    let posts = fake.count("POST", "/envs");
    let case = case.env("API_KEY", API_KEY_2);
    let rotated = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, rotated, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-env`:

      ~ front (coolify.service)
          ~ env: (sensitive value changed)

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ front (coolify.service): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(fake.count("PATCH", "/envs"), patches + 1, "one row written");
    assert_eq!(fake.count("POST", "/envs"), posts);
    assert!(rows(&fake, "front").contains(&format!("API_KEY={API_KEY_2}")));
    assert_eq!(fake.count("POST", "/restart"), 2, "{:?}", fake.requests());

    // A key gone from the spec is deleted; the compose's own row stays.
    case.set_spec(&env_spec("shop-svc-env", &fake, "nginx:1.27", ""));
    let removed = case.run(["apply", "--yes"]);
    assert_eq!(removed.code, 0, "{removed}");
    assert_eq!(
        rows(&fake, "front"),
        ["SHOP_NAME=shop".to_string(), format!("API_KEY={API_KEY_2}")]
    );
    assert_eq!(
        by_name(&fake, "front")["description"],
        "fabrik:shop-svc-env/front\nfabrik-env: API_KEY"
    );
    assert_no_secret(&case, &[&created, &noop, &drift, &rotated, &removed]);
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

/// An update whose new compose never runs is undone: the service gets its previous compose
/// and variables back and runs again; the state keeps the previous inputs.
#[test]
fn an_update_that_does_not_run_puts_the_previous_compose_and_variables_back() {
    let fake = fake();
    let case = env_case("shop-svc-undo", &fake, "nginx:1.27", "MODE: prod");
    case.expect(["apply", "--yes"], 0);
    let uuid = by_name(&fake, "front")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    case.redact(&uuid, "UUID");

    case.set_spec(&env_spec(
        "shop-svc-undo",
        &fake,
        "nginx:crash",
        "MODE: canary",
    ));
    let failed = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, failed.code_and_stderr(), @r#"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      front: service [UUID] is still restarting:unknown 2 s after its restart (its previous compose, URLs and variables were put back and it runs again)
    every change was rolled back; the stack is as it was before this run
    "#);
    let stack = by_name(&fake, "front");
    assert_eq!(stack["uuid"], uuid.as_str());
    let compose = stack["docker_compose_raw"].as_str().unwrap();
    assert!(compose.contains("nginx:1.27"), "{compose}");
    assert_eq!(stack["status"], "running:healthy");
    assert!(rows(&fake, "front").contains(&"MODE=prod".to_string()));
    case.set_spec(&env_spec(
        "shop-svc-undo",
        &fake,
        "nginx:1.27",
        "MODE: prod",
    ));
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the state still says 1.27:\n{plan}");
    fake.assert_no_violations();
}

/// A service stopped in the dashboard shows on a refreshed plan as a change that starts it;
/// the apply starts it and waits until it runs.
#[test]
fn a_service_stopped_in_the_dashboard_is_started_again() {
    let fake = fake();
    let case = case("shop-svc-stop", &fake, "nginx:1.27");
    let both = spec("shop-svc-stop", &fake, "nginx:1.27");
    case.set_spec(both.split("  status:").next().unwrap());
    case.expect(["apply", "--yes"], 0);
    let uuid = by_name(&fake, "front")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    fake.stop_service(&uuid);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-stop`:

      ~ front (coolify.service)  # changed outside fabrik
          - status = "exited"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let started = case.run(["apply", "--yes", "--refresh"]);
    fabrik_snapshot!(case, started, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-stop`:

      ~ front (coolify.service)  # changed outside fabrik
          - status = "exited"

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ front (coolify.service): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(by_name(&fake, "front")["status"], "running:healthy");
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);
    fake.assert_no_violations();
}

/// Every resource whose project is gone is named by a refreshed plan, one message each,
/// before it stops (exit 1, nothing changed).
#[test]
fn a_refreshed_plan_names_every_resource_whose_project_is_gone() {
    let fake = fake();
    let case = case("shop-svc-moved", &fake, "nginx:1.27");
    case.expect(["apply", "--yes"], 0);
    let front = by_name(&fake, "front")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let status = by_name(&fake, "status")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    case.redact(&front, "FRONT");
    case.redact(&status, "STATUS");
    fake.rename_project("shop", "shop-2024");
    let plan = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, plan.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `front`: project "shop" no longer exists, and service [FRONT] is now in project "shop-2024" (environment "production") in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the service is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [FRONT])
    error: refreshing `status`: project "shop" no longer exists, and service [STATUS] is now in project "shop-2024" (environment "production") in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the service is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [STATUS])
    "#);
    assert_eq!(by_name(&fake, "front")["status"], "running:healthy");
    fake.rename_project("shop-2024", "shop");
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);
    fake.assert_no_violations();
}

/// A new URL for a container updates the service in place and restarts it; a URL changed in
/// the dashboard is drift on a refreshed plan.
#[test]
fn a_containers_urls_follow_the_spec() {
    let fake = fake();
    let case = env_case("shop-svc-urls", &fake, "nginx:1.27", "");
    case.expect(["apply", "--yes"], 0);
    let uuid = by_name(&fake, "front")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = env_spec("shop-svc-urls", &fake, "nginx:1.27", "").replace(
        r#"web: ["https://Shop.example.com"]"#,
        r#"web: ["https://shop.example.com", "https://www.shop.example.com/"]"#,
    );
    case.set_spec(&moved);
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-urls`:

      ~ front (coolify.service)
          ~ domains = {"web":["https://shop.example.com"]} → {"web":["https://shop.example.com","https://www.shop.example.com"]}

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ front (coolify.service): updated [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let urls = |fake: &FakeCoolify| by_name(fake, "front")["applications"][0]["fqdn"].clone();
    assert_eq!(
        urls(&fake),
        "https://shop.example.com,https://www.shop.example.com"
    );
    assert_eq!(by_name(&fake, "front")["uuid"], uuid.as_str());
    assert_eq!(
        fake.count("POST", "/restart"),
        1,
        "restarted for its new URL"
    );
    assert_eq!(
        case.state("shop-svc-urls")["resources"]["front"]["outputs"]["urls"]["web"],
        "https://shop.example.com,https://www.shop.example.com"
    );

    fake.set_service_url(&uuid, "web", "https://old.example.com");
    let drift = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, drift, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop-svc-urls`:

      ~ front (coolify.service)  # changed outside fabrik
          ~ domains = {"web":["https://old.example.com"]} → {"web":["https://shop.example.com","https://www.shop.example.com"]}

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    case.expect(["apply", "--yes", "--refresh"], 0);
    assert_eq!(
        urls(&fake),
        "https://shop.example.com,https://www.shop.example.com"
    );
    fake.assert_no_violations();
}
