//! Users and tokens. Passwords are hashed with argon2id; `POST /v1/auth/token` trades a
//! name and password for a signed token (JWT, HS256) whose secret is made at first start
//! and kept in the data directory. Both files are written atomically.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

/// What a user may do beyond the basics.
#[derive(utoipa::ToSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, users included.
    Admin,
    /// Create destinations (which they then own), publish and consume.
    User,
}

/// What a user may do, as patterns over destination names: `*` matches any run of
/// characters (`orders.*`, `*`). Admins may do everything regardless.
#[derive(utoipa::ToSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Permissions {
    /// Destinations the user may publish to.
    pub publish: Vec<String>,
    /// Destinations the user may receive from, ack, peek, and subscribe to.
    pub consume: Vec<String>,
    /// Destinations the user may create, and delete or purge even when not the owner.
    pub manage: Vec<String>,
}

/// An action on a destination that needs a permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Publishing.
    Publish,
    /// Receiving, acking, peeking, subscribing.
    Consume,
    /// Creating, deleting, purging.
    Manage,
}

/// Whether `name` matches a pattern where `*` stands for any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return false };
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Who a request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: Role,
    /// The user's permissions.
    pub permissions: Permissions,
}

impl Principal {
    /// Whether this principal may do `action` on destination `name`.
    pub fn may(&self, action: Action, name: &str) -> bool {
        let patterns = match action {
            Action::Publish => &self.permissions.publish,
            Action::Consume => &self.permissions.consume,
            Action::Manage => &self.permissions.manage,
        };
        self.role == Role::Admin || patterns.iter().any(|p| matches(p, name))
    }

    /// Whether this principal may delete or purge a destination owned by `owner`.
    pub fn manages(&self, name: &str, owner: &str) -> bool {
        self.name == owner || self.may(Action::Manage, name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    password_hash: String,
    role: Role,
    #[serde(default)]
    permissions: Permissions,
}

/// A user as an admin sees it.
#[derive(utoipa::ToSchema, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The permissions.
    pub permissions: Permissions,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iat: u64,
    exp: u64,
}

/// Why authentication failed. Deliberately vague towards the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong name or password.
    #[error("invalid username or password")]
    BadCredentials,
    /// A token that is malformed, forged, or for a user that is gone.
    #[error("invalid token")]
    BadToken,
    /// A token past its expiry.
    #[error("token has expired")]
    Expired,
    /// The only admin cannot be deleted.
    #[error("the last admin cannot be deleted")]
    LastAdmin,
    /// The users file could not be written.
    #[error("storage: {0}")]
    Storage(String),
}

/// The user store and the token signer.
pub struct Auth {
    path: PathBuf,
    users: RwLock<BTreeMap<String, User>>,
    keys_path: PathBuf,
    keys: RwLock<BTreeMap<String, StoredKey>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: u64,
    /// Tokens whose signature was checked, with their subject and expiry. Checking a
    /// signature (base64, HMAC-SHA256, JSON) costs more than a whole receive of a busy
    /// client, which sends the same token with every request. Emptied when full.
    verified: Mutex<HashMap<String, (String, u64)>>,
}

/// The most tokens [`Auth`] remembers as verified.
const VERIFIED_TOKENS: usize = 4096;

const USERS_FILE: &str = "users";
const KEYS_FILE: &str = "apikeys";
/// API keys look like `fk_<id>_<secret>`.
const KEY_PREFIX: &str = "fk_";

/// An API key as stored: only a hash of its secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredKey {
    owner: String,
    label: String,
    created_at: u64,
    secret_sha256: String,
}

/// An API key as its owner sees it (without the secret).
#[derive(utoipa::ToSchema, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    /// The key's id (the part after `fk_`, before the secret).
    pub id: String,
    /// Whose identity and permissions it carries.
    pub owner: String,
    /// A label of the owner's choosing.
    pub label: String,
    /// When it was made (milliseconds since the epoch).
    pub created_at: u64,
}

fn sha256_hex(data: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, data.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
const SECRET_FILE: &str = "token.secret";

fn storage(e: impl std::fmt::Display) -> AuthError {
    AuthError::Storage(e.to_string())
}

fn hash(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(storage)
}

fn now_secs() -> u64 {
    ferry_broker::now_ms() / 1000
}

impl Auth {
    /// Opens the store in `dir`, creating the token secret and the admin account on first
    /// start. Returns the generated admin password if one had to be made.
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`] if the files cannot be read or written.
    pub fn open(
        dir: &Path,
        admin_user: &str,
        admin_password: Option<&str>,
        ttl_secs: u64,
    ) -> Result<(Auth, Option<String>), AuthError> {
        let secret_path = dir.join(SECRET_FILE);
        let secret = match ferry_log::snapshot::read(&secret_path).map_err(storage)? {
            Some(s) => s.to_vec(),
            None => {
                let s = Alphanumeric.sample_string(&mut rand::thread_rng(), 64).into_bytes();
                ferry_log::snapshot::write(&secret_path, &s).map_err(storage)?;
                s
            }
        };
        let path = dir.join(USERS_FILE);
        let users: BTreeMap<String, User> = match ferry_log::snapshot::read(&path).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage)?,
            None => BTreeMap::new(),
        };
        let keys_path = dir.join(KEYS_FILE);
        let keys: BTreeMap<String, StoredKey> = match ferry_log::snapshot::read(&keys_path).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage)?,
            None => BTreeMap::new(),
        };
        let auth = Auth {
            path,
            users: RwLock::new(users),
            keys_path,
            keys: RwLock::new(keys),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            ttl_secs,
            verified: Mutex::new(HashMap::new()),
        };
        let mut generated = None;
        if auth.read_users().is_empty() {
            let password = match admin_password {
                Some(p) => p.to_string(),
                None => {
                    let p = Alphanumeric.sample_string(&mut rand::thread_rng(), 20);
                    generated = Some(p.clone());
                    p
                }
            };
            auth.write_users(|u| {
                let user =
                    User { password_hash: hash(&password)?, role: Role::Admin, permissions: Permissions::default() };
                u.insert(admin_user.to_string(), user);
                Ok(())
            })?;
        }
        Ok((auth, generated))
    }

    fn read_users(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, User>> {
        self.users.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the users under the lock and saves them; nothing changes if saving fails.
    fn write_users(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, User>) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = users.clone();
        f(&mut next)?;
        let bytes = serde_json::to_vec(&next).map_err(storage)?;
        ferry_log::snapshot::write(&self.path, &bytes).map_err(storage)?;
        *users = next;
        Ok(())
    }

    /// Checks a name and password and returns a signed token valid for the configured time,
    /// with its lifetime in seconds. Slow on purpose (argon2id): call it off the runtime.
    ///
    /// # Errors
    ///
    /// [`AuthError::BadCredentials`].
    pub fn login(&self, name: &str, password: &str) -> Result<(String, u64), AuthError> {
        let user = self.read_users().get(name).cloned();
        let Some(user) = user else {
            // The same work as for a real user, so that timing does not tell names apart.
            let _ = hash(password);
            return Err(AuthError::BadCredentials);
        };
        let parsed = PasswordHash::new(&user.password_hash).map_err(storage)?;
        Argon2::default().verify_password(password.as_bytes(), &parsed).map_err(|_| AuthError::BadCredentials)?;
        let iat = now_secs();
        let claims = Claims { sub: name.to_string(), role: user.role, iat, exp: iat + self.ttl_secs };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding).map_err(storage)?;
        Ok((token, self.ttl_secs))
    }

    /// The principal a token speaks for.
    ///
    /// # Errors
    ///
    /// [`AuthError::BadToken`] or [`AuthError::Expired`].
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(key) = token.strip_prefix(KEY_PREFIX) {
            return self.verify_key(key);
        }
        let known = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned();
        let sub = match known {
            // As jsonwebtoken checks it, with no leeway.
            Some((_, exp)) if exp < now_secs() => return Err(AuthError::Expired),
            Some((sub, _)) => sub,
            None => {
                let mut validation = Validation::default();
                validation.leeway = 0;
                let data =
                    jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                        _ => AuthError::BadToken,
                    })?;
                let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
                verified.insert(token.to_string(), (data.claims.sub.clone(), data.claims.exp));
                data.claims.sub
            }
        };
        // A deleted user's tokens stop working at once; changed roles and permissions take
        // effect at once too.
        self.principal(&sub)
    }

    fn principal(&self, name: &str) -> Result<Principal, AuthError> {
        let users = self.read_users();
        let user = users.get(name).ok_or(AuthError::BadToken)?;
        Ok(Principal { name: name.to_string(), role: user.role, permissions: user.permissions.clone() })
    }

    fn verify_key(&self, key: &str) -> Result<Principal, AuthError> {
        let (id, secret) = key.split_once('_').ok_or(AuthError::BadToken)?;
        let owner = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            let stored = keys.get(id).ok_or(AuthError::BadToken)?;
            // Comparing hashes: how long the comparison takes says nothing useful about the
            // secret.
            if stored.secret_sha256 != sha256_hex(secret) {
                return Err(AuthError::BadToken);
            }
            stored.owner.clone()
        };
        // The key acts as its owner, with the owner's current role and permissions.
        self.principal(&owner)
    }

    fn write_keys(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, StoredKey>) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = keys.clone();
        f(&mut next)?;
        let bytes = serde_json::to_vec(&next).map_err(storage)?;
        ferry_log::snapshot::write(&self.keys_path, &bytes).map_err(storage)?;
        *keys = next;
        Ok(())
    }

    /// Makes an API key for `owner` and returns it whole; only its hash is kept, so this is
    /// the only time anyone sees it.
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`].
    pub fn create_key(&self, owner: &str, label: &str) -> Result<(ApiKeyInfo, String), AuthError> {
        let id = Alphanumeric.sample_string(&mut rand::thread_rng(), 12);
        let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);
        let stored = StoredKey {
            owner: owner.to_string(),
            label: label.to_string(),
            created_at: ferry_broker::now_ms(),
            secret_sha256: sha256_hex(&secret),
        };
        let info =
            ApiKeyInfo { id: id.clone(), owner: owner.into(), label: label.into(), created_at: stored.created_at };
        self.write_keys(|k| {
            k.insert(id.clone(), stored);
            Ok(())
        })?;
        Ok((info, format!("{KEY_PREFIX}{id}_{secret}")))
    }

    /// The API keys of `owner`, or everyone's with `None`.
    pub fn keys(&self, owner: Option<&str>) -> Vec<ApiKeyInfo> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .filter(|(_, k)| owner.is_none_or(|o| k.owner == o))
            .map(|(id, k)| ApiKeyInfo {
                id: id.clone(),
                owner: k.owner.clone(),
                label: k.label.clone(),
                created_at: k.created_at,
            })
            .collect()
    }

    /// Deletes an API key; its owner if it existed.
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`].
    pub fn delete_key(&self, id: &str) -> Result<Option<String>, AuthError> {
        let mut owner = None;
        self.write_keys(|k| {
            owner = k.remove(id).map(|k| k.owner);
            Ok(())
        })?;
        Ok(owner)
    }

    /// Every user.
    pub fn users(&self) -> Vec<UserInfo> {
        self.read_users()
            .iter()
            .map(|(name, u)| UserInfo { name: name.clone(), role: u.role, permissions: u.permissions.clone() })
            .collect()
    }

    /// One user.
    pub fn user(&self, name: &str) -> Option<UserInfo> {
        self.read_users().get(name).map(|u| UserInfo {
            name: name.to_string(),
            role: u.role,
            permissions: u.permissions.clone(),
        })
    }

    /// Creates a user or replaces its password, role and permissions. Slow (argon2id).
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`].
    pub fn put_user(&self, name: &str, password: &str, role: Role, permissions: Permissions) -> Result<(), AuthError> {
        let password_hash = hash(password)?;
        self.write_users(|u| {
            u.insert(name.to_string(), User { password_hash, role, permissions });
            Ok(())
        })
    }

    /// Replaces a user's permissions; `false` if there is no such user.
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`].
    pub fn set_permissions(&self, name: &str, permissions: Permissions) -> Result<bool, AuthError> {
        let mut found = false;
        self.write_users(|u| {
            if let Some(user) = u.get_mut(name) {
                user.permissions = permissions;
                found = true;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Deletes a user; `false` if there was none. The last admin cannot be deleted.
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`], and [`AuthError::LastAdmin`].
    pub fn delete_user(&self, name: &str) -> Result<bool, AuthError> {
        let mut found = false;
        self.write_users(|u| {
            let admins = u.values().filter(|x| x.role == Role::Admin).count();
            if u.get(name).is_some_and(|x| x.role == Role::Admin) && admins == 1 {
                return Err(AuthError::LastAdmin);
            }
            found = u.remove(name).is_some();
            Ok(())
        })?;
        Ok(found)
    }

    /// A token for `name` that expired `ago_secs` seconds ago; for tests of expiry.
    #[doc(hidden)]
    pub fn expired_token(&self, name: &str, ago_secs: u64) -> String {
        let exp = now_secs().saturating_sub(ago_secs);
        let claims = Claims { sub: name.to_string(), role: Role::User, iat: exp.saturating_sub(60), exp };
        jsonwebtoken::encode(&Header::default(), &claims, &self.encoding).unwrap_or_default()
    }

    /// Creates a user unless the name is taken; `false` (and nothing changed) if it is.
    /// The check and the insert happen under one lock, so two creations of one name cannot
    /// both succeed. Slow (argon2id).
    ///
    /// # Errors
    ///
    /// [`AuthError::Storage`].
    pub fn create_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
        permissions: Permissions,
    ) -> Result<bool, AuthError> {
        // The usual case of a taken name, without the hashing and the write.
        if self.read_users().contains_key(name) {
            return Ok(false);
        }
        let password_hash = hash(password)?;
        let mut created = false;
        self.write_users(|u| {
            if !u.contains_key(name) {
                u.insert(name.to_string(), User { password_hash, role, permissions });
                created = true;
            }
            Ok(())
        })?;
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "anything"));
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders2"));
        assert!(matches("orders.*", "orders.eu"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches("*.dlq", "jobs.dlq"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-x-c"));
    }

    #[test]
    fn first_start_makes_an_admin_and_later_starts_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, generated) = Auth::open(dir.path(), "admin", None, 60).unwrap();
        let password = generated.expect("a generated password");
        let (token, ttl) = auth.login("admin", &password).unwrap();
        assert_eq!(ttl, 60);
        let admin = auth.verify(&token).unwrap();
        assert_eq!((admin.name.as_str(), admin.role), ("admin", Role::Admin));
        assert_eq!(auth.login("admin", "wrong").unwrap_err(), AuthError::BadCredentials);
        assert_eq!(auth.login("nobody", &password).unwrap_err(), AuthError::BadCredentials);
        assert_eq!(auth.verify("not.a.token").unwrap_err(), AuthError::BadToken);
        assert_eq!(auth.verify(&auth.expired_token("admin", 10)).unwrap_err(), AuthError::Expired);
        drop(auth);
        let (again, generated) = Auth::open(dir.path(), "admin", Some("ignored now"), 60).unwrap();
        assert!(generated.is_none());
        // The secret persisted: the old token still verifies.
        assert!(again.verify(&token).is_ok());
        assert!(again.login("admin", &password).is_ok());
    }

    #[test]
    fn a_remembered_token_still_expires_and_still_dies_with_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, _) = Auth::open(dir.path(), "admin", Some("admin-password"), 60).unwrap();
        assert!(auth.create_user("ann", "ann-password", Role::User, Permissions::default()).unwrap());
        let (token, _) = auth.login("ann", "ann-password").unwrap();
        assert_eq!(auth.verify(&token).unwrap().name, "ann");
        // Verified once, the token is remembered; its expiry is still checked.
        auth.verified.lock().unwrap().get_mut(&token).unwrap().1 = now_secs() - 1;
        assert_eq!(auth.verify(&token).unwrap_err(), AuthError::Expired);
        assert!(auth.create_user("bob", "bob-password", Role::User, Permissions::default()).unwrap());
        let (token, _) = auth.login("bob", "bob-password").unwrap();
        assert!(auth.verify(&token).is_ok());
        assert!(auth.delete_user("bob").unwrap());
        assert_eq!(auth.verify(&token).unwrap_err(), AuthError::BadToken);
        // Forged tokens are never remembered.
        let forged = format!("{}x", token);
        assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::BadToken);
        assert!(!auth.verified.lock().unwrap().contains_key(&forged));
    }
}
