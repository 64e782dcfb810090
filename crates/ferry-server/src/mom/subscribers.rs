//! Who subscribed to which MOM queue. A MOM queue is a ferry queue, but the reference also
//! keeps a set of subscribers per queue (receiving requires being in it) and ferry's broker
//! has no such notion, so the sets live here, in the data directory file `mom-subscribers`
//! (JSON, replaced atomically with `ferry_log::snapshot`, like the user store).
//!
//! A queue's owner is always subscribed (the reference subscribes the creator and never
//! lets the owner leave), so the file holds only the others. Each set remembers the
//! creation time of the queue it belongs to: a queue deleted and made again under the same
//! name (say through `/v1`) starts with no subscribers rather than inheriting the old ones.
//! Sets of queues that no longer exist are dropped at the next write.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

const FILE: &str = "mom-subscribers";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The `created_at` of the queue the set belongs to.
    created_at: u64,
    users: BTreeSet<String>,
}

type Sets = BTreeMap<String, Entry>;

pub(crate) struct Subscribers {
    path: PathBuf,
    /// `None` until read from the file (a failed read is retried on the next use).
    sets: RwLock<Option<Sets>>,
    /// One change at a time; readers are not held up while a change is saved.
    writer: Mutex<()>,
}

fn load(path: &Path) -> Result<Sets, String> {
    let what = |e: &dyn std::fmt::Display| format!("reading {}: {e}", path.display());
    match ferry_log::snapshot::read(path).map_err(|e| what(&e))? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| what(&e)),
        None => Ok(Sets::new()),
    }
}

impl Subscribers {
    /// The sets kept in `dir`, read now.
    pub(crate) fn open(dir: &Path) -> Subscribers {
        let s = Subscribers { path: dir.join(FILE), sets: RwLock::new(None), writer: Mutex::new(()) };
        if let Err(e) = s.read(|_| ()) {
            tracing::error!(error = %e, "cannot read the MOM queue subscribers; queue requests will fail until it can");
        }
        s
    }

    /// Runs `f` over the sets, reading them first if that has not been done yet.
    fn read<R>(&self, f: impl FnOnce(&Sets) -> R) -> Result<R, String> {
        {
            let sets = self.sets.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(sets) = sets.as_ref() {
                return Ok(f(sets));
            }
        }
        let mut sets = self.sets.write().unwrap_or_else(PoisonError::into_inner);
        let loaded = match sets.take() {
            Some(s) => s,
            None => load(&self.path)?,
        };
        Ok(f(sets.insert(loaded)))
    }

    /// Whether `user` subscribed to the queue `name` created at `created_at`.
    pub(crate) fn contains(&self, name: &str, created_at: u64, user: &str) -> Result<bool, String> {
        self.read(|sets| sets.get(name).is_some_and(|e| e.created_at == created_at && e.users.contains(user)))
    }

    /// Adds `user`; `false` if it was there already. `queues`: the queues that exist.
    pub(crate) fn add(
        &self,
        name: &str,
        created_at: u64,
        user: &str,
        queues: &HashSet<String>,
    ) -> Result<bool, String> {
        self.change(queues, |sets| {
            let entry = sets.entry(name.to_string()).or_default();
            if entry.created_at != created_at {
                *entry = Entry { created_at, users: BTreeSet::new() };
            }
            entry.users.insert(user.to_string())
        })
    }

    /// Removes `user`; `false` if it was not there.
    pub(crate) fn remove(
        &self,
        name: &str,
        created_at: u64,
        user: &str,
        queues: &HashSet<String>,
    ) -> Result<bool, String> {
        self.change(queues, |sets| match sets.get_mut(name) {
            Some(e) if e.created_at == created_at => e.users.remove(user),
            _ => false,
        })
    }

    /// Drops the sets of queues that no longer exist (after a delete).
    pub(crate) fn prune(&self, queues: &HashSet<String>) -> Result<(), String> {
        self.change(queues, |_| ())
    }

    /// Changes the sets and saves them; nothing changes if saving fails.
    fn change<R>(&self, queues: &HashSet<String>, f: impl FnOnce(&mut Sets) -> R) -> Result<R, String> {
        let _one_at_a_time = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.read(Sets::clone)?;
        let mut next = current.clone();
        let out = f(&mut next);
        next.retain(|name, e| queues.contains(name) && !e.users.is_empty());
        if next != current {
            let bytes = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
            ferry_log::snapshot::write(&self.path, &bytes)
                .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
            *self.sets.write().unwrap_or_else(PoisonError::into_inner) = Some(next);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_survive_reopening_and_follow_their_queue() {
        let dir = tempfile::tempdir().unwrap();
        let queues: HashSet<String> = ["q".to_string(), "r".to_string()].into();
        let s = Subscribers::open(dir.path());
        assert!(s.add("q", 7, "ann", &queues).unwrap());
        assert!(!s.add("q", 7, "ann", &queues).unwrap(), "already there");
        assert!(s.add("r", 9, "bob", &queues).unwrap());
        drop(s);

        let s = Subscribers::open(dir.path());
        assert!(s.contains("q", 7, "ann").unwrap());
        assert!(!s.contains("q", 8, "ann").unwrap(), "a queue made again starts empty");
        assert!(!s.remove("q", 8, "ann", &queues).unwrap());
        assert!(s.remove("q", 7, "ann", &queues).unwrap());
        assert!(!s.contains("q", 7, "ann").unwrap());
        // r is gone: its set goes at the next write.
        s.prune(&["q".to_string()].into()).unwrap();
        assert!(!s.contains("r", 9, "bob").unwrap());
        drop(s);
        assert!(!Subscribers::open(dir.path()).contains("r", 9, "bob").unwrap());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        ferry_log::snapshot::write(&dir.path().join(FILE), b"not json").unwrap();
        let s = Subscribers::open(dir.path());
        assert!(s.contains("q", 1, "ann").is_err());
        assert!(s.add("q", 1, "ann", &["q".to_string()].into()).is_err());
    }
}
