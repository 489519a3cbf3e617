//! Client-side limits on requests: how many may be in flight at once ([`Slots`]) and how many
//! may be sent per window ([`Budget`]).
//!
//! Some APIs punish a client that goes past its rate limit (Cloudflare refuses every call for
//! five minutes after 1,200 in five minutes), so the budget is spent no faster than it refills
//! and a large apply slows down instead of locking the account out.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{Cancel, Interrupted};

/// A counting semaphore: at most `max` requests in flight at once.
pub struct Slots {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// One request's place among the [`Slots`]; given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// Room for `max` requests at once.
    pub fn new(max: usize) -> Self {
        Slots {
            max,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free place. Not cancellable: what holds the places are requests in flight,
    /// which end within their timeout.
    pub fn acquire(&self) -> Slot<'_> {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *used >= self.max {
            used = self
                .freed
                .wait(used)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *used += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self
            .0
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used -= 1;
        self.0.freed.notify_one();
    }
}

/// A token bucket: `capacity` requests at once, refilled at `capacity` per `window`, and
/// paused for everyone when the server says to wait.
pub struct Budget {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl Budget {
    /// `capacity` requests per `window`, the bucket full at first.
    pub fn new(capacity: u32, window: Duration) -> Self {
        let capacity = f64::from(capacity);
        Budget {
            capacity,
            per_second: capacity / window.as_secs_f64().max(0.001),
            state: Mutex::new(Bucket {
                tokens: capacity,
                last: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits until one request may be sent, and counts it.
    ///
    /// # Errors
    /// [`Interrupted`] when the run is interrupted first: nothing is counted.
    pub fn take(&self, cancel: &Cancel) -> Result<(), Interrupted> {
        loop {
            let wait = {
                let mut bucket = self
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let refill = now.duration_since(bucket.last).as_secs_f64() * self.per_second;
                bucket.tokens = (bucket.tokens + refill).min(self.capacity);
                bucket.last = now;
                match bucket.paused_until {
                    Some(until) if until > now => until - now,
                    _ if bucket.tokens >= 1.0 => {
                        bucket.tokens -= 1.0;
                        return Ok(());
                    }
                    _ => Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second),
                }
            };
            cancel.sleep(wait.min(Duration::from_secs(1)))?;
        }
    }

    /// Holds every request for `wait` (a 429 answered one of them).
    pub fn pause(&self, wait: Duration) {
        let mut bucket = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = Instant::now() + wait;
        if bucket.paused_until.is_none_or(|u| u < until) {
            bucket.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_paces_requests_once_the_bucket_is_empty() {
        let budget = Budget::new(5, Duration::from_millis(500));
        let cancel = Cancel::new();
        let started = Instant::now();
        for _ in 0..5 {
            budget.take(&cancel).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "a full bucket"
        );
        for _ in 0..5 {
            budget.take(&cancel).unwrap();
        }
        // Five more refill at 10 per second.
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[test]
    fn a_pause_holds_every_request() {
        let budget = Budget::new(100, Duration::from_secs(1));
        budget.pause(Duration::from_millis(300));
        let started = Instant::now();
        budget.take(&Cancel::new()).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(290));
    }

    #[test]
    fn a_cancel_ends_the_wait_for_the_budget_without_counting() {
        let budget = Budget::new(1, Duration::from_secs(60));
        let cancel = Cancel::new();
        budget.take(&cancel).unwrap();
        cancel.cancel();
        let started = Instant::now();
        assert_eq!(budget.take(&cancel), Err(Interrupted));
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
