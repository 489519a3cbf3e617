//! The command line, as clap types only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fabrik", version, about = "Declarative plan/apply for self-hosted stacks", long_about = None)]
pub struct Cli {
    /// Keep the state here instead of `.fabrik/` beside the spec.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Keep the state in this backend for this run: a PostgreSQL URL
    /// (`postgres://user:password@host/db?sslmode=verify-full&schema=fabrik`) or a directory.
    /// Wins over the spec's `backend:` and `--state-dir`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FABRIK_BACKEND",
        hide_env_values = true
    )]
    pub backend: Option<String>,

    /// Never colour the output (NO_COLOR does the same).
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the spec, its references and its graph; calls no provider.
    Validate(SpecArg),
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Make the changes (asks first unless --yes).
    Apply(ApplyArgs),
    /// Delete everything the stack created, from the state alone.
    Destroy(DestroyArgs),
    /// Render a saved plan.
    Show(ShowArgs),
    /// Print the dependency graph as Graphviz DOT.
    Graph(SpecArg),
    /// Inspect or forget tracked resources.
    #[command(subcommand)]
    State(StateCommand),
    /// Take an object that already exists into the state as a resource of the spec.
    ///
    /// The object keeps everything it has: fabrik only stamps its ownership marker where the
    /// provider has one (a PowerDNS RRset's comment), and refuses an object another resource
    /// manages. Run `fabrik plan` afterwards to see how the object differs from the spec.
    Import(ImportArgs),
    /// The stack's outputs (`outputs:`), or the outputs of applied resources.
    Output(OutputArgs),
    /// Each declared secret and where its value comes from (never the value).
    Secrets(SecretsArgs),
    /// Break a stale lock, after printing who held it.
    Unlock(UnlockArgs),
    /// Write a commented starter fabrik.yaml (or an example) in the current directory.
    Init(InitArgs),
    /// Print the spec's JSON Schema, for editors (`schema/fabrik.schema.json` holds a copy).
    Schema,
    /// Print a shell completion script for subcommands and flags.
    ///
    /// bash: `source <(fabrik completions bash)`; zsh: `fabrik completions zsh >
    /// "${fpath[1]}/_fabrik"`; fish: `fabrik completions fish >
    /// ~/.config/fish/completions/fabrik.fish`; PowerShell: `fabrik completions powershell |
    /// Out-String | Invoke-Expression`.
    ///
    /// To complete resource names for `--target` too (from fabrik.yaml in the current
    /// directory), load the script that calls fabrik back instead: `source
    /// <(FABRIK_COMPLETE=bash fabrik)` (likewise zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), every subcommand in one page: `fabrik man > fabrik.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Copy this example instead of the starter spec.
    #[arg(long, value_enum, value_name = "NAME")]
    pub example: Option<Example>,
}

/// The examples `fabrik init --example` copies (`examples/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// Files and a local web server, verified over HTTP.
    Quickstart,
    /// A PowerDNS zone and records, verified by DNS.
    Dns,
    /// An application on Coolify behind a DNS record.
    Coolify,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The spec a command works on, given the same way to every command: `[SPEC]` or `--spec SPEC`
/// (docs/commands.md).
#[derive(Debug, Args, Default)]
pub struct SpecArg {
    /// The spec file [default: fabrik.yaml].
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// The spec file, as an option: the same as SPEC.
    #[arg(long = "spec", value_name = "SPEC", conflicts_with = "spec")]
    pub spec_option: Option<PathBuf>,
}

impl SpecArg {
    /// The spec named either way, else `fabrik.yaml`.
    pub fn path(&self) -> PathBuf {
        self.spec
            .clone()
            .or_else(|| self.spec_option.clone())
            .unwrap_or_else(|| PathBuf::from("fabrik.yaml"))
    }
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(flatten)]
    pub spec: SpecArg,
    /// Exit 1 when a secret has no value and would not be generated.
    #[arg(long)]
    pub check: bool,
}

/// Values for the variables a spec declares under `vars:`.
#[derive(Debug, Args, Default)]
pub struct VarArgs {
    /// Give a variable a value (repeatable): wins over FABRIK_VAR_NAME, the vars file and the
    /// default. Numbers and booleans as written, lists and maps as YAML or JSON.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// Read variables from this YAML map instead of fabrik.vars.yaml beside the spec.
    #[arg(long, value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec file.
    #[arg(default_value = "fabrik.yaml")]
    pub spec: PathBuf,
    /// The same as SPEC, as an option.
    #[arg(long = "spec", value_name = "SPEC", conflicts_with = "spec")]
    pub spec_option: Option<PathBuf>,
    /// Save the plan to this file, for `fabrik apply PLAN`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (see docs/plans.md, "Plan JSON").
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there is nothing to change, 2 when there is.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Read every tracked object first, to see changes made outside fabrik (the default).
    /// `--refresh=false` trusts the state instead: faster, but blind to drift.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub refresh: bool,
    /// Plan only these resources (and what they need).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A spec file, or a plan saved with `plan --out`.
    #[arg(default_value = "fabrik.yaml")]
    pub spec: PathBuf,
    /// The same as SPEC, as an option.
    #[arg(long = "spec", value_name = "SPEC", conflicts_with = "spec")]
    pub spec_option: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How many resources may change at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallelism: u16,
    /// On failure, keep what was done instead of rolling it back.
    #[arg(long)]
    pub no_rollback: bool,
    /// Read every tracked object first, to repair changes made outside fabrik (the default).
    /// `--refresh=false` trusts the state instead. A saved plan fixed this when it was made.
    // `None` when not given: the default for a spec, and an error beside a saved plan.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub refresh: Option<bool>,
    /// Apply only these resources (and what they need).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The spec (optional: destroy works from the state alone).
    #[arg(default_value = "fabrik.yaml")]
    pub spec: PathBuf,
    /// The same as SPEC, as an option.
    #[arg(long = "spec", value_name = "SPEC", conflicts_with = "spec")]
    pub spec_option: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Destroy only these resources (and what depends on them).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// The stack, when the spec is gone and the state directory holds several.
    #[arg(long)]
    pub stack: Option<String>,
    /// How many resources may be deleted at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallelism: u16,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `[SPEC] NAME ID`: clap cannot have an optional positional before two required ones, so the
/// values are taken together and told apart by their count (`commands::import`). The help
/// describes them by hand, in the place clap would.
#[derive(Debug, Args)]
#[command(
    override_usage = "fabrik import [OPTIONS] [SPEC] NAME ID",
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n\
        Arguments:\n  \
        [SPEC]  The spec file [default: fabrik.yaml]\n  \
        NAME    The resource of the spec that is to manage the object\n  \
        ID      The object's id in its provider, as fabrik prints it: for a PowerDNS RRset\n          \
                <zone>/<name>/<type>, for a zone its name\n\n\
        {all-args}{after-help}",
    after_help = "Examples:\n  \
        fabrik import www example.com./www.example.com./A\n  \
        fabrik import stacks/dns.yaml zone example.com."
)]
pub struct ImportArgs {
    #[arg(hide = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
    /// The same as SPEC, as an option.
    #[arg(long = "spec", value_name = "SPEC")]
    pub spec_option: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved with `plan --out`.
    pub plan: PathBuf,
    /// Print the plan as JSON (see docs/plans.md, "Plan JSON").
    #[arg(long)]
    pub json: bool,
}

/// Which stack's state a command reads.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// The spec that names the stack [default: fabrik.yaml]; the same as a SPEC before the
    /// command's other values.
    #[arg(long = "spec", value_name = "SPEC")]
    pub spec_option: Option<PathBuf>,
    /// The stack, when there is no spec.
    #[arg(long)]
    pub stack: Option<String>,
}

impl StackArgs {
    /// The spec named by `--spec`, else `fabrik.yaml`.
    pub fn spec(&self) -> PathBuf {
        self.spec_option
            .clone()
            .unwrap_or_else(|| PathBuf::from("fabrik.yaml"))
    }

    /// Takes a SPEC given before the command's other values (see [`leading_spec`]); it and
    /// `--spec` together are refused.
    pub fn take_spec(&mut self, spec: Option<String>) -> Result<(), String> {
        match (spec, &self.spec_option) {
            (Some(_), Some(_)) => {
                Err("the spec is given twice: as SPEC and as --spec; give one".into())
            }
            (Some(spec), None) => {
                self.spec_option = Some(PathBuf::from(spec));
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }
}

/// Splits `[SPEC] VALUES…` where a command takes `names` values of its own after an optional
/// SPEC: one value more than `names` means the first is the spec. A command whose own value
/// is optional (`output [NAME]`) passes `lone_spec`: then a lone value ending in `.yaml` or
/// `.yml` is the spec (names hold no `.yaml` ending; `output SPEC NAME` or `--spec` says it
/// otherwise).
pub fn leading_spec(
    mut words: Vec<String>,
    names: usize,
    lone_spec: bool,
) -> (Option<String>, Vec<String>) {
    let looks_like_spec = |w: &str| {
        std::path::Path::new(w)
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml")
    };
    if words.len() > names || (lone_spec && words.len() == 1 && looks_like_spec(&words[0])) {
        let spec = words.remove(0);
        (Some(spec), words)
    } else {
        (None, words)
    }
}

/// `[SPEC]` alone, for the state commands that take no other value.
#[derive(Debug, Args)]
pub struct StackSpecArgs {
    /// The spec that names the stack [default: fabrik.yaml].
    #[arg(value_name = "SPEC", conflicts_with = "spec_option")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub stack: StackArgs,
}

impl StackSpecArgs {
    /// The stack arguments with SPEC folded in.
    pub fn into_stack(self) -> StackArgs {
        let mut stack = self.stack;
        if let Some(spec) = self.spec {
            stack.spec_option = Some(spec);
        }
        stack
    }
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every tracked resource: name, type, id.
    List(StackSpecArgs),
    /// One resource as recorded.
    #[command(override_usage = "fabrik state show [OPTIONS] [SPEC] NAME")]
    Show {
        /// The resource's address (`NAME` or `NAME[key]`), after the spec if one is given
        /// (`[SPEC] NAME`).
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        name: Vec<String>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Forget a resource without deleting it.
    #[command(override_usage = "fabrik state rm [OPTIONS] [SPEC] NAME")]
    Rm {
        /// The resource's address (`NAME` or `NAME[key]`), after the spec if one is given
        /// (`[SPEC] NAME`).
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        name: Vec<String>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Rename a resource in the state, leaving its object as it is (what a `moved:` entry
    /// does, by hand).
    #[command(override_usage = "fabrik state mv [OPTIONS] [SPEC] FROM TO")]
    Mv {
        /// The address the state tracks it by (`NAME` or `NAME[key]`), then the address to
        /// track it by from now on; after the spec if one is given (`[SPEC] FROM TO`).
        #[arg(value_name = "FROM TO", num_args = 2..=3, required = true)]
        names: Vec<String>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Move the stack's state (journal included) to another backend, verifying the copy
    /// before the old one is retired.
    Migrate {
        /// A PostgreSQL URL (`postgres://…?schema=…`) or a state directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
        #[command(flatten)]
        stack: StackSpecArgs,
    },
}

#[derive(Debug, Args)]
#[command(override_usage = "fabrik output [OPTIONS] [SPEC] [NAME]")]
pub struct OutputArgs {
    /// One stack output (`NAME`), one resource's outputs (`NAME`), or one of them
    /// (`NAME.ATTR`); after the spec if one is given (`[SPEC] NAME`). A lone value ending in
    /// `.yaml` or `.yml` is the spec.
    #[arg(value_name = "NAME", num_args = 0..=2)]
    pub words: Vec<String>,
    /// NAME, once told apart from SPEC ([`leading_spec`]).
    #[arg(skip)]
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Print one value (`NAME` of a stack output, or `NAME.ATTR`) alone: a string without
    /// quotes, anything else as JSON; for scripts. A sensitive stack output is printed too.
    #[arg(long)]
    pub raw: bool,
    /// Print the values of sensitive stack outputs instead of `(sensitive)`.
    #[arg(long)]
    pub show_sensitive: bool,
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Required: breaking a lock is deliberate.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub stack: StackSpecArgs,
}
