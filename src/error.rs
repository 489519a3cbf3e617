//! The engine's errors: each carries its context, and its kind decides the exit code.

use std::fmt;

use fabrik_provider::ErrorKind;

use crate::interrupt::Signal;
use crate::lock_holder::Holder;
use crate::source::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the spec, each with file, line and column.
    #[error("{0}")]
    Spec(Diagnostics),

    /// A command used the wrong way (bad arguments, missing file, refused confirmation).
    #[error("{0}")]
    Usage(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Another process holds the stack's lock.
    #[error(
        "stack `{stack}` is locked by another fabrik run\n{holder}\nwait for it to finish, or, if that process is gone, run `fabrik unlock --force`"
    )]
    Locked { stack: String, holder: Box<Holder> },

    /// The state backend cannot be reached or refused a request.
    #[error("state backend {backend}: {message}")]
    Backend { backend: String, message: String },

    /// The state backend went away after the run had started changing things: what was done is
    /// kept (the message says where) but not yet in the backend.
    #[error("state backend {backend}: {message}")]
    BackendLost { backend: String, message: String },

    /// Another writer changed the stack's state since this run read it: this run's write was
    /// refused rather than overwrite the newer state.
    #[error(
        "the state of stack `{stack}` changed under this run: {detail}\nanother fabrik run wrote it (was the lock broken with `fabrik unlock --force`?); run the command again to start from the current state"
    )]
    StaleState { stack: String, detail: String },

    /// The stack's state was moved to another backend by `fabrik state migrate`.
    #[error(
        "the state of stack `{stack}` was moved to {to} by `fabrik state migrate`\npoint the spec at it (its `backend:` block), or pass --backend or --state-dir"
    )]
    Moved { stack: String, to: String },

    /// The stored state cannot be read or does not belong here.
    #[error("{0}")]
    State(String),

    /// A saved plan no longer matches the spec or the state.
    #[error(
        "the saved plan is stale: {0}\nrun `fabrik plan --out PLAN` again and review the new plan"
    )]
    StalePlan(String),

    /// A provider failed before anything changed (configuration, plan-time validation, refresh).
    #[error("{resource}: {source}")]
    Provider {
        resource: String,
        #[source]
        source: fabrik_provider::Error,
    },

    /// An apply or destroy failed after it had started changing things.
    #[error("{0}")]
    Apply(ApplyFailure),

    /// Several errors of one step, each to be fixed on its own (every resource a refresh
    /// found standing on something gone): printed one after the other, each as an error.
    #[error("{}", several(.0))]
    Several(Vec<Error>),
}

fn several(errors: &[Error]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\nerror: ")
}

/// What an apply that failed midway left behind.
#[derive(Debug)]
pub struct ApplyFailure {
    /// Every failure, in the order the run met them.
    pub failures: Vec<Failure>,
    /// Changes that stayed in place (not rolled back), one line each; empty when the stack is
    /// back where it started.
    pub remaining: Vec<String>,
    /// Changes left in place on purpose (`on_failure: keep`), one line each.
    pub kept: Vec<String>,
    /// What failed.
    pub command: Command,
    /// Whether the run tried to put everything back.
    pub rolled_back: bool,
}

/// The command whose run failed, as its report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Apply,
    Destroy,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Apply => "apply",
            Command::Destroy => "destroy",
        })
    }
}

/// One thing that went wrong in a run. What follows from it (rollback, the exit code, the
/// report) is decided from these fields, never from the words of `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The resource whose change failed; `None` for the stack as a whole (its gates, a signal).
    pub resource: Option<String>,
    pub cause: Cause,
    /// What happened, without the resource's name (progress shows it beside the resource).
    pub message: String,
}

/// Why a change (or the run) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A provider call failed, after the retries its kind allows.
    Provider(ErrorKind),
    /// A gate failed, or the object was gone once its gates had passed.
    Gate,
    /// A signal stopped the run (`None`: its flag was seen before the signal was known).
    Interrupted(Option<Signal>),
    /// The object's place is fabrik's own or held by a resource that stays.
    Place,
    /// What the change sends, or the gates it runs, could not be worked out from the spec and
    /// what the run has done so far.
    Prepare,
    /// The state no longer records what the plan counted on.
    State,
}

impl Failure {
    /// A failure of one resource's change.
    pub fn of(resource: impl Into<String>, cause: Cause, message: impl Into<String>) -> Self {
        Failure {
            resource: Some(resource.into()),
            cause,
            message: message.into(),
        }
    }

    /// A failure of the stack's own gates: `Cause::Gate` when one failed, `Cause::Prepare`
    /// when they could not be built.
    pub fn stack(cause: Cause, message: impl Into<String>) -> Self {
        Failure {
            resource: None,
            cause,
            message: message.into(),
        }
    }

    /// The run was interrupted by `by`; `message` says what that stopped, if more than the run.
    pub fn interrupted(by: Option<Signal>, message: impl Into<String>) -> Self {
        Failure {
            resource: None,
            cause: Cause::Interrupted(by),
            message: message.into(),
        }
    }

    pub fn is_interruption(&self) -> bool {
        matches!(self.cause, Cause::Interrupted(_))
    }
}

/// The line the report gives it.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.resource, self.cause) {
            (Some(name), _) => write!(f, "{name}: {}", self.message),
            (None, Cause::Interrupted(by)) => {
                match by {
                    Some(signal) => write!(f, "interrupted by {signal}")?,
                    None => f.write_str("interrupted by a signal")?,
                }
                if self.message.is_empty() {
                    Ok(())
                } else {
                    write!(f, ": {}", self.message)
                }
            }
            (None, Cause::Gate) => write!(f, "stack: {}", self.message),
            // The stack's gates could not be built.
            (None, _) => write!(f, "stack gate: {}", self.message),
        }
    }
}

impl fmt::Display for ApplyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} failed:", self.command)?;
        for failure in &self.failures {
            writeln!(f, "  {failure}")?;
        }
        if self.remaining.is_empty() && self.kept.is_empty() {
            return write!(
                f,
                "every change was rolled back; the stack is as it was before this run"
            );
        }
        if !self.kept.is_empty() {
            writeln!(
                f,
                "kept in place, as the spec asks (recorded in the state):"
            )?;
            for line in &self.kept {
                writeln!(f, "  {line}")?;
            }
        }
        if !self.remaining.is_empty() {
            if self.rolled_back {
                writeln!(
                    f,
                    "these changes could not be rolled back and remain (recorded in the state):"
                )?;
            } else {
                writeln!(f, "these changes remain in place (recorded in the state):")?;
            }
            for line in &self.remaining {
                writeln!(f, "  {line}")?;
            }
        } else if self.rolled_back {
            writeln!(f, "every other change was rolled back")?;
        }
        write!(f, "run `fabrik plan` to see what is left to do")
    }
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error, as docs/exit-codes.md lists them.
    pub fn exit_code(&self) -> i32 {
        match self {
            // Kept on purpose or not, a change that stays means the stack is not as it was.
            Error::Apply(failure) if failure.remaining.is_empty() && failure.kept.is_empty() => 3,
            Error::Apply(_) => 4,
            // Changes may have been made that the backend does not hold yet.
            Error::BackendLost { .. } => 4,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use fabrik_provider::ErrorKind;

    use super::{ApplyFailure, Cause, Command, Error, Failure};
    use crate::interrupt::Signal;

    fn failure(failures: Vec<Failure>, remaining: &[&str], kept: &[&str]) -> Error {
        Error::Apply(ApplyFailure {
            failures,
            remaining: remaining.iter().map(ToString::to_string).collect(),
            kept: kept.iter().map(ToString::to_string).collect(),
            command: Command::Apply,
            rolled_back: true,
        })
    }

    #[test]
    fn each_failure_reads_as_it_always_did() {
        let lines: Vec<String> = [
            Failure::of("web", Cause::Provider(ErrorKind::Conflict), "taken"),
            Failure::of("web", Cause::Gate, "gate http://x failed: 503"),
            Failure::interrupted(Some(Signal::Sigint), ""),
            Failure::interrupted(Some(Signal::Sigterm), "no new change was started"),
            Failure::interrupted(None, ""),
            Failure::stack(Cause::Gate, "gate tcp 127.0.0.1:1 failed: refused"),
            Failure::stack(Cause::Prepare, "a gate refers to a value that is not known"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            lines,
            [
                "web: taken",
                "web: gate http://x failed: 503",
                "interrupted by SIGINT (Ctrl-C)",
                "interrupted by SIGTERM: no new change was started",
                "interrupted by a signal",
                "stack: gate tcp 127.0.0.1:1 failed: refused",
                "stack gate: a gate refers to a value that is not known",
            ]
        );
    }

    #[test]
    fn a_run_rolled_back_in_full_exits_3_and_one_that_left_something_exits_4() {
        let failed = || {
            vec![
                Failure::interrupted(Some(Signal::Sigint), ""),
                Failure::of("b", Cause::Gate, "gate failed"),
            ]
        };
        let back = failure(failed(), &[], &[]);
        assert_eq!(back.exit_code(), 3);
        assert_eq!(
            back.to_string(),
            "apply failed:\n  interrupted by SIGINT (Ctrl-C)\n  b: gate failed\nevery change was rolled back; the stack is as it was before this run"
        );
        // The cause does not decide the code: what stays does.
        assert_eq!(failure(failed(), &["a: created"], &[]).exit_code(), 4);
        assert_eq!(
            failure(failed(), &[], &["a: created (on_failure: keep)"]).exit_code(),
            4
        );
    }

    #[test]
    fn a_destroy_names_itself() {
        let report = Error::Apply(ApplyFailure {
            failures: vec![Failure::of("a", Cause::Provider(ErrorKind::Fatal), "boom")],
            remaining: vec![
                "a: boom (still recorded in the state; the next apply retries it)".into(),
            ],
            kept: Vec::new(),
            command: Command::Destroy,
            rolled_back: false,
        });
        assert_eq!(report.exit_code(), 4);
        assert_eq!(
            report.to_string(),
            "destroy failed:\n  a: boom\nthese changes remain in place (recorded in the state):\n  a: boom (still recorded in the state; the next apply retries it)\nrun `fabrik plan` to see what is left to do"
        );
    }
}
