//! Names of destinations and subscriptions, and subject filters.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Checks a destination, subscription or user name: `^[A-Za-z0-9_.-]{1,255}$`, except `.`
/// and `..`, which no URL path can carry as a segment (clients resolve them away), so that
/// every name can be reached over REST.
pub fn check(name: &str) -> Result<()> {
    let ok = (1..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName { name: name.chars().take(300).collect() })
    }
}

/// A subject filter: dot-separated tokens where `*` matches exactly one token and a final
/// `>` matches one or more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectFilter {
    tokens: Vec<String>,
}

impl SubjectFilter {
    /// Parses a filter such as `orders.*.paid` or `orders.>`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for empty tokens or a `>` that is not last.
    pub fn parse(filter: &str) -> Result<SubjectFilter> {
        let tokens: Vec<String> = filter.split('.').map(str::to_string).collect();
        let bad = |reason: &str| Err(Error::invalid("filter", format!("{filter:?}: {reason}")));
        if filter.is_empty() || filter.len() > 1024 {
            return bad("must be 1 to 1024 characters");
        }
        if tokens.iter().any(String::is_empty) {
            return bad("empty token");
        }
        if tokens.iter().rev().skip(1).any(|t| t == ">") {
            return bad("'>' may only be the last token");
        }
        Ok(SubjectFilter { tokens })
    }

    /// Whether `subject` matches.
    pub fn matches(&self, subject: &str) -> bool {
        let mut parts = subject.split('.');
        for (i, t) in self.tokens.iter().enumerate() {
            if t == ">" {
                return i < self.tokens.len() && parts.next().is_some();
            }
            match parts.next() {
                Some(p) if t == "*" || t == p => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check("orders").is_ok());
        assert!(check("a.B-c_9").is_ok());
        assert!(check("...").is_ok());
        assert!(check(".hidden").is_ok());
        assert!(check(&"x".repeat(255)).is_ok());
        for bad in ["", "a b", "a/b", "ü", ".", "..", &"x".repeat(256)] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters() {
        let f = SubjectFilter::parse("a.*.c").unwrap();
        assert!(f.matches("a.b.c"));
        assert!(!f.matches("a.b"));
        assert!(!f.matches("a.b.c.d"));
        assert!(!f.matches("x.b.c"));
        let f = SubjectFilter::parse("a.>").unwrap();
        assert!(f.matches("a.b"));
        assert!(f.matches("a.b.c"));
        assert!(!f.matches("a"));
        assert!(!f.matches("b.c"));
        let f = SubjectFilter::parse("a").unwrap();
        assert!(f.matches("a"));
        assert!(!f.matches("a.b"));
        for bad in ["", "a..b", "a.>.b", ".a"] {
            assert!(SubjectFilter::parse(bad).is_err(), "{bad}");
        }
    }
}
