//! The command line as a whole: every argument has help text, every subcommand's `--help`
//! works, and the completion scripts and the manual page name every subcommand.

use clap::CommandFactory;
use fabrik::cli::Cli;

use crate::harness::Case;

/// Every subcommand, as the words that run it (`["state", "list"]`).
fn subcommands() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            let mut words = path.to_vec();
            words.push(sub.get_name().to_string());
            out.push(words.clone());
            walk(sub, &words, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

#[test]
fn every_argument_and_subcommand_has_help_text() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                missing.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{name} (the subcommand)"));
            }
            walk(sub, &name, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "fabrik", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:#?}");
}

#[test]
fn every_subcommand_prints_its_help() {
    let case = Case::new();
    for words in subcommands() {
        let mut args = words.clone();
        args.push("--help".into());
        let out = case.expect(&args, 0);
        assert!(out.stdout.contains("Usage: fabrik"), "{words:?}: {out}");
    }
}

/// What `--help` prints, pinned per subcommand (`snapshots/it__cli__help-state-list.snap`):
/// a changed flag, default or help text shows up in review.
#[test]
fn every_subcommands_help_is_pinned() {
    let case = Case::new();
    let mut all = vec![Vec::new()];
    all.extend(subcommands());
    for words in all {
        let mut args = words.clone();
        args.push("--help".into());
        let out = case.expect(&args, 0);
        let name = if words.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", words.join("-"))
        };
        insta::assert_snapshot!(name, out.stdout);
    }
}

#[test]
fn completion_scripts_name_every_subcommand() {
    let case = Case::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = case.expect(["completions", shell], 0);
        for words in subcommands() {
            let name = words.last().unwrap();
            assert!(out.stdout.contains(name.as_str()), "{shell} lacks `{name}`");
        }
    }
}

#[test]
fn the_bash_completion_script_loads() {
    let case = Case::new();
    let script = case.expect(["completions", "bash"], 0).stdout;
    case.write("fabrik.bash", &script);
    let syntax = std::process::Command::new("bash")
        .args(["-n", "fabrik.bash"])
        .current_dir(case.root())
        .output()
        .expect("bash runs");
    assert!(syntax.status.success(), "{syntax:?}");
    let loaded = std::process::Command::new("bash")
        .args(["-c", "source fabrik.bash && complete -p fabrik"])
        .current_dir(case.root())
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("fabrik"));
}

#[test]
fn the_manual_page_opens_with_its_title_and_names_every_subcommand() {
    let case = Case::new();
    let page = case.expect(["man"], 0).stdout;
    assert!(page.starts_with(".TH fabrik 1"), "{}", &page[..80]);
    for words in subcommands() {
        let heading = format!(".SH \"FABRIK {}\"", words.join(" ").to_uppercase());
        assert!(page.contains(&heading), "no section {heading}");
    }
}

/// A shell that calls fabrik back (`FABRIK_COMPLETE`) is offered the spec's resources for
/// `--target`, with their types; without a spec, nothing, and no error.
#[test]
fn target_completes_the_resources_of_the_spec_in_the_current_directory() {
    let case = Case::new().spec(
        r#"
        stack: s
        resources:
          page: { type: local.file, with: { path: a, content: b } }
          web: { type: local.process, with: { command: "true" } }
        "#,
    );
    for subcommand in ["plan", "apply", "destroy"] {
        let out = case
            .args(["--", "fabrik", subcommand, "--target", ""])
            .env("FABRIK_COMPLETE", "fish")
            .run();
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(
            out.stdout, "page\tlocal.file\nweb\tlocal.process\n",
            "{subcommand}"
        );
    }
    let empty = Case::new();
    let out = empty
        .args(["--", "fabrik", "plan", "--target", ""])
        .env("FABRIK_COMPLETE", "fish")
        .run();
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out}");
    // The script that calls back is valid bash.
    let script = case
        .args(Vec::<&str>::new())
        .env("FABRIK_COMPLETE", "bash")
        .run();
    case.write("dynamic.bash", &script.stdout);
    let syntax = std::process::Command::new("bash")
        .args(["-n", "dynamic.bash"])
        .current_dir(case.root())
        .output()
        .expect("bash runs");
    assert!(
        syntax.status.success() && script.stdout.contains("FABRIK_COMPLETE"),
        "{syntax:?}"
    );
}

#[test]
fn version_names_the_commit_and_the_providers_built_in() {
    let case = Case::new();
    case.redact_matches(
        r"commit: (?:[0-9a-f]{7,40}|unknown)\n",
        "commit: [COMMIT]\n",
    );
    let long = case.run(["--version"]);
    fabrik_snapshot!(case, long, @"
    exit code: 0
    ----- stdout -----
    fabrik 0.1.0
    commit: [COMMIT]
    providers: cloudflare, coolify, local, powerdns, uptimekuma

    ----- stderr -----
    ");
    // `-V` stays short, for scripts that read the version alone.
    let short = case.run(["-V"]);
    assert_eq!(short.stdout, "fabrik 0.1.0\n", "{short}");
}

const ELSEWHERE: &str = "stack: elsewhere
resources:
  note:
    type: local.file
    with: { path: note.txt, content: hi }
outputs:
  size: { value: \"${note.size}\" }
";

#[test]
fn every_command_takes_the_spec_as_spec_or_as_the_spec_option() {
    let case = Case::new();
    case.write("sub/web.yml", ELSEWHERE);
    // No fabrik.yaml here: a command that missed the spec would fail.
    let both = |before: &[&str], after: &[&str]| {
        let positional: Vec<&str> = before
            .iter()
            .chain(&["sub/web.yml"])
            .chain(after)
            .copied()
            .collect();
        let option: Vec<&str> = before
            .iter()
            .chain(after)
            .chain(&["--spec", "sub/web.yml"])
            .copied()
            .collect();
        let a = case.expect(&positional, 0);
        let b = case.expect(&option, 0);
        assert_eq!(a.stdout, b.stdout, "{positional:?} and {option:?} differ");
        a
    };
    both(&["validate"], &[]);
    both(&["graph"], &[]);
    both(&["secrets"], &[]);
    both(&["plan"], &[]);
    case.expect(["apply", "--yes", "--spec", "sub/web.yml"], 0);
    both(&["apply", "--yes"], &[]);
    both(&["state", "list"], &[]);
    both(&["state", "show"], &["note"]);
    // A lone value ending in .yml/.yaml is the spec; another value after it is the NAME.
    let all = both(&["output"], &[]);
    assert_eq!(all.stdout, "size = 2\n", "{all}");
    let one = both(&["output"], &["size"]);
    assert_eq!(one.stdout, "size = 2\n", "{one}");
    case.expect(["state", "mv", "sub/web.yml", "note", "memo"], 0);
    case.expect(["state", "mv", "memo", "note", "--spec", "sub/web.yml"], 0);
    case.expect(["state", "show", "sub/web.yml", "note"], 0);
    both(&["unlock", "--force"], &[]);
    case.expect(["destroy", "--yes", "sub/web.yml"], 0);
    let again = case.expect(["destroy", "--yes", "--spec", "sub/web.yml"], 0);
    assert!(again.stdout.contains("nothing to destroy"), "{again}");

    let twice = case.run([
        "state",
        "show",
        "sub/web.yml",
        "note",
        "--spec",
        "sub/web.yml",
    ]);
    fabrik_snapshot!(case, twice, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the spec is given twice: as SPEC and as --spec; give one
    ");
}

/// A `command` gate naming a program that is not there fails at once, pointing at the entry's
/// `command:` (its kind key need not come first).
#[test]
fn a_gate_program_not_on_path_points_at_its_command() {
    let case = Case::new().spec(
        r#"
        stack: typo
        resources:
          page:
            type: local.file
            with: { path: page.txt, content: "hello\n" }
            verify:
              - timeout: 5s
                command: ["chekc-page", "${page.path}"]
        "#,
    );
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply.code_and_stderr(), @r#"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      page: gate command chekc-page page.txt failed: the program `chekc-page` is not on the PATH
        --> fabrik.yaml:8:18
    every change was rolled back; the stack is as it was before this run
    "#);
    assert!(!case.exists("page.txt"), "rolled back");
}

/// The stack's own gates are pointed at the same way.
#[test]
fn a_stack_gate_program_not_on_path_points_at_its_command() {
    let case = Case::new().spec(
        r#"
        stack: typo
        verify:
          - command: [chekc-site]
        resources:
          page:
            type: local.file
            with: { path: page.txt, content: "hello\n" }
        "#,
    );
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply.code_and_stderr(), @r#"
    exit code: 3
    ----- stderr -----
    error: apply failed:
      stack: gate command chekc-site failed: the program `chekc-site` is not on the PATH
        --> fabrik.yaml:3:14
    every change was rolled back; the stack is as it was before this run
    "#);
}

#[test]
fn a_mistyped_program_is_named_as_not_found_on_path() {
    let case = Case::new().spec(
        "stack: typo
resources:
  svc:
    type: local.process
    with: { command: srever, args: [--port, \"8000\"] }
",
    );
    let apply = case.run(["apply", "--yes"]);
    fabrik_snapshot!(case, apply, @r#"
    exit code: 3
    ----- stdout -----
    fabrik will make these changes to stack `typo`:

      + svc (local.process)
          + command = "srever"
          + args    = ["--port","8000"]

    Plan: 1 to add, 0 to change, 0 to destroy.

      ✗ svc (local.process): failed
    Rolling back the changes this run made…

    ----- stderr -----
    error: apply failed:
      svc: program `srever` not found on PATH
        --> fabrik.yaml:5:22
    every change was rolled back; the stack is as it was before this run
    "#);
}
