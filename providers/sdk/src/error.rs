//! Provider errors carry a kind, so the engine decides what to do from the kind, never from text.

use std::fmt;

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
    pub kind: ErrorKind,
    pub message: String,
    /// The provider already tried the call again for as long as made sense (its own backoff,
    /// `Retry-After`): the engine does not multiply those attempts by its own.
    pub retried: bool,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retried: false,
            source: None,
        }
    }

    /// Marks the error as one the provider already retried.
    pub fn retried(mut self) -> Self {
        self.retried = true;
        self
    }

    /// The same error for another call that met it (every change of a refused batch): kind,
    /// message and whether it was retried; the source stays with the original.
    pub fn duplicate(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            retried: self.retried,
            source: None,
        }
    }

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
