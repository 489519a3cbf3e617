//! Provider errors carry a kind, so the engine decides what to do from the kind, never from text.

use std::fmt;

/// The result of a provider call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure a provider call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Worth retrying: a timeout, a connection reset, a 5xx or a 429.
    Transient,
    /// The object is in a state that conflicts with the change (already exists, not ours).
    Conflict,
    /// The object the call needed is not there.
    NotFound,
    /// The inputs or configuration cannot work, whatever is retried.
    InvalidInput,
    /// The credentials were refused.
    Unauthorized,
    /// Anything else: an I/O failure, an unexpected answer.
    Fatal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Fatal => "fatal",
        })
    }
}

/// A provider error: a kind, a message for people and, where there is one, the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What the engine may do about it.
    pub kind: ErrorKind,
    /// For people only: nothing decides on it.
    pub message: String,
    /// The field of the request the server refused, in the API's own words, where its answer
    /// names one (Coolify's `errors: {field: [...]}`), so that a provider decides on the field
    /// instead of on the wording of the message; for an input the machine lacks (a program
    /// not found), the resource's input field, so that the engine points at the spec's value.
    pub field: Option<String>,
    /// The provider already tried the call again for as long as made sense (its own backoff,
    /// `Retry-After`): the engine does not multiply those attempts by its own.
    pub retried: bool,
    /// The call stopped waiting because the run was interrupted ([`crate::Cancel`]): it is
    /// not done, and it is not worth trying again in this run.
    pub interrupted: bool,
    /// The cause, where there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            field: None,
            retried: false,
            interrupted: false,
            source: None,
        }
    }

    /// A call that gave up waiting because the run was interrupted: transient (it is not done,
    /// and nothing in it is wrong), and marked retried and [`Error::interrupted`] so that the
    /// engine does not try it again in this run.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Transient, message)
            .retried()
            .cut_short()
    }

    /// Marks the error as one the provider already retried.
    pub fn retried(mut self) -> Self {
        self.retried = true;
        self
    }

    /// Marks the error as the end of a wait the run's interrupt cut short (see
    /// [`Error::interrupted`]).
    pub fn cut_short(mut self) -> Self {
        self.interrupted = true;
        self.retried = true;
        self
    }

    /// Names the field of the request the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error for another call that met it (every change of a refused batch): kind,
    /// message, field and whether it was retried or interrupted; the source stays with the
    /// original.
    pub fn duplicate(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            field: self.field.clone(),
            retried: self.retried,
            interrupted: self.interrupted,
            source: None,
        }
    }

    /// The error with its cause attached.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O error with what was being done, classified by its kind.
    pub fn io(doing: impl fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::Unauthorized,
            Io::Interrupted | Io::TimedOut | Io::WouldBlock => ErrorKind::Transient,
            Io::AlreadyExists => ErrorKind::Conflict,
            _ => ErrorKind::Fatal,
        };
        Error::new(kind, format!("{doing}: {err}"))
    }
}
