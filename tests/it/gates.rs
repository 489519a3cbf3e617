//! Verification gates through the real binary, against a real local web server started by
//! fabrik itself (`python3 -m http.server`). The gate kinds are covered in depth at module level
//! (`src/verify`); here: a passing `http` gate with `status` and `body_contains`, passing `tcp`
//! gates, and what a failing `http` gate tells the user.

use std::time::Duration;

use crate::harness::Case;
use crate::live::{Reaper, alive, free_port, http_get_when_up, processes_of, recorded_pid};

/// A page and a server for its directory, gated by `gates` (YAML list items, indented for
/// the resource's `verify:`).
fn served_spec(stack: &str, port: u16, gates: &str) -> String {
    let python = crate::live::python();
    format!(
        r#"
        stack: {stack}
        resources:
          page:
            type: local.file
            with: {{ path: site/index.html, content: "<h1>hello gate</h1>\n" }}
          server:
            type: local.process
            depends_on: [page]
            with:
              command: "{python}"
              args: ["-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "site"]
              stop_timeout: 2
            verify:
{gates}
        "#
    )
}

#[test]
fn http_and_tcp_gates_pass_through_the_binary() {
    let stack = "gates-pass";
    let port = free_port();
    // Generous timeouts: a passing gate returns as soon as it passes, and a loaded machine may
    // take a while to start Python.
    let gates = format!(
        r#"              - http: "http://127.0.0.1:{port}/"
                status: 200
                body_contains: "hello gate"
                timeout: 10s
                interval: 100ms
              - http: "http://127.0.0.1:{port}/missing.html"
                status: 404
                timeout: 3s
                interval: 100ms
              - tcp: "127.0.0.1:{port}"
                timeout: 3s
                interval: 100ms"#
    );
    let case = Case::new().spec(&served_spec(stack, port, &gates));
    let _reaper = Reaper::new(&case);
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 0, "every gate passes:\n{out}");
    let verified = out
        .stdout
        .lines()
        .find(|l| l.contains("✓ server: verified "))
        .unwrap_or_else(|| panic!("a line says the server's gates passed:\n{out}"));
    for gate in [
        format!("http http://127.0.0.1:{port}/"),
        format!("http http://127.0.0.1:{port}/missing.html"),
        format!("tcp 127.0.0.1:{port}"),
    ] {
        assert!(verified.contains(&gate), "{gate} is named in {verified:?}");
    }
    assert!(out.stdout.contains("Apply complete: 2 added"), "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    let pid = recorded_pid(&case, stack, "server");
    assert!(alive(pid));
    let page = http_get_when_up(port, "/", Duration::from_secs(5));
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "<h1>hello gate</h1>\n")
    );
    // A second apply changes nothing and runs no gate.
    let again = case.expect(["apply", "--yes"], 0);
    assert!(!again.stdout.contains("verified"), "{again}");
    assert_eq!(recorded_pid(&case, stack, "server"), pid);

    case.expect(["destroy", "--yes"], 0);
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert!(!alive(pid));
}

#[test]
fn a_failed_http_gate_names_the_gate_and_the_status_it_got() {
    let stack = "gates-404";
    let port = free_port();
    // Long enough for python3 to be serving (and answering 404) on a loaded machine: the
    // failure must name what the server said, not that nothing listened yet.
    let gates = format!(
        r#"              - http: "http://127.0.0.1:{port}/health"
                status: 200
                timeout: 5s
                interval: 100ms"#
    );
    let case = Case::new().spec(&served_spec(stack, port, &gates));
    let _reaper = Reaper::new(&case);
    let out = case.run(["apply", "--yes"]);
    assert_eq!(out.code, 3, "a failed gate rolls back:\n{out}");
    let why = format!(
        "server: gate http http://127.0.0.1:{port}/health failed: expected status 200, got 404 \
         Not Found (body: \""
    );
    assert!(out.stderr.contains(&why), "expected {why:?} in:\n{out}");
    assert!(
        out.stderr.contains("(gave up after 5s, "),
        "how long it tried:\n{out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "✗ server (local.process): failed: gate http http://127.0.0.1:{port}/health failed: \
             expected status 200, got 404 Not Found"
        )),
        "the progress shows it too:\n{out}"
    );
    assert!(!case.exists("site/index.html"));
    assert_eq!(processes_of(&case.state_dir()), Vec::<i32>::new());
    assert_eq!(case.tracked(stack), Vec::<String>::new());
    case.expect(["destroy", "--yes"], 0);
}
