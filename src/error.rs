//! The engine's errors: each carries its context, and its kind decides the exit code.

use std::fmt;

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
}

/// What an apply that failed midway left behind.
#[derive(Debug)]
pub struct ApplyFailure {
    /// Every failure, one line each (`name: message`).
    pub failures: Vec<String>,
    /// Changes that stayed in place (not rolled back), one line each; empty when the stack is
    /// back where it started.
    pub remaining: Vec<String>,
    /// Changes left in place on purpose (`on_failure: keep`), one line each.
    pub kept: Vec<String>,
    /// What failed: `apply` or `destroy`.
    pub operation: &'static str,
    /// Whether the run tried to put everything back.
    pub rolled_back: bool,
}

impl fmt::Display for ApplyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} failed:", self.operation)?;
        for line in &self.failures {
            writeln!(f, "  {line}")?;
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

    /// The process exit code for this error, as DESIGN.md fixes them.
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
