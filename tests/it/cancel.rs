//! Ctrl-C is answered at once, even while a provider waits on a remote: the wait ends through
//! the run's cancel signal, the call already sent finishes, and the run rolls back and records
//! what it did.

use std::process::Stdio;
use std::time::{Duration, Instant};

use fabrik_testkit::coolify::{FakeCoolify, TOKEN};

use crate::harness::{Case, dedent};

/// One Coolify application that waits up to ten minutes for its deployment.
fn spec(fake: &FakeCoolify) -> String {
    format!(
        "stack: cancel-deploy\n{}",
        dedent(&format!(
            r#"
            providers:
              coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 2s }}
            secrets:
              COOLIFY_TOKEN: {{}}
            resources:
              api:
                type: coolify.application
                with:
                  project: shop
                  server: main
                  image: "ghcr.io/acme/shop-api:${{env.IMAGE_TAG}}"
                  ports: [8000]
                  deploy_timeout: 10m
            "#,
            url = fake.url(),
        ))
    )
}

/// The statuses of the deployments of the one application of the fake.
fn statuses(fake: &FakeCoolify) -> Vec<String> {
    match fake.applications().first() {
        Some(app) => fake.deployment_statuses(app["uuid"].as_str().unwrap_or_default()),
        None => Vec::new(),
    }
}

#[test]
fn ctrl_c_while_a_deployment_runs_rolls_back_at_once_and_records_it() {
    let fake = FakeCoolify::start();
    fake.set_deploy_duration(Duration::from_millis(150));
    fake.add_server("main");
    let case = Case::new()
        .spec(&spec(&fake))
        .env("COOLIFY_TOKEN", TOKEN)
        .env("IMAGE_TAG", "1.0");
    case.expect(["apply", "--yes"], 0);
    let image = |state: &serde_json::Value| state["resources"]["api"]["inputs"]["image"].clone();
    assert_eq!(
        image(&case.state("cancel-deploy")),
        "ghcr.io/acme/shop-api:1.0"
    );

    // The update's deployment starts and does not end: the provider polls it every 2 s, for
    // up to ten minutes.
    fake.hold_deployments(true);
    let stdout = std::fs::File::create(case.path("apply.stdout")).unwrap();
    let stderr = std::fs::File::create(case.path("apply.stderr")).unwrap();
    let mut child = case
        .args(["apply", "--yes"])
        .env("IMAGE_TAG", "2.0")
        .command()
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("fabrik starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while statuses(&fake).last().map(String::as_str) != Some("in_progress")
        || fake.applications()[0]["docker_registry_image_tag"] != "2.0"
    {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the update's deployment never ran:\n{}\n{}",
                case.read("apply.stdout"),
                case.read("apply.stderr")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Well inside a poll interval: the provider is asleep between two polls.
    std::thread::sleep(Duration::from_millis(300));
    crate::live::signal(child.id(), "INT");
    let signalled = Instant::now();
    let mut rollback_seen = None;
    let status = loop {
        if rollback_seen.is_none() && case.read("apply.stdout").contains("Rolling back") {
            rollback_seen = Some(signalled.elapsed());
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fabrik did not end within 30 s of SIGINT:\n{}\n{}",
                case.read("apply.stdout"),
                case.read("apply.stderr")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let ended = signalled.elapsed();
    let out = format!(
        "{}\n{}",
        case.read("apply.stdout"),
        case.read("apply.stderr")
    );
    let rollback = rollback_seen.unwrap_or(ended);
    assert!(
        rollback < Duration::from_secs(2),
        "the rollback starts within 2 s of the signal, not after the deployment: {rollback:?}\n{out}"
    );
    assert_eq!(status.code(), Some(3), "rolled back in full:\n{out}");
    assert!(out.contains("interrupted by SIGINT"), "{out}");
    assert!(
        out.contains("the previous settings were put back"),
        "the application's settings were put back:\n{out}"
    );

    // The state records the previous image and nothing left pending.
    let state = case.state("cancel-deploy");
    assert_eq!(image(&state), "ghcr.io/acme/shop-api:1.0", "{state:#}");
    assert!(
        state
            .get("pending")
            .is_none_or(|p| p.as_array().is_some_and(Vec::is_empty)),
        "no intent is left unsettled: {state:#}"
    );
    assert!(!case.state_dir().join("cancel-deploy.journal").exists());
    let app = &fake.applications()[0];
    assert_eq!(app["docker_registry_image_tag"], "1.0", "put back: {app:#}");

    // The same change is planned again.
    fake.hold_deployments(false);
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("IMAGE_TAG", "2.0")
        .run();
    assert_eq!(plan.code, 2, "{plan}");
    assert!(
        plan.stdout.contains("~ api (coolify.application)"),
        "{plan}"
    );
    assert!(plan.stdout.contains("shop-api:2.0"), "{plan}");
    fake.assert_no_violations();
}
