//! Bearer tokens and what each identity may do.
//!
//! Tokens are random 256-bit strings; only their SHA-256 is stored, in the
//! `tokens` table of the server's database, so reading the data directory
//! does not reveal a usable credential. Two kinds of identity exist:
//! `admin` (everything), `cluster:<id>` (read everything but Secrets; write
//! only objects labelled `ferry.dev/cluster=<id>`, and never change that
//! label), and `joiner` (read everything but Secrets; create ServiceAccounts
//! labelled with a cluster id and request their tokens — the credential
//! `ferry join` uses to mint a cluster's own token).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The label a `cluster:<id>` identity must carry on everything it writes.
pub const CLUSTER_LABEL: &str = "ferry.dev/cluster";

/// The label (value `true`) of the ServiceAccount whose TokenRequest tokens
/// stand for `joiner`; only `admin` may request them.
pub const JOINER_LABEL: &str = "ferry.dev/joiner";

/// Whether `identity` may read (get, list, watch) `resource` of API `group`.
/// Everything but Secrets is readable by every identity; Secrets hold
/// credentials (when the broker is also a member cluster, that cluster's own
/// broker token), so only `admin` reads them: a `joiner` or `cluster:<id>`
/// token can do what `join` and the agent need and cannot become another
/// cluster.
pub fn check_read(identity: &Identity, group: &str, resource: &str) -> Result<()> {
    if group.is_empty() && resource == "secrets" && *identity != Identity::Admin {
        return Err(Error::Forbidden(format!(
            "secrets is forbidden: User \"{identity}\" cannot read resource \"secrets\": only admin reads Secrets"
        )));
    }
    Ok(())
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Admin,
    Cluster(String),
    Joiner,
}

impl Identity {
    /// Parses the stored form (`admin`, `cluster:<id>`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Identity::Admin),
            "joiner" => Some(Identity::Joiner),
            _ => s
                .strip_prefix("cluster:")
                .filter(|id| !id.is_empty())
                .map(|id| Identity::Cluster(id.to_string())),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Admin => f.write_str("admin"),
            Identity::Joiner => f.write_str("joiner"),
            Identity::Cluster(id) => write!(f, "cluster:{id}"),
        }
    }
}

/// Token storage and lookup, with a cache of known tokens.
pub struct TokenStore {
    conn: Mutex<Connection>,
    cache: Mutex<HashMap<String, Identity>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenStore")
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    /// Opens the token table in the database at `path` (creating it).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tokens (
                hash     TEXT PRIMARY KEY,
                identity TEXT NOT NULL,
                created  TEXT NOT NULL
            );",
        )?;
        Ok(TokenStore {
            conn: Mutex::new(conn),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Mints a new token for `identity` and returns it; only its hash is kept.
    pub fn create(&self, identity: &Identity) -> Result<String> {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = format!(
            "ferry-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO tokens (hash, identity, created) VALUES (?1, ?2, ?3)",
            params![
                hash(&token),
                identity.to_string(),
                chrono::Utc::now().to_rfc3339()
            ],
        )?;
        Ok(token)
    }

    /// True when at least one admin token exists.
    pub fn has_admin(&self) -> Result<bool> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(conn
            .query_row(
                "SELECT 1 FROM tokens WHERE identity = 'admin' LIMIT 1",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The identity a bearer token stands for, if any.
    pub fn authenticate(&self, token: &str) -> Result<Option<Identity>> {
        let h = hash(token);
        if let Some(id) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&h) {
            return Ok(Some(id.clone()));
        }
        // Tokens may be minted by `ferry apiserver token create` in another
        // process while we run, so a miss goes to the database.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let identity: Option<String> = conn
            .query_row(
                "SELECT identity FROM tokens WHERE hash = ?1",
                params![h],
                |r| r.get(0),
            )
            .optional()?;
        let Some(identity) = identity.as_deref().and_then(Identity::parse) else {
            return Ok(None);
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h, identity.clone());
        Ok(Some(identity))
    }
}

/// Whether `identity` may write an object whose labels were `old` (None on
/// create) and become `new` (None on delete).
pub fn check_write(
    identity: &Identity,
    resource: &str,
    name: &str,
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
) -> Result<()> {
    let id = match identity {
        Identity::Admin => return Ok(()),
        Identity::Cluster(id) => id,
        Identity::Joiner => {
            let labelled = |labels: &BTreeMap<String, String>| {
                labels.get(CLUSTER_LABEL).is_some_and(|v| !v.is_empty())
            };
            if resource == "serviceaccounts" && old.is_none_or(labelled) && new.is_none_or(labelled)
            {
                return Ok(());
            }
            return Err(Error::Forbidden(format!(
                "{resource} \"{name}\" is forbidden: User \"joiner\" may only write ServiceAccounts labelled {CLUSTER_LABEL}"
            )));
        }
    };
    let owns = |labels: &BTreeMap<String, String>| {
        labels.get(CLUSTER_LABEL).map(String::as_str) == Some(id.as_str())
    };
    let allowed = old.is_none_or(owns) && new.is_none_or(owns);
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{resource} \"{name}\" is forbidden: User \"{identity}\" may only write objects labelled {CLUSTER_LABEL}={id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = TokenStore::open(&path).unwrap();
        assert!(!store.has_admin().unwrap());
        let admin = store.create(&Identity::Admin).unwrap();
        let c1 = store.create(&Identity::Cluster("c1".into())).unwrap();
        assert!(store.has_admin().unwrap());
        assert_eq!(store.authenticate(&admin).unwrap(), Some(Identity::Admin));
        assert_eq!(
            store.authenticate(&c1).unwrap(),
            Some(Identity::Cluster("c1".into()))
        );
        assert_eq!(store.authenticate("nope").unwrap(), None);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(admin.len()).any(|w| w == admin.as_bytes()));
    }

    #[test]
    fn only_admin_reads_secrets() {
        assert!(check_read(&Identity::Admin, "", "secrets").is_ok());
        for who in [Identity::Joiner, Identity::Cluster("c1".into())] {
            assert!(check_read(&who, "", "secrets").is_err());
            assert!(check_read(&who, "", "serviceaccounts").is_ok());
            assert!(check_read(&who, "ferry.dev", "clusters").is_ok());
        }
    }

    #[test]
    fn cluster_identity_writes_only_its_own_objects() {
        let me = Identity::Cluster("c1".into());
        let mine: BTreeMap<_, _> = [(CLUSTER_LABEL.to_string(), "c1".to_string())].into();
        let theirs: BTreeMap<_, _> = [(CLUSTER_LABEL.to_string(), "c2".to_string())].into();
        let none = BTreeMap::new();
        assert!(check_write(&me, "r", "n", None, Some(&mine)).is_ok());
        assert!(check_write(&me, "r", "n", Some(&mine), Some(&mine)).is_ok());
        assert!(check_write(&me, "r", "n", Some(&mine), None).is_ok());
        assert!(check_write(&me, "r", "n", None, Some(&none)).is_err());
        assert!(check_write(&me, "r", "n", Some(&mine), Some(&theirs)).is_err());
        assert!(check_write(&me, "r", "n", Some(&theirs), None).is_err());
        assert!(check_write(&Identity::Admin, "r", "n", Some(&theirs), None).is_ok());
    }
}
