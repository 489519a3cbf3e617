//! `coolify.application` against the stateful Coolify fake: every request is checked against
//! the published contract and the server's known quirks, and every test ends by asserting that
//! none broke them.

use std::time::{Duration, Instant};

use fabrik_coolify::{APPLICATION_TYPE, CoolifyClient, Retry, schema};
use fabrik_provider::{Attributes, Cancel, Client, ErrorKind, Target};
use fabrik_testkit::coolify::{FakeCoolify, TOKEN};
use serde_json::{Value, json};

fn attrs(v: Value) -> Attributes {
    v.as_object().expect("an object").clone()
}

fn target(name: &str) -> Target<'_> {
    Target {
        stack: "shop",
        name,
        type_name: APPLICATION_TYPE,
    }
}

/// Short waits, so that retries do not slow the tests down.
fn quick() -> Retry {
    Retry {
        attempts: 4,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        rate_limit_wait: Duration::from_secs(5),
    }
}

fn client(fake: &FakeCoolify) -> CoolifyClient {
    CoolifyClient::new(
        &attrs(json!({"url": fake.url(), "token": TOKEN, "poll_interval": "20ms"})),
        quick(),
    )
    .expect("a client")
}

fn fake() -> FakeCoolify {
    let fake = FakeCoolify::start();
    fake.set_deploy_duration(Duration::from_millis(90));
    fake.set_delete_delay(Duration::from_millis(120));
    fake.add_server("main");
    fake.add_server("edge");
    fake
}

/// The normalised inputs of an application on `main` serving `<health base>/<name>`.
fn inputs(fake: &FakeCoolify, name: &str, tag: &str, env: Value) -> Attributes {
    schema::normalise(&attrs(json!({
        "project": "shop",
        "server": "main",
        "image": format!("ghcr.io/acme/api:{tag}"),
        "ports": [8000],
        "domains": [format!("{}/{name}", fake.health_base())],
        "env": env,
        "health_check": {"path": "/health", "port": 8000},
        "deploy_timeout": "5s",
    })))
    .expect("valid inputs")
}

/// GET `url`: the status code, or 0 when nothing answers.
fn status_of(url: &str) -> u16 {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return 0;
    };
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn health(fake: &FakeCoolify, name: &str) -> u16 {
    status_of(&format!("{}/{name}/health", fake.health_base()))
}

#[test]
fn create_deploys_with_the_marker_and_reads_back_as_its_inputs() {
    let fake = fake();
    let c = client(&fake);
    let wanted = inputs(
        &fake,
        "api",
        "1.0",
        json!({"DATABASE_URL": "postgres://db/shop", "MODE": "a$b"}),
    );
    let applied = c.create(target("api"), &wanted).unwrap();
    let app = fake
        .application(&applied.id)
        .expect("the application exists");
    assert_eq!(app["description"], "fabrik:shop/api");
    assert_eq!(app["name"], "api");
    assert_eq!(app["ports_exposes"], "8000");
    assert_eq!(app["fqdn"], format!("{}/api", fake.health_base()));
    assert_eq!(app["health_check_enabled"], true);
    assert_eq!(app["status"], "running:healthy");
    assert_eq!(applied.outputs["uuid"], applied.id.as_str());
    assert_eq!(applied.outputs["status"], "running:healthy");
    assert_eq!(applied.outputs["fqdn"], app["fqdn"]);
    assert_eq!(fake.deployment_statuses(&applied.id), ["finished"]);
    assert_eq!(
        applied.outputs["deployment"].as_str().map(str::len),
        Some(24)
    );
    assert_eq!(health(&fake, "api"), 200);

    // Each variable and its preview twin, literal, with every flag written.
    let rows = fake.envs(&applied.id);
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row["is_literal"], true, "{row}");
        assert_eq!(row["is_multiline"], false, "{row}");
        assert_eq!(row["is_shown_once"], false, "{row}");
    }
    assert!(
        rows.iter()
            .any(|r| r["key"] == "MODE" && r["value"] == "a$b" && r["is_preview"] == true)
    );

    // Read and find report exactly the normal form: a refresh shows no change.
    let seen = c
        .read(target("api"), &applied.id, &wanted)
        .unwrap()
        .unwrap();
    assert_eq!(seen.inputs, wanted);
    let found = c.find(target("api"), &wanted).unwrap().unwrap();
    assert_eq!(found.id, applied.id);
    assert!(
        c.find(target("web"), &wanted).unwrap().is_none(),
        "found by marker, not by name"
    );

    // A second create (a retry after a lost answer) converges on the same application.
    let again = c.create(target("api"), &wanted).unwrap();
    assert_eq!(again.id, applied.id);
    assert_eq!(fake.applications().len(), 1);
    fake.assert_no_violations();
}

#[test]
fn missing_project_and_environment_are_created_and_a_missing_server_lists_the_servers() {
    let fake = fake();
    let c = client(&fake);
    let mut wanted = inputs(&fake, "api", "1.0", json!({}));
    wanted.insert("environment".into(), json!("staging"));
    c.create(target("api"), &wanted).unwrap();
    wanted.insert("server".into(), json!("nowhere"));
    let err = c.create(target("other"), &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains("no server named \"nowhere\"") && err.message.contains("edge, main"),
        "{}",
        err.message
    );
    fake.assert_no_violations();
}

#[test]
fn an_image_update_redeploys_and_env_changes_touch_both_twins() {
    let fake = fake();
    let c = client(&fake);
    let v1 = inputs(
        &fake,
        "api",
        "1.0",
        json!({"KEEP": "k", "DROP": "d", "SECRET": "old"}),
    );
    let made = c.create(target("api"), &v1).unwrap();
    let v2 = inputs(
        &fake,
        "api",
        "2.0",
        json!({"KEEP": "k", "SECRET": "new", "ADDED": "multi\nline"}),
    );
    let updated = c.update(target("api"), &made.id, &v1, &v2).unwrap();
    assert_eq!(updated.id, made.id);
    let app = fake.application(&made.id).unwrap();
    assert_eq!(app["docker_registry_image_tag"], "2.0");
    assert_eq!(fake.deployment_statuses(&made.id), ["finished", "finished"]);
    assert_ne!(updated.outputs["deployment"], made.outputs["deployment"]);
    let rows = fake.envs(&made.id);
    let mut keys: Vec<(String, bool, String)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["is_preview"].as_bool().unwrap(),
                r["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    keys.sort();
    let want: Vec<(String, bool, String)> = [
        ("ADDED", false, "multi\nline"),
        ("ADDED", true, "multi\nline"),
        ("KEEP", false, "k"),
        ("KEEP", true, "k"),
        ("SECRET", false, "new"),
        ("SECRET", true, "new"),
    ]
    .iter()
    .map(|(k, p, v)| (k.to_string(), *p, v.to_string()))
    .collect();
    assert_eq!(keys, want);
    assert!(
        rows.iter()
            .filter(|r| r["key"] == "ADDED")
            .all(|r| r["is_multiline"] == true)
    );
    // Unchanged rows are not written again.
    let patches = fake.count("PATCH", "/envs");
    c.update(target("api"), &made.id, &v2, &v2).unwrap();
    assert_eq!(fake.count("PATCH", "/envs"), patches);
    let seen = c.read(target("api"), &made.id, &v2).unwrap().unwrap();
    assert_eq!(seen.inputs, v2);
    fake.assert_no_violations();
}

#[test]
fn a_failed_first_deployment_removes_the_application_again() {
    let fake = fake();
    let c = client(&fake);
    let err = c
        .create(
            target("api"),
            &inputs(&fake, "api", "fail-1", json!({"A": "1"})),
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(err.message.contains("ended failed"), "{}", err.message);
    assert!(
        err.message
            .contains("manifest for ghcr.io/acme/api:fail-1 not found"),
        "the log tail is in the error: {}",
        err.message
    );
    assert!(fake.applications().is_empty(), "nothing is left behind");
    fake.assert_no_violations();
}

#[test]
fn a_failed_update_deployment_puts_the_previous_release_back() {
    let fake = fake();
    let c = client(&fake);
    let v1 = inputs(&fake, "api", "1.0", json!({"A": "1"}));
    let made = c.create(target("api"), &v1).unwrap();
    let v2 = inputs(&fake, "api", "fail-2", json!({"A": "2"}));
    let err = c.update(target("api"), &made.id, &v1, &v2).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(
        err.message.contains("previous settings were put back"),
        "{}",
        err.message
    );
    let app = fake.application(&made.id).unwrap();
    assert_eq!(app["docker_registry_image_tag"], "1.0");
    assert_eq!(fake.envs(&made.id)[0]["value"], "1");
    assert_eq!(
        fake.deployment_statuses(&made.id),
        ["finished", "failed", "finished"]
    );
    assert_eq!(health(&fake, "api"), 200);
    fake.assert_no_violations();
}

/// An interrupt while an update's deployment runs ends the wait at once: the previous settings
/// are put back and their deployment queued, and the call says it was not done (interrupted,
/// so the engine does not make it again in this run).
#[test]
fn an_update_interrupted_while_it_deploys_puts_the_previous_settings_back() {
    let fake = fake();
    let cancel = Cancel::new();
    let c = CoolifyClient::with_cancel(
        &attrs(json!({"url": fake.url(), "token": TOKEN, "poll_interval": "2s"})),
        quick(),
        cancel.clone(),
    )
    .expect("a client");
    let v1 = inputs(&fake, "api", "1.0", json!({"A": "1"}));
    let made = c.create(target("api"), &v1).unwrap();
    fake.hold_deployments(true);
    let v2 = inputs(&fake, "api", "2.0", json!({"A": "2"}));
    let interrupter = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = c.update(target("api"), &made.id, &v1, &v2).unwrap_err();
    interrupter.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "not a poll interval more: {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(err.interrupted && err.retried, "{err:?}");
    assert!(
        err.message
            .contains("the previous settings were put back and their deployment queued"),
        "{}",
        err.message
    );
    let app = fake.application(&made.id).unwrap();
    assert_eq!(app["docker_registry_image_tag"], "1.0");
    assert_eq!(fake.envs(&made.id)[0]["value"], "1");
    // The update's deployment goes on; the previous settings' one is queued behind it.
    let statuses = fake.deployment_statuses(&made.id);
    assert_eq!(statuses[..2], ["finished", "in_progress"], "{statuses:?}");
    assert!(
        statuses.len() == 3 && ["queued", "in_progress"].contains(&statuses[2].as_str()),
        "{statuses:?}"
    );
    fake.assert_no_violations();
}

#[test]
fn an_already_queued_deploy_is_followed_through_the_latest_deployment() {
    let fake = fake();
    let c = client(&fake);
    let v1 = inputs(&fake, "api", "1.0", json!({}));
    let made = c.create(target("api"), &v1).unwrap();
    // A push webhook queued a deployment just before: Coolify answers the deploy with a uuid
    // it never stored.
    fake.set_deploy_duration(Duration::from_millis(1500));
    let queued = fake.trigger_deployment(&made.id);
    let v2 = inputs(&fake, "api", "2.0", json!({}));
    let updated = c.update(target("api"), &made.id, &v1, &v2).unwrap();
    assert_eq!(updated.outputs["deployment"], queued.as_str());
    assert_eq!(fake.deployment_statuses(&made.id), ["finished", "finished"]);
    fake.assert_no_violations();
}

#[test]
fn a_deployment_that_outlasts_its_timeout_fails_the_change() {
    let fake = fake();
    fake.set_deploy_duration(Duration::from_millis(300));
    let c = client(&fake);
    let mut wanted = inputs(&fake, "api", "slow-1", json!({}));
    wanted.insert("deploy_timeout".into(), json!("1s"));
    let started = Instant::now();
    let err = c.create(target("api"), &wanted).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(
        err.message.contains("is still in_progress after 1 s"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Pulling ghcr.io/acme/api:slow-1."),
        "{}",
        err.message
    );
    fake.assert_no_violations();
}

#[test]
fn delete_waits_until_the_application_is_gone_and_leaves_others_alone() {
    let fake = fake();
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "1.0", json!({"A": "1"}));
    let made = c.create(target("api"), &wanted).unwrap();
    c.delete(target("api"), &made.id, &wanted).unwrap();
    assert!(
        fake.application(&made.id).is_none(),
        "gone when delete returns"
    );
    assert_eq!(health(&fake, "api"), 404);
    c.delete(target("api"), &made.id, &wanted).unwrap();

    let theirs = fake.insert_application(
        "shop",
        "production",
        json!({"description": "fabrik:other/api", "docker_registry_image_name": "x"}),
    );
    let err = c.delete(target("api"), &theirs, &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("fabrik:other/api"), "{}", err.message);
    let err = c
        .update(target("api"), &theirs, &wanted, &wanted)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(fake.application(&theirs).is_some());
    fake.assert_no_violations();
}

#[test]
fn a_domain_held_by_another_application_is_a_conflict_naming_it() {
    let fake = fake();
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "1.0", json!({}));
    let domain = wanted["domains"][0].as_str().unwrap().to_string();
    fake.add_project("shop");
    let theirs = fake.insert_application(
        "shop",
        "production",
        json!({"name": "legacy-api", "fqdn": domain, "docker_registry_image_name": "x"}),
    );
    let err = c.create(target("api"), &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message
            .contains(&format!("by application legacy-api ({theirs})")),
        "{}",
        err.message
    );
    assert_eq!(fake.applications().len(), 1, "never overridden");
    fake.assert_no_violations();
}

#[test]
fn two_applications_with_one_marker_are_an_error_not_a_guess() {
    let fake = fake();
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "1.0", json!({}));
    c.create(target("api"), &wanted).unwrap();
    fake.insert_application(
        "shop",
        "production",
        json!({"description": "fabrik:shop/api", "docker_registry_image_name": "x"}),
    );
    let err = c.find(target("api"), &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("2 applications"), "{}", err.message);
}

#[test]
fn throttling_is_waited_out_and_5xx_are_retried() {
    let fake = fake();
    let c = client(&fake);
    fake.http().throttle_next(1, 1);
    let started = Instant::now();
    let wanted = inputs(&fake, "api", "1.0", json!({}));
    let made = c.create(target("api"), &wanted).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    fake.http().fail_next(2, 503);
    assert!(c.read(target("api"), &made.id, &wanted).unwrap().is_some());
    let faulted = fake.requests().iter().filter(|l| l.faulted).count();
    assert_eq!(faulted, 3);
    fake.assert_no_violations();
}

#[test]
fn a_create_whose_answer_was_lost_makes_one_application() {
    let fake = fake();
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "1.0", json!({}));
    // The server makes the application, then the answer is lost: the provider looks for it
    // by its marker instead of making a second one.
    fake.lose_next_create_answer(500);
    let applied = c.create(target("api"), &wanted).unwrap();
    assert_eq!(fake.applications().len(), 1);
    assert_eq!(applied.id, fake.applications()[0]["uuid"].as_str().unwrap());
    assert_eq!(fake.count("POST", "/applications/dockerimage"), 1);
    assert_eq!(health(&fake, "api"), 200);
    fake.assert_no_violations();
}

#[test]
fn a_wrong_token_is_unauthorized() {
    let fake = fake();
    fake.set_token("another");
    let err = client(&fake)
        .create(target("api"), &inputs(&fake, "api", "1.0", json!({})))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(err.message.contains("`token`"), "{}", err.message);
}

#[test]
fn a_git_source_is_created_through_the_public_repository_endpoint() {
    let fake = fake();
    let c = client(&fake);
    let wanted = schema::normalise(&attrs(json!({
        "project": "shop",
        "server": "main",
        "git": {"repository": "https://github.com/acme/site", "build_pack": "static"},
        "ports": [80],
        "deploy_timeout": "5s",
    })))
    .unwrap();
    assert_eq!(
        wanted["git"],
        json!({"repository": "https://github.com/acme/site", "branch": "main", "build_pack": "static"})
    );
    let made = c.create(target("site"), &wanted).unwrap();
    assert_eq!(fake.count("POST", "/applications/public"), 1);
    let app = fake.application(&made.id).unwrap();
    assert_eq!(app["git_repository"], "https://github.com/acme/site");
    assert_eq!(app["build_pack"], "static");
    assert!(app["fqdn"].is_null(), "no generated domain: {app}");
    let seen = c.read(target("site"), &made.id, &wanted).unwrap().unwrap();
    assert_eq!(seen.inputs, wanted);
    let mut moved = wanted.clone();
    moved["git"]["branch"] = json!("release");
    c.update(target("site"), &made.id, &wanted, &moved).unwrap();
    assert_eq!(fake.application(&made.id).unwrap()["git_branch"], "release");

    // Switching source kinds is not something Coolify does in place.
    let image = inputs(&fake, "site", "1.0", json!({}));
    let err = c
        .update(target("site"), &made.id, &moved, &image)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    fake.assert_no_violations();
}

#[test]
fn applications_of_one_new_project_created_in_parallel_share_it() {
    let fake = fake();
    let c = client(&fake);
    let names = ["a", "b", "c", "d"];
    let wanted: Vec<Attributes> = names
        .iter()
        .map(|n| inputs(&fake, n, "1.0", json!({})))
        .collect();
    std::thread::scope(|s| {
        for (name, inputs) in names.iter().zip(&wanted) {
            let c = &c;
            s.spawn(move || c.create(target(name), inputs).unwrap());
        }
    });
    assert_eq!(fake.applications().len(), 4);
    assert_eq!(fake.count("POST", "/projects"), 1, "one project made");
    fake.assert_no_violations();
}

#[test]
fn a_compose_application_never_sends_domains() {
    let fake = fake();
    let c = client(&fake);
    let wanted = schema::normalise(&attrs(json!({
        "project": "shop",
        "server": "main",
        "git": {"repository": "https://github.com/acme/stack", "build_pack": "dockercompose"},
        "ports": [3000],
        "deploy_timeout": "5s",
    })))
    .unwrap();
    let made = c.create(target("stack"), &wanted).unwrap();
    let seen = c.read(target("stack"), &made.id, &wanted).unwrap().unwrap();
    assert_eq!(seen.inputs, wanted);
    c.update(target("stack"), &made.id, &wanted, &wanted)
        .unwrap();
    fake.assert_no_violations();
}

#[test]
fn a_server_with_several_destinations_needs_one_named() {
    let fake = fake();
    let private = fake.add_destination("main", "private");
    let c = client(&fake);
    let mut wanted = inputs(&fake, "api", "1.0", json!({}));
    let err = c.create(target("api"), &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains(
            "set `destination` to one of the destinations of server main: coolify, private"
        ),
        "{}",
        err.message
    );
    wanted.insert("destination".into(), json!("nowhere"));
    let err = c.create(target("api"), &wanted).unwrap_err();
    assert!(
        err.message.contains("no destination named \"nowhere\""),
        "{}",
        err.message
    );
    wanted.insert("destination".into(), json!("private"));
    let made = c.create(target("api"), &wanted).unwrap();
    assert_eq!(fake.destination_of(&made.id), Some(private));
    let seen = c.read(target("api"), &made.id, &wanted).unwrap().unwrap();
    assert_eq!(seen.inputs, wanted);
    fake.assert_no_violations();
}

#[test]
fn adopt_takes_over_the_one_unmarked_application_of_its_name() {
    let fake = fake();
    fake.add_project("shop");
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "2.0", json!({"A": "1"}));
    let theirs = fake.insert_application(
        "shop",
        "production",
        json!({"name": "api", "description": "the old API", "docker_registry_image_name": "ghcr.io/acme/api", "docker_registry_image_tag": "1.0"}),
    );
    let adopted = c.adopt(target("api"), &wanted).unwrap();
    assert_eq!(adopted.id, theirs);
    let app = fake.application(&theirs).unwrap();
    assert_eq!(app["description"], "fabrik:shop/api\nthe old API");
    assert_eq!(app["docker_registry_image_tag"], "2.0");
    assert_eq!(app["status"], "running:healthy");
    assert_eq!(c.find(target("api"), &wanted).unwrap().unwrap().id, theirs);
    // Again: it is ours now, so adopt converges on it.
    assert_eq!(c.adopt(target("api"), &wanted).unwrap().id, theirs);
    assert_eq!(fake.applications().len(), 1);

    // Another resource's application is never adopted; two of one name are not guessed at.
    let err = c.adopt(target("web"), &{
        let mut w = wanted.clone();
        w.insert("name".into(), json!("api"));
        w
    });
    let err = err.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("managed by fabrik:shop/api"),
        "{}",
        err.message
    );
    for _ in 0..2 {
        fake.insert_application(
            "shop",
            "production",
            json!({"name": "twin", "docker_registry_image_name": "x"}),
        );
    }
    let err = c
        .adopt(target("twin"), &inputs(&fake, "twin", "1.0", json!({})))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("2 applications are named \"twin\""),
        "{}",
        err.message
    );
    fake.assert_no_violations();
}

#[test]
fn a_git_application_never_deployed_reads_as_such() {
    let fake = fake();
    fake.add_project("shop");
    let c = client(&fake);
    let wanted = schema::normalise(&attrs(json!({
        "project": "shop", "server": "main", "ports": [80],
        "git": {"repository": "https://github.com/acme/site", "build_pack": "static"},
    })))
    .unwrap();
    let uuid = fake.insert_application(
        "shop",
        "production",
        json!({"description": "fabrik:shop/site", "build_pack": "static",
               "git_repository": "https://github.com/acme/site", "git_branch": "main",
               "ports_exposes": "80"}),
    );
    let found = c.find(target("site"), &wanted).unwrap().unwrap();
    assert_eq!(found.id, uuid);
    assert_eq!(
        found.observed.inputs["git"]["branch"],
        "main (never deployed)"
    );
    fake.assert_no_violations();
}

#[test]
fn import_stamps_the_marker_and_changes_nothing_else() {
    let fake = fake();
    fake.add_project("shop");
    let c = client(&fake);
    let wanted = inputs(&fake, "api", "2.0", json!({}));
    let theirs = fake.insert_application(
        "shop",
        "production",
        json!({"name": "hand-made", "description": "by hand", "docker_registry_image_name": "ghcr.io/acme/api",
               "docker_registry_image_tag": "1.0", "ports_exposes": "8000"}),
    );
    let found = c.import(target("api"), &theirs, &wanted).unwrap();
    assert_eq!(found.id, theirs);
    assert_eq!(
        found.observed.inputs["image"], "ghcr.io/acme/api:1.0 (never deployed)",
        "what is there, for the next plan to compare"
    );
    let app = fake.application(&theirs).unwrap();
    assert_eq!(app["description"], "fabrik:shop/api\nby hand");
    assert_eq!(
        app["docker_registry_image_tag"], "1.0",
        "nothing else changed"
    );
    assert_eq!(fake.deployment_statuses(&theirs).len(), 0);
    // Importing it again is harmless; another resource cannot take it.
    c.import(target("api"), &theirs, &wanted).unwrap();
    assert_eq!(
        fake.application(&theirs).unwrap()["description"],
        "fabrik:shop/api\nby hand"
    );
    let err = c.import(target("web"), &theirs, &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    let err = c.import(target("api"), "nosuchapp", &wanted).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    fake.assert_no_violations();
}

#[test]
fn a_live_deployment_answering_404_is_asked_again() {
    let fake = fake();
    let c = client(&fake);
    fake.hide_next_deployment_reads(4);
    let made = c
        .create(target("api"), &inputs(&fake, "api", "1.0", json!({})))
        .unwrap();
    assert_eq!(fake.deployment_statuses(&made.id), ["finished"]);
    assert_eq!(health(&fake, "api"), 200);
    fake.assert_no_violations();
}

#[test]
fn a_spent_request_budget_is_waited_out() {
    let fake = fake();
    fake.set_rate_limit(6, Duration::from_secs(1));
    let c = client(&fake);
    let started = Instant::now();
    c.create(
        target("api"),
        &inputs(&fake, "api", "1.0", json!({"A": "1"})),
    )
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(fake.requests().iter().any(|l| l.status == 429));
    fake.assert_no_violations();
}
