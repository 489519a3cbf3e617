//! The Coolify provider through the binary, against the stateful Coolify fake (every request
//! checked against the published contract and the server's quirks): an application is created
//! and deployed, a second apply changes nothing, image and secret env changes redeploy, a bad
//! release whose health gate fails is rolled back to the previous one, destroy waits until the
//! application is gone, faults are retried, and a run killed while it waits for a deployment
//! is followed by an apply that converges.

use std::process::Stdio;
use std::time::Duration;

use fabrik_testkit::coolify::{FakeCoolify, TOKEN};

use crate::harness::{Case, dedent};

/// A value of a secret that must never be printed or stored.
const DB_PASSWORD: &str = "hunter2-correct-horse-battery";
const NEW_DB_PASSWORD: &str = "tr0ub4dor-and-3-more-words";

fn fake() -> FakeCoolify {
    let fake = FakeCoolify::start();
    fake.set_deploy_duration(Duration::from_millis(150));
    fake.set_delete_delay(Duration::from_millis(150));
    fake.add_server("main");
    fake
}

/// The shop stack of `examples/coolify/` on `fake`: one application whose `/health` is gated.
fn spec(stack: &str, fake: &FakeCoolify) -> String {
    let base = fake.health_base();
    format!(
        "stack: {stack}\n{}",
        dedent(&format!(
            r#"
            providers:
              coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
            secrets:
              COOLIFY_TOKEN: {{}}
              DB_PASSWORD: {{}}
            resources:
              api:
                type: coolify.application
                with:
                  project: shop
                  server: main
                  image: "ghcr.io/acme/shop-api:${{env.IMAGE_TAG}}"
                  ports: [8000]
                  domains: ["{base}/api"]
                  env: {{ DATABASE_URL: "postgres://shop:${{secret.DB_PASSWORD}}@db/shop", MODE: production }}
                  deploy_timeout: 30s
                verify:
                  - http: "{base}/api/health"
                    status: 200
                    timeout: 2s
                    interval: 100ms
            "#,
            url = fake.url(),
        ))
    )
}

/// A case of [`spec`] on `fake`, whose snapshots show the fake's addresses as `[COOLIFY]` and
/// `[HEALTH]`.
fn case(stack: &str, fake: &FakeCoolify, tag: &str) -> Case {
    let case = Case::new()
        .spec(&spec(stack, fake))
        .env("COOLIFY_TOKEN", TOKEN)
        .env("IMAGE_TAG", tag)
        .env("DB_PASSWORD", DB_PASSWORD);
    case.redact(fake.url(), "COOLIFY");
    case.redact(fake.health_base(), "HEALTH");
    case
}

/// The one application of the fake.
fn the_app(fake: &FakeCoolify) -> serde_json::Value {
    let apps = fake.applications();
    assert_eq!(apps.len(), 1, "exactly one application: {apps:?}");
    apps[0].clone()
}

fn env_value(fake: &FakeCoolify, uuid: &str, key: &str) -> Vec<String> {
    fake.envs(uuid)
        .iter()
        .filter(|r| r["key"] == key)
        .map(|r| r["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// GET `<health base>/api/health`: the status, 0 when nothing answers.
fn health(fake: &FakeCoolify) -> u16 {
    let url = format!("{}/api/health", fake.health_base());
    match ureq::get(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Neither the token nor a database password appears in what a run printed or in any file
/// under the state directory.
fn assert_no_secret(case: &Case, outputs: &[&crate::harness::Output]) {
    for secret in [TOKEN, DB_PASSWORD, NEW_DB_PASSWORD] {
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
fn an_application_is_deployed_updated_with_secrets_and_destroyed() {
    let fake = fake();
    let case = case("shop-life", &fake, "1.0");
    let created = case.expect(["apply", "--yes"], 0);
    assert!(
        created.stdout.contains("verified http"),
        "the gate ran:\n{created}"
    );
    let app = the_app(&fake);
    let uuid = app["uuid"].as_str().unwrap().to_string();
    assert_eq!(app["description"], "fabrik:shop-life/api");
    assert_eq!(app["docker_registry_image_tag"], "1.0");
    assert_eq!(
        env_value(&fake, &uuid, "DATABASE_URL"),
        vec![format!("postgres://shop:{DB_PASSWORD}@db/shop"); 2]
    );
    assert_eq!(health(&fake), 200);
    let state = case.state("shop-life");
    assert_eq!(state["resources"]["api"]["outputs"]["uuid"], uuid.as_str());
    assert_eq!(
        state["resources"]["api"]["outputs"]["status"],
        "running:healthy"
    );

    // Nothing changed: neither from the state nor from what Coolify reports.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");
    let noop = case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.deployment_statuses(&uuid).len(), 1, "no redeploy");

    // A new image tag redeploys in place.
    let updated = case.args(["apply", "--yes"]).env("IMAGE_TAG", "1.1").run();
    assert_eq!(updated.code, 0, "{updated}");
    assert!(updated.stdout.contains("image"), "{updated}");
    assert_eq!(the_app(&fake)["uuid"], uuid.as_str());
    assert_eq!(the_app(&fake)["docker_registry_image_tag"], "1.1");
    assert_eq!(fake.deployment_statuses(&uuid), ["finished", "finished"]);

    // A new secret value: the plan says it changed without showing it.
    let case = case.env("IMAGE_TAG", "1.1");
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("DB_PASSWORD", NEW_DB_PASSWORD)
        .run();
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("(sensitive value changed)"), "{plan}");
    let rotated = case
        .args(["apply", "--yes"])
        .env("DB_PASSWORD", NEW_DB_PASSWORD)
        .run();
    assert_eq!(rotated.code, 0, "{rotated}");
    assert_eq!(
        env_value(&fake, &uuid, "DATABASE_URL"),
        vec![format!("postgres://shop:{NEW_DB_PASSWORD}@db/shop"); 2]
    );
    assert_no_secret(&case, &[&created, &plan, &noop, &updated, &rotated]);

    // Destroy works from the state alone and waits until Coolify has deleted it.
    case.remove("fabrik.yaml");
    let destroyed = case
        .args(["destroy", "--yes", "--stack", "shop-life"])
        .env("DB_PASSWORD", NEW_DB_PASSWORD)
        .run();
    assert_eq!(destroyed.code, 0, "{destroyed}");
    assert!(fake.applications().is_empty());
    assert_eq!(health(&fake), 404);
    fake.assert_no_violations();
}

#[test]
fn a_bad_release_fails_its_gate_and_the_previous_one_is_deployed_again() {
    let fake = fake();
    let case = case("shop-bad", &fake, "1.0");
    case.expect(["apply", "--yes"], 0);
    let uuid = the_app(&fake)["uuid"].as_str().unwrap().to_string();
    assert_eq!(health(&fake), 200);

    let bad = case
        .args(["apply", "--yes"])
        .env("IMAGE_TAG", "bad-2")
        .run();
    // The gate's failure is reported, and the previous release deployed again.
    case.redact_deadline_cut(
        r#"expected status 200, got 500 Internal Server Error (body: "unhealthy: ghcr.io/acme/shop-api:bad-2")"#,
    );
    fabrik_snapshot!(case, bad, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `shop-bad`:

      ~ api (coolify.application)
          ~ image = "ghcr.io/acme/shop-api:1.0" → "ghcr.io/acme/shop-api:bad-2"
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ api (coolify.application): updated [TIME]
      ✗ api (coolify.application): failed
    Rolling back the changes this run made…
      ↩ api (coolify.application): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      api: gate http [HEALTH]/api/health failed: expected status 200, got 500 Internal Server Error (body: "unhealthy: ghcr.io/acme/shop-api:bad-2") [or timed out at the deadline] (gave up after 2s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    let app = the_app(&fake);
    assert_eq!(app["uuid"], uuid.as_str(), "the same application");
    assert_eq!(app["docker_registry_image_tag"], "1.0", "rolled back");
    // Deployed: 1.0, bad-2, then 1.0 again.
    assert_eq!(
        fake.deployment_statuses(&uuid),
        ["finished", "finished", "finished"]
    );
    assert_eq!(health(&fake), 200, "the previous release answers again");
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the state still says 1.0:\n{plan}");
    assert_no_secret(&case, &[&bad, &plan]);
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

#[test]
fn a_release_whose_deployment_fails_leaves_nothing_behind() {
    let fake = fake();
    let case = case("shop-fail", &fake, "fail-1");
    let out = case.run(["apply", "--yes"]);
    // The deployment log's tail is shown.
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `shop-fail`:

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:fail-1"
          + ports          = [8000]
          + domains        = ["[HEALTH]/api"]
          + env            = (sensitive)
          + deploy_timeout = "30s"
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 1 to add, 0 to change, 0 to destroy.

      ✗ api (coolify.application): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      api: deployment w3x6s5dg47mw7z7alarrye16 of application f2qiafxy69zjg07alarrye16 ended failed; its log ends:
      Deployment queued.
      Pulling ghcr.io/acme/shop-api:fail-1.
      Error response from daemon: manifest for ghcr.io/acme/shop-api:fail-1 not found
      Deployment failed. Removing the new version.
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(fake.applications().is_empty());
    assert!(case.tracked("shop-fail").is_empty());
    fake.assert_no_violations();
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let fake = fake();
    let case = case("shop-faults", &fake, "1.0");
    fake.http().throttle_next(1, 1);
    fake.http().fail_next(2, 500);
    case.expect(["apply", "--yes"], 0);
    assert_eq!(the_app(&fake)["status"], "running:healthy");
    assert_eq!(fake.requests().iter().filter(|l| l.faulted).count(), 3);
    fake.http().fail_next(2, 502);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

#[test]
fn a_run_killed_while_it_waits_for_a_deployment_is_followed_by_one_that_converges() {
    let fake = fake();
    fake.set_deploy_duration(Duration::from_millis(1500));
    let case = case("shop-crash", &fake, "1.0");
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fabrik starts");
    // Kill it once the deployment is queued, while it polls.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.count("POST", "/deploy") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fake.count("POST", "/deploy"), 1, "the deploy was triggered");
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let uuid = the_app(&fake)["uuid"].as_str().unwrap().to_string();

    let out = case.run(["apply", "--yes"]);
    // The application the killed run made is found by its marker and adopted.
    case.redact(&uuid, "UUID");
    fabrik_snapshot!(case, out, @r"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      api: adopted [UUID] (its create was interrupted)

    fabrik will make these changes to stack `shop-crash`:

      ~ api (coolify.application)  # its gates have not passed since its last change
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 0 to add, 1 to change, 0 to destroy.

      ✓ api: verified http [HEALTH]/api/health [TIME]

    Apply complete: 0 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_eq!(
        the_app(&fake)["uuid"],
        uuid.as_str(),
        "one application, not two"
    );
    assert_eq!(health(&fake), 200);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.applications().is_empty());
    fake.assert_no_violations();
}

/// Killed after the application was made but before its deployment was asked for: the next
/// run adopts it, sees it was never deployed (the refresh reports its image as such), and
/// deploys it.
#[test]
fn a_run_killed_before_its_deploy_is_followed_by_one_that_deploys() {
    let fake = fake();
    let case = case("shop-crash-early", &fake, "1.0");
    // Slow answers, so the kill lands between the create and the deploy.
    fake.http().set_delay(Duration::from_millis(150));
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fabrik starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.count("POST", "/applications/dockerimage") == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    fake.http().set_delay(Duration::ZERO);
    assert_eq!(fake.count("POST", "/deploy"), 0, "killed before the deploy");
    let uuid = the_app(&fake)["uuid"].as_str().unwrap().to_string();
    assert!(fake.deployment_statuses(&uuid).is_empty());

    let out = case.run(["apply", "--yes"]);
    // Adopted, and seen as never deployed.
    case.redact(&uuid, "UUID");
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      api: adopted [UUID] (its create was interrupted)

    fabrik will make these changes to stack `shop-crash-early`:

      ~ api (coolify.application)  # changed outside fabrik
          ~ image = "ghcr.io/acme/shop-api:1.0 (never deployed)" → "ghcr.io/acme/shop-api:1.0"
          ~ env  : (sensitive value changed)
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 0 to add, 1 to change, 0 to destroy.

      ~ api (coolify.application): updated [TIME]
      ✓ api: verified http [HEALTH]/api/health [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(
        the_app(&fake)["uuid"],
        uuid.as_str(),
        "one application, not two"
    );
    assert_eq!(fake.deployment_statuses(&uuid), ["finished"]);
    assert_eq!(
        env_value(&fake, &uuid, "MODE"),
        ["production", "production"],
        "the environment was completed"
    );
    assert_eq!(health(&fake), 200);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

/// A first release whose gate fails is undone by deleting the application, and the run waits
/// until Coolify has really removed it (its deletion is asynchronous).
#[test]
fn a_new_application_whose_gate_fails_is_deleted_again() {
    let fake = fake();
    fake.set_delete_delay(Duration::from_millis(400));
    let case = case("shop-bad-first", &fake, "bad-1");
    case.redact_deadline_cut(
        r#"expected status 200, got 500 Internal Server Error (body: "unhealthy: ghcr.io/acme/shop-api:bad-1")"#,
    );
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `shop-bad-first`:

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:bad-1"
          + ports          = [8000]
          + domains        = ["[HEALTH]/api"]
          + env            = (sensitive)
          + deploy_timeout = "30s"
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 1 to add, 0 to change, 0 to destroy.

      + api (coolify.application): created [TIME]
      ✗ api (coolify.application): failed
    Rolling back the changes this run made…
      ↩ api (coolify.application): rolled back [TIME]

    ----- stderr -----
    error: apply failed:
      api: gate http [HEALTH]/api/health failed: expected status 200, got 500 Internal Server Error (body: "unhealthy: ghcr.io/acme/shop-api:bad-1") [or timed out at the deadline] (gave up after 2s, [N] attempts)
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(
        fake.applications().is_empty(),
        "gone by the time the run ends"
    );
    assert!(case.tracked("shop-bad-first").is_empty());
    fake.assert_no_violations();
}

/// A domain another application holds stops the apply with that application named, and is
/// never taken over.
#[test]
fn a_domain_held_elsewhere_is_reported_with_its_holder() {
    let fake = fake();
    fake.add_project("legacy");
    let theirs = fake.insert_application(
        "legacy",
        "production",
        serde_json::json!({
            "name": "old-shop-api",
            "fqdn": format!("{}/api", fake.health_base()),
            "docker_registry_image_name": "ghcr.io/acme/old",
        }),
    );
    let case = case("shop-conflict", &fake, "1.0");
    let out = case.run(["apply", "--yes"]);
    case.redact(&theirs, "THEIR-UUID");
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `shop-conflict`:

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:1.0"
          + ports          = [8000]
          + domains        = ["[HEALTH]/api"]
          + env            = (sensitive)
          + deploy_timeout = "30s"
        gate: http [HEALTH]/api/health expects 200, timeout 2s

    Plan: 1 to add, 0 to change, 0 to destroy.

      ✗ api (coolify.application): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      api: POST [COOLIFY]/api/v1/applications/dockerimage: HTTP 409: Domain conflicts detected. Use force_domain_override=true to proceed. already used by [HEALTH]/api by application old-shop-api ([THEIR-UUID])
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(fake.applications().len(), 1, "only theirs");
    fake.assert_no_violations();
}

/// `adopt: true` takes over the application of the resource's name that was made by hand: its
/// marker is stamped, it is deployed as the spec says, and it is then the stack's like any
/// other (destroy removes it).
#[test]
fn adopt_takes_over_an_application_made_by_hand() {
    let fake = fake();
    fake.add_project("shop");
    let theirs = fake.insert_application(
        "shop",
        "production",
        serde_json::json!({
            "name": "api",
            "fqdn": format!("{}/api", fake.health_base()),
            "docker_registry_image_name": "ghcr.io/acme/shop-api",
            "docker_registry_image_tag": "0.9",
            "ports_exposes": "8000",
        }),
    );
    let case = case("shop-adopt", &fake, "1.0");
    case.set_spec(&spec("shop-adopt", &fake).replace(
        "    type: coolify.application\n",
        "    type: coolify.application\n    adopt: true\n",
    ));
    let out = case.expect(["apply", "--yes"], 0);
    let app = the_app(&fake);
    assert_eq!(
        app["uuid"],
        theirs.as_str(),
        "taken over, not duplicated:\n{out}"
    );
    assert_eq!(app["description"], "fabrik:shop-adopt/api");
    assert_eq!(app["docker_registry_image_tag"], "1.0");
    assert_eq!(health(&fake), 200);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.applications().is_empty());
    fake.assert_no_violations();
}

/// The shape of `examples/coolify/`'s stack end to end: a DNS record on a real PowerDNS, then the
/// application that uses it on Coolify, deployed and waited for, its health endpoint gated, and
/// a stack gate asking the nameserver for the record. A bad release is rolled back to the
/// previous image while the record (`on_failure: keep`) stays; destroy removes both.
#[test]
fn an_application_and_its_dns_record_are_applied_gated_and_rolled_back_together() {
    use crate::powerdns::harness_pdns::{KEY, Pdns};
    let fake = fake();
    let pdns = Pdns::start();
    pdns.raw_zone("shop.test.");
    let base = fake.health_base();
    let spec = format!(
        "stack: shop-e2e\n{}",
        dedent(&format!(
            r#"
            providers:
              coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
              powerdns: {{ url: "{pdns}", api_key: "${{secret.PDNS_API_KEY}}" }}
            secrets:
              COOLIFY_TOKEN: {{}}
              PDNS_API_KEY: {{}}
              DB_PASSWORD: {{}}
            resources:
              api:
                type: coolify.application
                depends_on: [api-dns]
                with:
                  project: shop
                  server: main
                  image: "ghcr.io/acme/shop-api:${{env.IMAGE_TAG}}"
                  ports: [8000]
                  domains: ["{base}/api"]
                  env: {{ DATABASE_URL: "postgres://shop:${{secret.DB_PASSWORD}}@db/shop" }}
                  deploy_timeout: 30s
                verify:
                  - http: "{base}/api/health"
                    status: 200
                    timeout: 2s
                    interval: 100ms
              api-dns:
                type: powerdns.record
                on_failure: keep
                with: {{ zone: shop.test, name: api, type: A, records: ["127.0.0.1"], ttl: 300 }}
            verify:
              - dns: api.shop.test
                type: A
                expect: ["127.0.0.1"]
                nameserver: "127.0.0.1:{dns}"
                timeout: 5s
            "#,
            url = fake.url(),
            pdns = pdns.url(),
            dns = pdns.dns_port,
        ))
    );
    let case = Case::new()
        .spec(&spec)
        .env("COOLIFY_TOKEN", TOKEN)
        .env("PDNS_API_KEY", KEY)
        .env("IMAGE_TAG", "1.0")
        .env("DB_PASSWORD", DB_PASSWORD);
    let applied = case.expect(["apply", "--yes"], 0);
    let dns_line = applied.stdout.find("api-dns").expect("the record's line");
    let app_line = applied.stdout.find("api ").expect("the application's line");
    assert!(dns_line < app_line, "the record comes first:\n{applied}");
    assert!(
        applied.stdout.contains("verified dns A api.shop.test"),
        "{applied}"
    );
    assert_eq!(health(&fake), 200);
    assert_eq!(
        pdns.rrset("shop.test.", "api.shop.test.", "A").unwrap().1,
        ["127.0.0.1"]
    );
    assert_eq!(
        case.run(["plan", "--refresh", "--detailed-exitcode"]).code,
        0
    );

    let bad = case
        .args(["apply", "--yes"])
        .env("IMAGE_TAG", "bad-2")
        .run();
    assert_eq!(bad.code, 3, "{bad}");
    assert_eq!(
        the_app(&fake)["docker_registry_image_tag"],
        "1.0",
        "rolled back"
    );
    assert_eq!(health(&fake), 200, "the previous release answers again");
    assert!(
        pdns.rrset("shop.test.", "api.shop.test.", "A").is_some(),
        "the record stays"
    );
    assert_no_secret(&case, &[&applied, &bad]);

    case.expect(["destroy", "--yes"], 0);
    assert!(fake.applications().is_empty());
    assert!(pdns.rrset("shop.test.", "api.shop.test.", "A").is_none());
    fake.assert_no_violations();
}

/// A project or server renamed or removed in the dashboard is seen by a refresh: the plan
/// stops (exit 1, nothing changed) naming what is gone and where the application is now,
/// since a replacement would lose it (and cannot make a server); naming things as they were
/// again plans nothing, and destroy still deletes it.
#[test]
fn a_project_or_server_changed_in_the_dashboard_stops_the_plan() {
    let fake = fake();
    let case = case("shop-moved", &fake, "1.0");
    case.expect(["apply", "--yes"], 0);
    let uuid = the_app(&fake)["uuid"].as_str().unwrap().to_string();
    case.redact(&uuid, "UUID");

    fake.rename_project("shop", "shop-old");
    let renamed = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, renamed.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `api`: project "shop" no longer exists, and application [UUID] is now in project "shop-old" (environment "production") in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the application is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [UUID])
    "#);
    let apply = case.run(["apply", "--yes"]);
    assert_eq!(apply.code, 1, "{apply}");
    assert_eq!(the_app(&fake)["uuid"], uuid.as_str(), "nothing was changed");
    assert_eq!(fake.projects().len(), 1, "no project was made:\n{apply}");
    fake.rename_project("shop-old", "shop");
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);

    fake.rename_server("main", "main-2");
    let server = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, server.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `api`: server "main" no longer exists, and application [UUID] is now on server "main-2" in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the application is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [UUID])
    "#);
    fake.rename_server("main-2", "main");

    fake.remove_project("shop");
    let removed = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, removed.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `api`: project "shop" no longer exists in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the application is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [UUID])
    "#);
    let trusted = case.run(["plan", "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(trusted.code, 0, "{trusted}");
    // Destroy deletes it all the same: it does not need the place to stand.
    case.expect(["destroy", "--yes"], 0);
    assert!(fake.applications().is_empty());
    fake.assert_no_violations();
}
