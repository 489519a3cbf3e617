//! `coolify.database` through the binary, against the stateful Coolify fake: a PostgreSQL
//! database with daily backups is created, started and waited for; an application receives
//! its `internal_url`, which never appears in output, state or journal; an image change
//! restarts it; a database that crash-loops fails with its status and log and is deleted
//! again; a run killed during the create is followed by one that converges on the same
//! database; and a delete keeps the volumes unless the resource says `delete_volumes: true`.

use std::process::Stdio;
use std::time::Duration;

use fabrik_testkit::coolify::{FakeCoolify, TOKEN};

use crate::harness::{Case, dedent};

const DB_PASSWORD: &str = "pg-hunter2-correct-horse";

fn fake() -> FakeCoolify {
    let fake = FakeCoolify::start();
    fake.set_deploy_duration(Duration::from_millis(100));
    fake.set_delete_delay(Duration::from_millis(100));
    fake.set_database_start(Duration::from_millis(150));
    fake.add_server("main");
    fake
}

/// The database of `examples/coolify/` and an application using its URL. `extra` is added to
/// the database's `with:` (indented for it).
fn spec(stack: &str, fake: &FakeCoolify, extra: &str) -> String {
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
              db:
                type: coolify.database
                with:
                  engine: postgresql
                  project: shop
                  server: main
                  image: "postgres:${{env.PG_TAG}}"
                  user: shop
                  password: "${{secret.DB_PASSWORD}}"
                  database: shop
                  backups: {{ frequency: daily, retention: {{ count: 7, days: 14 }} }}
                  start_timeout: 5s
                  {extra}
              api:
                type: coolify.application
                with:
                  project: shop
                  server: main
                  image: "ghcr.io/acme/shop-api:1.0"
                  ports: [8000]
                  env: {{ DATABASE_URL: "${{db.internal_url}}" }}
                  deploy_timeout: 30s
            "#,
            url = fake.url(),
        ))
    )
}

fn case(stack: &str, fake: &FakeCoolify, tag: &str, extra: &str) -> Case {
    let case = Case::new()
        .spec(&spec(stack, fake, extra))
        .env("COOLIFY_TOKEN", TOKEN)
        .env("PG_TAG", tag)
        .env("DB_PASSWORD", DB_PASSWORD);
    case.redact(fake.url(), "COOLIFY");
    case
}

fn the_db(fake: &FakeCoolify) -> serde_json::Value {
    let dbs = fake.databases();
    assert_eq!(dbs.len(), 1, "exactly one database: {dbs:?}");
    dbs[0].clone()
}

fn app_env(fake: &FakeCoolify, key: &str) -> Vec<String> {
    let apps = fake.applications();
    let uuid = apps[0]["uuid"].as_str().unwrap();
    fake.envs(uuid)
        .iter()
        .filter(|r| r["key"] == key)
        .map(|r| r["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Neither the password nor the URL holding it appears in what was printed or in any file
/// under the state directory (state, journal, locks).
fn assert_no_secret(case: &Case, url: &str, outputs: &[&crate::harness::Output]) {
    for secret in [TOKEN, DB_PASSWORD, url] {
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
fn a_database_with_backups_is_created_used_restarted_and_deleted_keeping_its_volumes() {
    let fake = fake();
    let case = case("shop-db", &fake, "16", "");
    let created = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, created, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-db`:

      + db (coolify.database)
          + engine        = "postgresql"
          + project       = "shop"
          + environment   = "production"
          + server        = "main"
          + image         = "postgres:16"
          + user          = "shop"
          + password      = (sensitive)
          + database      = "shop"
          + backups       = {"frequency":"daily","retention":{"count":7,"days":14}}
          + start_timeout = "5s"

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:1.0"
          + ports          = [8000]
          + domains        = []
          + env            = (known after apply)
          + deploy_timeout = "30s"

    Plan: 2 to add, 0 to change, 0 to destroy.

      + db (coolify.database): created [TIME]
      + api (coolify.application): created [TIME]

    Apply complete: 2 added, 0 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    let db = the_db(&fake);
    let uuid = db["uuid"].as_str().unwrap().to_string();
    let url = db["internal_db_url"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        format!("postgres://shop:{DB_PASSWORD}@{uuid}:5432/shop")
    );
    assert_eq!(db["description"], "fabrik:shop-db/db");
    assert_eq!(db["status"], "running:healthy");
    assert_eq!(db["image"], "postgres:16");
    let backups = fake.backups(&uuid);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["frequency"], "daily");
    assert_eq!(backups[0]["save_s3"], false, "save_s3 is always sent");
    assert_eq!(backups[0]["database_backup_retention_amount_locally"], 7);
    assert_eq!(backups[0]["database_backup_retention_days_locally"], 14);
    // The application got the URL, twice (its preview twin).
    assert_eq!(app_env(&fake, "DATABASE_URL"), vec![url.clone(); 2]);
    let state = case.state("shop-db");
    assert_eq!(state["resources"]["db"]["outputs"]["uuid"], uuid.as_str());
    assert_eq!(
        state["resources"]["db"]["outputs"]["status"],
        "running:healthy"
    );

    // Nothing changed, from the state or from what Coolify reports.
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");
    let noop = case.expect(["apply", "--yes"], 0);
    assert_eq!(fake.count("POST", "/start"), 1, "started once");

    // A new image restarts it in place; the application is left alone.
    let updated = case.args(["apply", "--yes"]).env("PG_TAG", "17").run();
    fabrik_snapshot!(case, updated, @r#"
    exit code: 0
    ----- stdout -----
    fabrik will make these changes to stack `shop-db`:

      ~ db (coolify.database)
          ~ image = "postgres:16" → "postgres:17"

      ~ api (coolify.application)
          ~ env: (sensitive value changed)

    Plan: 0 to add, 2 to change, 0 to destroy.

      ~ db (coolify.database): updated [TIME]
        api (coolify.application): unchanged [TIME]

    Apply complete: 0 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(the_db(&fake)["uuid"], uuid.as_str());
    assert_eq!(the_db(&fake)["image"], "postgres:17");
    assert_eq!(the_db(&fake)["status"], "running:healthy");
    assert_eq!(fake.count("POST", "/restart"), 1);
    assert_no_secret(&case, &url, &[&created, &plan, &refreshed, &noop, &updated]);

    // Destroyed: gone from Coolify, its volumes kept on the server.
    let destroyed = case.args(["destroy", "--yes"]).env("PG_TAG", "17").run();
    assert_eq!(destroyed.code, 0, "{destroyed}");
    assert!(fake.databases().is_empty());
    assert_eq!(fake.deleted_databases(), vec![(uuid, false)]);
    fake.assert_no_violations();
}

#[test]
fn delete_volumes_lets_a_delete_take_the_data() {
    let fake = fake();
    let case = case("shop-db-volumes", &fake, "16", "delete_volumes: true");
    case.expect(["apply", "--yes"], 0);
    let uuid = the_db(&fake)["uuid"].as_str().unwrap().to_string();
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(fake.deleted_databases(), vec![(uuid, true)]);
    fake.assert_no_violations();
}

#[test]
fn a_crash_looping_database_fails_with_its_status_and_log_and_is_deleted_again() {
    let fake = fake();
    let case = case("shop-db-crash", &fake, "crash-1", "");
    let out = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `shop-db-crash`:

      + db (coolify.database)
          + engine        = "postgresql"
          + project       = "shop"
          + environment   = "production"
          + server        = "main"
          + image         = "postgres:crash-1"
          + user          = "shop"
          + password      = (sensitive)
          + database      = "shop"
          + backups       = {"frequency":"daily","retention":{"count":7,"days":14}}
          + start_timeout = "5s"

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:1.0"
          + ports          = [8000]
          + domains        = []
          + env            = (known after apply)
          + deploy_timeout = "30s"

    Plan: 2 to add, 0 to change, 0 to destroy.

      ✗ db (coolify.database): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      db: database f2qiafxy69zjg07alarrye16 did not become healthy: it crash-loops: restarting:unknown after 3 restarts; its log ends with:
      FATAL:  could not open configuration file: Permission denied
      LOG:  database system is shut down
      FATAL:  could not open configuration file: Permission denied
      LOG:  database system is shut down
      FATAL:  could not open configuration file: Permission denied
      LOG:  database system is shut down
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(fake.databases().is_empty(), "rolled back");
    assert!(
        fake.applications().is_empty(),
        "the application never started"
    );
    assert_eq!(fake.deleted_databases().len(), 1);
    assert!(
        fake.deleted_databases()[0].1,
        "made by this run: its volumes go too"
    );
    assert!(case.tracked("shop-db-crash").is_empty());
    fake.assert_no_violations();
}

#[test]
fn a_run_killed_during_the_create_of_a_database_is_followed_by_one_that_converges() {
    let fake = fake();
    let case = case("shop-db-kill", &fake, "16", "");
    fake.http().set_delay(Duration::from_millis(150));
    let mut child = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fabrik starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.count("POST", "/databases/postgresql") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    fake.http().set_delay(Duration::ZERO);
    let uuid = the_db(&fake)["uuid"].as_str().unwrap().to_string();
    assert_eq!(fake.count("POST", "/start"), 0, "killed before the start");

    let out = case.run(["apply", "--yes"]);
    case.redact(&uuid, "UUID");
    fabrik_snapshot!(case, out, @r#"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      db: adopted [UUID] (its create was interrupted)

    fabrik will make these changes to stack `shop-db-kill`:

      ~ db (coolify.database)
          ~ image = "postgres:16 (exited)" → "postgres:16"

      + api (coolify.application)
          + project        = "shop"
          + environment    = "production"
          + server         = "main"
          + image          = "ghcr.io/acme/shop-api:1.0"
          + ports          = [8000]
          + domains        = []
          + env            = (known after apply)
          + deploy_timeout = "30s"

    Plan: 1 to add, 1 to change, 0 to destroy.

      ~ db (coolify.database): updated [TIME]
      + api (coolify.application): created [TIME]

    Apply complete: 1 added, 1 changed, 0 destroyed in [TIME].

    ----- stderr -----
    "#);
    assert_eq!(
        the_db(&fake)["uuid"],
        uuid.as_str(),
        "one database, not two"
    );
    assert_eq!(the_db(&fake)["status"], "running:healthy");
    assert_eq!(fake.backups(&uuid).len(), 1);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

/// A Redis database: its password is changed through its `REDIS_PASSWORD` row (Coolify ignores
/// `redis_password` on update) and restarts it; it is published on its `public_port`.
#[test]
fn a_redis_password_is_rotated_through_its_env_row_and_restarts_it() {
    let fake = fake();
    let spec = |stack: &str| {
        format!(
            "stack: {stack}\n{}",
            dedent(&format!(
                r#"
                providers:
                  coolify: {{ url: "{url}", token: "${{secret.COOLIFY_TOKEN}}", poll_interval: 30ms }}
                secrets:
                  COOLIFY_TOKEN: {{}}
                  REDIS_PASSWORD: {{}}
                resources:
                  cache:
                    type: coolify.database
                    with:
                      engine: redis
                      project: shop
                      server: main
                      password: "${{secret.REDIS_PASSWORD}}"
                      public_port: 16379
                      start_timeout: 5s
                "#,
                url = fake.url(),
            ))
        )
    };
    let case = Case::new()
        .spec(&spec("shop-cache"))
        .env("COOLIFY_TOKEN", TOKEN)
        .env("REDIS_PASSWORD", "first-redis-secret");
    let created = case.expect(["apply", "--yes"], 0);
    let db = the_db(&fake);
    assert_eq!(db["redis_password"], "first-redis-secret");
    assert_eq!(db["is_public"], true);
    assert_eq!(db["public_port"], 16379);
    let refreshed = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed.code, 0, "{refreshed}");

    let case = case.env("REDIS_PASSWORD", "second-redis-secret");
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan}");
    assert!(plan.stdout.contains("(sensitive value changed)"), "{plan}");
    let rotated = case.expect(["apply", "--yes"], 0);
    assert_eq!(the_db(&fake)["redis_password"], "second-redis-secret");
    assert_eq!(fake.count("POST", "/restart"), 1, "restarted to take it");
    let refreshed_again = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(refreshed_again.code, 0, "{refreshed_again}");
    for secret in ["first-redis-secret", "second-redis-secret"] {
        for out in [&created, &refreshed, &plan, &rotated, &refreshed_again] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{out}"
            );
        }
        for (path, bytes) in case.state_files() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{}",
                path.display()
            );
        }
    }
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

/// `adopt: true` takes over the database of the resource's name made by hand (its marker is
/// stamped, its description kept, it is started); `fabrik import` claims one by its uuid.
#[test]
fn a_database_made_by_hand_is_adopted_or_imported_never_duplicated() {
    let fake = fake();
    fake.add_project("shop");
    let theirs = fake.insert_database(
        "postgresql",
        "shop",
        "main",
        serde_json::json!({"name": "db", "description": "made by hand", "image": "postgres:16",
                           "postgres_user": "shop", "postgres_db": "shop",
                           "postgres_password": DB_PASSWORD}),
    );
    let case = case("shop-db-adopt", &fake, "16", "");
    case.set_spec(&spec("shop-db-adopt", &fake, "").replace(
        "    type: coolify.database\n",
        "    type: coolify.database\n    adopt: true\n",
    ));
    let out = case.expect(["apply", "--yes"], 0);
    let db = the_db(&fake);
    assert_eq!(
        db["uuid"],
        theirs.as_str(),
        "taken over, not duplicated:\n{out}"
    );
    assert_eq!(db["description"], "fabrik:shop-db-adopt/db\nmade by hand");
    assert_eq!(db["status"], "running:healthy");
    assert_eq!(fake.backups(&theirs).len(), 1);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    case.expect(["destroy", "--yes"], 0);
    assert_eq!(fake.deleted_databases(), vec![(theirs, false)]);

    // Imported: claimed by its marker, changed by the next apply.
    let other = fake.insert_database(
        "postgresql",
        "shop",
        "main",
        serde_json::json!({"name": "db", "image": "postgres:16", "postgres_user": "shop",
                           "postgres_db": "shop", "postgres_password": DB_PASSWORD}),
    );
    let case = self::case("shop-db-import", &fake, "16", "");
    case.expect(["import", "db", &other], 0);
    assert_eq!(the_db(&fake)["description"], "fabrik:shop-db-import/db");
    case.expect(["apply", "--yes"], 0);
    assert_eq!(the_db(&fake)["uuid"], other.as_str());
    assert_eq!(the_db(&fake)["status"], "running:healthy");
    fake.assert_no_violations();
}

/// A database changed in the dashboard shows as drift on `plan --refresh`; a change Coolify
/// answers 200 for but does not make (its PATCH drops fields silently) is caught by the read
/// back and fails without touching the state.
#[test]
fn drift_is_seen_and_a_patch_coolify_drops_fails_the_change() {
    let fake = fake();
    let case = case("shop-db-drift", &fake, "16", "");
    case.expect(["apply", "--yes"], 0);
    let uuid = the_db(&fake)["uuid"].as_str().unwrap().to_string();
    fake.edit_database(&uuid, serde_json::json!({"image": "postgres:15"}));
    let drift = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{drift}");
    assert!(
        drift
            .stdout
            .contains(r#"~ image = "postgres:15" → "postgres:16""#),
        "{drift}"
    );
    case.expect(["apply", "--yes", "--refresh"], 0);
    assert_eq!(the_db(&fake)["image"], "postgres:16");

    fake.drop_database_patch_field("image");
    let out = case.args(["apply", "--yes"]).env("PG_TAG", "17").run();
    case.redact(&uuid, "UUID");
    fabrik_snapshot!(case, out.code_and_stderr(), @r#"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      db: database [UUID] still has image "postgres:16", not "postgres:17" after the update
    every change was rolled back; the stack is as it was before this run
    "#);
    assert_eq!(the_db(&fake)["image"], "postgres:16");
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the state still says 16:\n{plan}");
    case.expect(["destroy", "--yes"], 0);
    fake.assert_no_violations();
}

/// A database whose project was renamed or whose server was removed in the dashboard stops a
/// refreshed plan (exit 1, nothing changed) naming what is gone: re-creating it elsewhere
/// would leave its data behind.
#[test]
fn a_database_whose_project_or_server_is_gone_stops_the_plan() {
    let fake = fake();
    let case = case("shop-db-moved", &fake, "16", "");
    let spec = spec("shop-db-moved", &fake, "");
    let only_db = spec.split("  api:").next().unwrap();
    case.set_spec(only_db);
    case.expect(["apply", "--yes"], 0);
    let uuid = the_db(&fake)["uuid"].as_str().unwrap().to_string();
    case.redact(&uuid, "DB");

    fake.rename_project("shop", "shop-2024");
    let renamed = case.run(["plan", "--refresh"]);
    fabrik_snapshot!(case, renamed.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `db`: project "shop" no longer exists, and database [DB] is now in project "shop-2024" (environment "production") in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the database is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [DB])
    "#);
    fake.rename_project("shop-2024", "shop");
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);

    fake.remove_server("main");
    let removed = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, removed.code_and_stderr(), @r#"
    exit code: 1
    ----- stderr -----
    error: refreshing `db`: server "main" no longer exists in Coolify; nothing was changed. Rename or move it back in Coolify, or name where the database is now in the spec, forget it with `fabrik state rm` and take it over again with `fabrik import` (uuid [DB])
    "#);
    assert_eq!(the_db(&fake)["uuid"], uuid.as_str(), "nothing was changed");
    fake.assert_no_violations();
}

/// A database stopped in the dashboard shows on a refreshed plan as a change that starts it;
/// the apply starts it and waits until it is healthy.
#[test]
fn a_database_stopped_in_the_dashboard_is_started_again() {
    let fake = fake();
    let case = case("shop-db-stop", &fake, "16", "");
    let spec = spec("shop-db-stop", &fake, "");
    case.set_spec(spec.split("  api:").next().unwrap());
    case.expect(["apply", "--yes"], 0);
    let uuid = the_db(&fake)["uuid"].as_str().unwrap().to_string();
    fake.stop_database(&uuid);
    let plan = case.run(["plan", "--refresh", "--detailed-exitcode"]);
    fabrik_snapshot!(case, plan, @r#"
    exit code: 2
    ----- stdout -----
    fabrik will make these changes to stack `shop-db-stop`:

      ~ db (coolify.database)  # changed outside fabrik
          ~ image = "postgres:16 (exited)" → "postgres:16"

    Plan: 0 to add, 1 to change, 0 to destroy.

    ----- stderr -----
    "#);
    let started = case.run(["apply", "--yes", "--refresh"]);
    assert_eq!(started.code, 0, "{started}");
    assert_eq!(the_db(&fake)["status"], "running:healthy");
    assert_eq!(
        the_db(&fake)["uuid"],
        uuid.as_str(),
        "started, not replaced"
    );
    case.expect(["plan", "--refresh", "--detailed-exitcode"], 0);
    fake.assert_no_violations();
}
