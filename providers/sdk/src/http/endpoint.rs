//! One HTTP API as a provider talks to it: its base URL and credentials, the agent with its
//! timeouts, the requests allowed in flight and per window, the retry policy, the run's cancel
//! signal, and the loop that puts them together (retry → slot → send → judge).
//!
//! What differs between APIs is only how they word an answer: a provider writes a [`Dialect`]
//! (its error envelope, its own error type where it needs more than [`Error`]) and its requests.

use std::fmt;
use std::time::Duration;

use super::{
    Answer, Attempt, Budget, Credential, Method, Noted, Request, Retry, Slots, agent, judge,
    retrying, send,
};
use crate::{Cancel, Error};

/// How a provider's API words its answers.
pub trait Dialect: Send + Sync {
    /// What a successful call gives back (the body, or the envelope already parsed).
    type Output;
    /// What a failed call gives back: [`Error`], or a type of the provider's own that keeps
    /// more of the answer for its decisions (Cloudflare's error codes) and is made from an
    /// [`Error`] where there was no answer.
    type Failure: Noted + From<Error>;

    /// A 2xx answer to `what` (`GET https://…`) as the call's output, or a failure where the
    /// API says in the body that the call failed after all (`success: false`).
    ///
    /// # Errors
    /// Such a failure, or a body that is not what the API promises.
    fn accepted(&self, what: &str, answer: Answer) -> Result<Self::Output, Self::Failure>;

    /// The failure for an answer outside 2xx to `what`, in the API's words: its kind from the
    /// status and whatever the body says.
    fn refused(&self, what: &str, answer: &Answer) -> Self::Failure;
}

/// What is fixed about an API for a provider.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The provider's name: its `providers.<name>` block is where `rate_limit_wait` is raised.
    pub provider: &'static str,
    /// The other side in messages: "Cloudflare", "the server".
    pub server: &'static str,
    /// The `User-Agent` header.
    pub user_agent: &'static str,
    /// A connection that takes longer than this to open is not going to open.
    pub connect_timeout: Duration,
    /// One request, from connecting to the last byte of the answer.
    pub request_timeout: Duration,
    /// The most of an answer's body that is read.
    pub body_limit: u64,
    /// Requests in flight at once (per configured provider).
    pub max_in_flight: usize,
}

/// One API a provider talks to (see the module's doc).
pub struct Endpoint<D> {
    settings: Settings,
    agent: ureq::Agent,
    /// Every request's URL starts with this; no trailing `/`.
    base: String,
    headers: Vec<(&'static str, Credential)>,
    retry: Retry,
    slots: Slots,
    budget: Option<Budget>,
    cancel: Cancel,
    dialect: D,
}

impl<D> fmt::Debug for Endpoint<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> Endpoint<D> {
    /// An endpoint at `base` (already checked, see [`super::base_url`]), speaking `dialect`,
    /// retrying as `retry` says, its waits ended by `cancel`.
    pub fn new(
        settings: Settings,
        base: impl Into<String>,
        dialect: D,
        retry: Retry,
        cancel: Cancel,
    ) -> Self {
        Endpoint {
            agent: agent(
                settings.user_agent,
                settings.connect_timeout,
                settings.request_timeout,
            ),
            base: base.into(),
            headers: Vec::new(),
            retry,
            slots: Slots::new(settings.max_in_flight),
            budget: None,
            cancel,
            dialect,
            settings,
        }
    }

    /// Sends `name: value` with every request (the credentials: never shown).
    pub fn header(mut self, name: &'static str, value: Credential) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Spends `budget` for every attempt, and pauses it for everyone when a 429 says to wait.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Where every request's URL starts.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The run's cancel signal, for the provider's own waits (a deployment polled).
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// One request to `<base><path>`, tried again on connection failures, 429 and 5xx (a POST
    /// only where the server cannot have acted on it), rate limits waited out for as long as
    /// [`Retry::rate_limit_wait`] allows, every wait ended by the cancel signal. `body` is JSON.
    ///
    /// # Errors
    /// The dialect's failure for the last answer, or for no answer, noted with why no more
    /// attempts were made; [`Error::interrupted`] when the run was interrupted while it waited.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<D::Output, D::Failure> {
        let url = format!("{}{path}", self.base);
        let what = format!("{} {url}", method.as_str());
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (*name, value.expose()))
            .collect();
        let request = Request {
            method,
            url: &url,
            headers: &headers,
            query,
            body,
        };
        let Settings {
            provider,
            server,
            body_limit,
            ..
        } = self.settings;
        retrying(&self.retry, &self.cancel, server, provider, || {
            if let Some(budget) = &self.budget
                && budget.take(&self.cancel).is_err()
            {
                return Attempt::Done(Err(Error::interrupted(format!(
                    "{what}: interrupted while waiting for the request budget; not sent"
                ))
                .into()));
            }
            let outcome = {
                let _slot = self.slots.acquire();
                send(&self.agent, request, body_limit)
            };
            judge(
                method,
                outcome,
                |answer| self.dialect.accepted(&what, answer),
                |answer| {
                    if answer.status == 429
                        && let Some(budget) = &self.budget
                    {
                        // Every request of this client waits, not only this one.
                        budget.pause(answer.retry_after.unwrap_or(Duration::from_secs(1)));
                    }
                    self.dialect.refused(&what, answer)
                },
                |failure| Error::new(failure.kind, format!("{what}: {}", failure.message)).into(),
            )
        })
    }
}
