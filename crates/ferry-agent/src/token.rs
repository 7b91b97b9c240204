//! Keeps a cluster's broker token fresh.
//!
//! On `ferry apiserver` a cluster's broker token is opaque and never
//! expires: nothing to do. On Kubernetes it is a ServiceAccount token from a
//! TokenRequest — a JWT, valid for as long as the broker's API server allows
//! (often a day or less, whatever `join` asked for). Then the agent keeps it
//! in a private file that its broker client reads (kube-rs re-reads token
//! files at least once a minute), and before it runs out asks the broker for
//! a new token for its own ServiceAccount — authenticated by the token
//! itself, whose Role allows exactly that — writes it to the file and into
//! the `ferry-broker` Secret, so a restart starts with the fresh one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_api::BrokerInfo;
use ferry_deploy::{BROKER_SECRET, BrokerSecret, CLUSTER_SA_PREFIX, secret_keys};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{Error, Result};

/// When a token was issued and when it expires (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// `iat`.
    pub issued: i64,
    /// `exp`.
    pub expires: i64,
}

/// The lifetime of a JWT, read from its `iat` and `exp` claims without
/// checking the signature (the broker does that); `None` for tokens that are
/// not JWTs or carry no `exp` (they do not expire).
pub fn lifetime(token: &str) -> Option<Lifetime> {
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let expires = claims.get("exp")?.as_i64()?;
    let issued = claims
        .get("iat")
        .or_else(|| claims.get("nbf"))
        .and_then(Value::as_i64)
        .unwrap_or(expires)
        .min(expires);
    Some(Lifetime { issued, expires })
}

/// Seconds before expiry by which a renewed token must be in the file:
/// kube-rs re-reads it once a minute.
const MARGIN: i64 = 120;

/// When to renew a token: after four fifths of its lifetime, at least
/// [`MARGIN`] before it expires, and not before `now`.
pub fn renew_at(l: Lifetime, now: i64) -> i64 {
    let life = (l.expires - l.issued).max(0);
    (l.issued + life / 5 * 4).min(l.expires - MARGIN).max(now)
}

/// Whether `token` is still good for a while (`join` reuses such a token).
pub fn usable(token: &str, now: i64) -> bool {
    lifetime(token).is_none_or(|l| l.expires - MARGIN > now)
}

fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// A token in a file only this process's user can read, in a directory of
/// its own, removed on drop.
#[derive(Debug)]
pub struct TokenFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TokenFile {
    /// Writes `token` into a new private file under the temp directory.
    pub fn create(token: &str) -> Result<TokenFile> {
        let dir = std::env::temp_dir().join(format!(
            "ferry-agent-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        ferry_kube::create_private_dir(&dir)?;
        let file = TokenFile {
            path: dir.join("broker-token"),
            dir,
        };
        file.replace(token)?;
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token in the file.
    pub fn read(&self) -> Result<String> {
        std::fs::read_to_string(&self.path)
            .map(|t| t.trim().to_string())
            .map_err(|e| Error::Config(format!("reading {}: {e}", self.path.display())))
    }

    /// Replaces the token at once (a reader sees the old or the new one).
    pub fn replace(&self, token: &str) -> Result<()> {
        Ok(ferry_kube::write_private(&self.path, token.as_bytes())?)
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Renews the broker token of cluster `cluster_id` before it expires.
pub struct Renewer {
    info: BrokerInfo,
    cluster_id: String,
    file: TokenFile,
    /// Where the `ferry-broker` Secret is (`None`: not kept in one).
    secret: Option<(Client, String)>,
}

impl Renewer {
    /// A renewer of the token in `file`; with `secret`, also writes renewed
    /// tokens into the `ferry-broker` Secret of that client's namespace.
    pub fn new(
        info: BrokerInfo,
        cluster_id: impl Into<String>,
        file: TokenFile,
        secret: Option<(Client, String)>,
    ) -> Renewer {
        Renewer {
            info,
            cluster_id: cluster_id.into(),
            file,
            secret,
        }
    }

    /// Renews forever: before each token expires, and again after a failure
    /// (every 30 s, or sooner as the expiry nears). Owns the token file, so
    /// keep it running as long as the broker client is used.
    pub async fn run(&self) {
        loop {
            let Some(l) = self.file.read().ok().as_deref().and_then(lifetime) else {
                // Not (or no longer) a token that expires.
                return std::future::pending().await;
            };
            let wait = renew_at(l, now()) - now();
            tokio::time::sleep(Duration::from_secs(wait.max(0).unsigned_abs())).await;
            loop {
                match self.renew().await {
                    Ok(new) => {
                        info!(expires = ?new.map(|l| l.expires), "renewed the broker token");
                        break;
                    }
                    Err(e) => {
                        let left = l.expires - now();
                        warn!(error = %e, seconds_left = left, "renewing the broker token failed; retrying");
                        let retry = (left / 4).clamp(1, 30);
                        tokio::time::sleep(Duration::from_secs(retry.unsigned_abs())).await;
                    }
                }
            }
        }
    }

    /// Asks the broker for a new token now (for as long as the current one
    /// was valid), installs it, and returns its lifetime (`None`: it does not
    /// expire).
    pub async fn renew(&self) -> Result<Option<Lifetime>> {
        let current = self.file.read()?;
        let seconds = lifetime(&current).map(|l| (l.expires - l.issued).max(600));
        let broker = ferry_kube::broker_client(&self.info, &current).await?;
        let sas: Api<ServiceAccount> = Api::namespaced(broker, &self.info.broker_namespace);
        let sa = format!("{CLUSTER_SA_PREFIX}{}", self.cluster_id);
        let token = ferry_kube::request_token(&sas, &sa, seconds).await?;
        self.install(&token).await?;
        Ok(lifetime(&token))
    }

    /// Puts `token` in the file, then in the Secret. A failure to update the
    /// Secret is only logged: the running agent has the token; a restart
    /// would start from the older one and renew again while it is valid.
    pub async fn install(&self, token: &str) -> Result<()> {
        self.file.replace(token)?;
        if let Some((local, namespace)) = &self.secret
            && let Err(e) = store_in_secret(local, namespace, token).await
        {
            warn!(error = %e, "keeping the renewed broker token in the Secret failed");
        }
        Ok(())
    }
}

/// Replaces the token in the `broker-info` of the `ferry-broker` Secret.
async fn store_in_secret(local: &Client, namespace: &str, token: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(local.clone(), namespace);
    let secret = secrets
        .get(BROKER_SECRET)
        .await
        .map_err(|e| Error::kube(format!("reading Secret {namespace}/{BROKER_SECRET}"), e))?;
    let mut info = BrokerSecret::from_secret(&secret)?.broker_info;
    info.token = token.to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(info.encode()?);
    secrets
        .patch(
            BROKER_SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {secret_keys::BROKER_INFO: encoded}})),
        )
        .await
        .map_err(|e| Error::kube(format!("updating Secret {namespace}/{BROKER_SECRET}"), e))?;
    Ok(())
}

/// The agent reads no object's `managedFields` (see [`ferry_kube::ManagedFields`]).
const SKIP: ferry_kube::ManagedFields = ferry_kube::ManagedFields::Skip;

/// The agent's broker client. A token that expires is kept in a
/// [`TokenFile`] the client reads, with the [`Renewer`] to run next to the
/// agent; a token that does not comes as it is, with no renewer.
pub async fn broker_client(
    info: &BrokerInfo,
    cluster_id: &str,
    secret: Option<(Client, String)>,
) -> Result<(Client, Option<Renewer>)> {
    if lifetime(&info.token).is_none() {
        let client = ferry_kube::broker_client_reading(info, &info.token, SKIP).await?;
        return Ok((client, None));
    }
    let file = TokenFile::create(&info.token)?;
    let client = ferry_kube::broker_client_with_token_file(info, file.path(), SKIP).await?;
    Ok((
        client,
        Some(Renewer::new(info.clone(), cluster_id, file, secret)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unsigned JWT with these claims.
    fn jwt(claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            enc(&json!({"alg": "RS256", "kid": "k"})),
            enc(&claims)
        )
    }

    #[test]
    fn lifetimes_of_tokens() {
        let cases = [
            (
                jwt(
                    json!({"iat": 1000, "exp": 4600, "sub": "system:serviceaccount:ferry-broker:cluster-a"}),
                ),
                Some(Lifetime {
                    issued: 1000,
                    expires: 4600,
                }),
            ),
            (
                jwt(json!({"nbf": 2000, "exp": 5600})),
                Some(Lifetime {
                    issued: 2000,
                    expires: 5600,
                }),
            ),
            (
                jwt(json!({"exp": 5600})),
                Some(Lifetime {
                    issued: 5600,
                    expires: 5600,
                }),
            ),
            // A ferry apiserver token: opaque, never expires.
            ("fc_0123456789abcdef0123456789abcdef".to_string(), None),
            (jwt(json!({"sub": "no expiry"})), None),
            ("a.b".to_string(), None),
            ("a.!!!.c".to_string(), None),
            (format!("{}.d", jwt(json!({"exp": 1}))), None),
        ];
        for (token, want) in cases {
            assert_eq!(lifetime(&token), want, "{token}");
        }
    }

    #[test]
    fn renewal_times() {
        let l = |issued, expires| Lifetime { issued, expires };
        // (lifetime, now, renew at)
        let cases = [
            (l(0, 3600), 0, 2880),       // an hour: after 48 min
            (l(0, 86_400), 100, 69_120), // a day: after 19.2 h
            (l(0, 600), 0, 480),         // the 10 min minimum: 2 min left
            (l(0, 300), 0, 180),         // shorter: still 2 min before expiry
            (l(0, 3600), 3000, 3000),    // late (agent started late): now
            (l(0, 3600), 4000, 4000),    // expired: now
            (l(5000, 5000), 0, 4880),    // no issue time known
        ];
        for (lt, now, want) in cases {
            assert_eq!(renew_at(lt, now), want, "{lt:?} at {now}");
        }
        assert!(usable("opaque", i64::MAX));
        let t = jwt(json!({"iat": 0, "exp": 1000}));
        assert!(usable(&t, 800));
        assert!(!usable(&t, 900));
    }

    #[test]
    fn token_files_are_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let file = TokenFile::create("one").unwrap();
        let dir = file.dir.clone();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(file.read().unwrap(), "one");
        file.replace("two").unwrap();
        assert_eq!(file.read().unwrap(), "two");
        assert_eq!(mode(file.path()), 0o600);
        drop(file);
        assert!(!dir.exists(), "removed on drop");
    }
}
