//! Brute-force protection for `POST /v1/auth/token`: after a few failed logins for one user
//! name, further attempts for it are refused (429) for a while, doubling with each failure,
//! whether or not the password is right. A success resets the count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before the lockout starts.
const FREE_FAILURES: u32 = 5;
/// The first lockout; each further failure doubles it.
const FIRST_LOCKOUT: Duration = Duration::from_secs(1);
/// The longest lockout.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Names remembered at most, so that guessing random names cannot fill memory.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// How long `name` must still wait before it may try again, if at all.
    pub(crate) fn wait(&self, name: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let &(count, last) = failures.get(name)?;
        let lockout = lockout(count)?;
        lockout.checked_sub(last.elapsed())
    }

    pub(crate) fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED && !failures.contains_key(name) {
            // Forget lockouts that have run out first; if none have, forget them all rather
            // than grow without bound.
            failures.retain(|_, (count, last)| lockout(*count).is_some_and(|l| last.elapsed() < l));
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        let entry = failures.entry(name.to_string()).or_insert((0, Instant::now()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
    }

    pub(crate) fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
    }
}

fn lockout(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    Some(FIRST_LOCKOUT.saturating_mul(1u32.checked_shl(over).unwrap_or(u32::MAX)).min(MAX_LOCKOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_the_free_failures_and_resets_on_success() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("ann");
        }
        assert_eq!(t.wait("ann"), None);
        t.failed("ann");
        assert!(t.wait("ann").is_some());
        assert_eq!(t.wait("bob"), None);
        t.succeeded("ann");
        assert_eq!(t.wait("ann"), None);
        assert_eq!(lockout(FREE_FAILURES), Some(FIRST_LOCKOUT));
        assert_eq!(lockout(FREE_FAILURES + 3), Some(FIRST_LOCKOUT * 8));
        assert_eq!(lockout(200), Some(MAX_LOCKOUT));
    }
}
