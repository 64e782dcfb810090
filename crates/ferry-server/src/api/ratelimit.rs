//! Request rate limits per principal on `/v1`: a token bucket per user name, refilled at
//! `limits.requests_per_second` up to `limits.burst`. An empty bucket answers 429 with a
//! `Retry-After`, before the request does anything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets remembered at most; full ones are forgotten first.
const MAX_TRACKED: usize = 100_000;

pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when the rate is 0 (no limit).
    pub(crate) fn new(per_sec: u32, burst: Option<u32>) -> Option<RateLimiter> {
        (per_sec > 0).then(|| RateLimiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.unwrap_or(per_sec.saturating_mul(2)).max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `who`; when there is none, how long until there will be.
    pub(crate) fn take(&self, who: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(who) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * per_sec < burst);
        }
        let (tokens, at) = buckets.entry(who.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        assert!(RateLimiter::new(0, None).is_none());
        let r = RateLimiter::new(1, Some(2)).unwrap();
        assert!(r.take("ann").is_ok());
        assert!(r.take("ann").is_ok());
        let wait = r.take("ann").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(r.take("bob").is_ok(), "buckets are per principal");
    }
}
