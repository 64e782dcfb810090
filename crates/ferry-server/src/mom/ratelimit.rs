//! The MOM API's rate limits, as the reference's slowapi counts them: per client IP and
//! request path, in a fixed 60 s window that starts with the first counted request. A
//! request over the limit is refused (429) and does nothing; the window does not slide,
//! so the count starts again from zero once it is over. This is not the `/v1` token bucket
//! (`api::ratelimit`): the semantics differ on purpose.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window of every limit.
const WINDOW: Duration = Duration::from_secs(60);
/// Windows remembered at most. Past it, finished windows are forgotten first, then the
/// oldest: memory stays bounded whatever paths clients make up.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub(crate) struct FixedWindow {
    windows: Mutex<HashMap<(String, String), (Instant, u32)>>,
}

impl FixedWindow {
    /// Counts one request from `ip` to `path`; `false` if it is over `per_minute` in the
    /// current window.
    pub(crate) fn hit(&self, ip: &str, path: &str, per_minute: u32) -> bool {
        self.hit_at(ip, path, per_minute, Instant::now())
    }

    fn hit_at(&self, ip: &str, path: &str, per_minute: u32, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (ip.to_string(), path.to_string());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                let oldest = windows.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
            }
        }
        let (start, count) = windows.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
        *count <= per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_window_per_ip_and_path() {
        let w = FixedWindow::default();
        let t0 = Instant::now();
        assert!(w.hit_at("1.2.3.4", "/p", 2, t0));
        assert!(w.hit_at("1.2.3.4", "/p", 2, t0 + Duration::from_secs(30)));
        assert!(!w.hit_at("1.2.3.4", "/p", 2, t0 + Duration::from_secs(59)), "third in the window");
        assert!(w.hit_at("1.2.3.4", "/q", 2, t0), "another path counts apart");
        assert!(w.hit_at("5.6.7.8", "/p", 2, t0), "another client counts apart");
        // The window is fixed from its first request, not sliding.
        assert!(w.hit_at("1.2.3.4", "/p", 2, t0 + Duration::from_secs(60)));
        assert!(w.hit_at("1.2.3.4", "/p", 2, t0 + Duration::from_secs(61)));
        assert!(!w.hit_at("1.2.3.4", "/p", 2, t0 + Duration::from_secs(62)));
    }
}
