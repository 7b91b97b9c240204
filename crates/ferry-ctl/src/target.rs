//! Which clusters a command talks to, and clients for them: kubeconfig
//! discovery (with an error that says where it looked), `--kubeconfig a,b`
//! and `--context c1,c2` lists, and the mapping of client errors to the
//! user-facing kinds of [`Error`] (unreachable with URL and cause, 401, 403).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_api::BrokerInfo;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{Error, Result, Transport};

/// How long a CLI command waits for a TCP + TLS connection to an API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a CLI command waits for one API response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One cluster to talk to: a kubeconfig (`None`: the default one) and a
/// context in it (`None`: its current context).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSpec {
    /// Explicit kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// Context name.
    pub context: Option<String>,
}

impl TargetSpec {
    /// A short description for headers and messages: the context if one was
    /// named, else the kubeconfig path, else `default kubeconfig`.
    pub fn describe(&self) -> String {
        match (&self.context, &self.kubeconfig) {
            (Some(c), _) => format!("context {c}"),
            (None, Some(p)) => format!("kubeconfig {}", p.display()),
            (None, None) => "default kubeconfig".into(),
        }
    }
}

/// The clusters named by `--kubeconfig a,b` and `--context c1,c2`:
/// several kubeconfigs (each at its current context), or several contexts
/// (of one kubeconfig, or of the default one), or one of each. Giving
/// several of both is ambiguous and a usage error.
pub fn expand(kubeconfigs: &[PathBuf], contexts: &[String]) -> Result<Vec<TargetSpec>> {
    let kubeconfigs: Vec<&PathBuf> = kubeconfigs
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let contexts: Vec<&String> = contexts.iter().filter(|c| !c.is_empty()).collect();
    if kubeconfigs.len() > 1 && contexts.len() > 1 {
        return Err(Error::Usage(
            "give several kubeconfigs (--kubeconfig a,b) or several contexts (--context c1,c2), not both".into(),
        ));
    }
    let specs = match (kubeconfigs.as_slice(), contexts.as_slice()) {
        ([], []) => vec![TargetSpec::default()],
        (kcs, []) => kcs
            .iter()
            .map(|k| TargetSpec {
                kubeconfig: Some((*k).clone()),
                context: None,
            })
            .collect(),
        (kcs, ctxs) if ctxs.len() > 1 || kcs.len() <= 1 => ctxs
            .iter()
            .map(|c| TargetSpec {
                kubeconfig: kcs.first().map(|k| (*k).clone()),
                context: Some((*c).clone()),
            })
            .collect(),
        (kcs, ctxs) => kcs
            .iter()
            .map(|k| TargetSpec {
                kubeconfig: Some((*k).clone()),
                context: ctxs.first().map(|c| (*c).clone()),
            })
            .collect(),
    };
    Ok(specs)
}

/// A loaded kubeconfig, or the in-cluster service account.
#[derive(Clone, Debug)]
pub enum Source {
    /// A kubeconfig (merged, for `$KUBECONFIG` with several files).
    File {
        /// The kubeconfig.
        kubeconfig: Box<Kubeconfig>,
        /// Where it came from, for messages.
        what: String,
    },
    /// Running in a pod.
    InCluster,
}

/// Finds the kubeconfig the way kubectl does: the given file; else every
/// existing file of `$KUBECONFIG`; else `~/.kube/config`; else the pod's
/// service account. When nothing is found, the error lists each place.
pub fn load(path: Option<&Path>) -> Result<Source> {
    if let Some(p) = path {
        if !p.exists() {
            return Err(Error::KubeconfigMissing { path: p.into() });
        }
        return read_file(p);
    }
    let mut tried = Vec::new();
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
        if existing.is_empty() {
            let list = paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            return Err(Error::NoKubeconfig {
                tried: vec![format!("$KUBECONFIG={list}: no such file")],
            });
        }
        let mut merged = Kubeconfig::default();
        for p in existing {
            merged = merged
                .merge(read_kubeconfig(p)?)
                .map_err(|e| Error::KubeconfigInvalid {
                    what: "$KUBECONFIG".into(),
                    reason: e.to_string(),
                })?;
        }
        return Ok(Source::File {
            kubeconfig: Box::new(merged),
            what: format!("$KUBECONFIG ({})", value.to_string_lossy()),
        });
    } else {
        tried.push("$KUBECONFIG: not set".to_string());
    }
    match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config")) {
        Some(p) if p.exists() => return read_file(&p),
        Some(p) => tried.push(format!("{}: no such file", p.display())),
        None => tried.push("~/.kube/config: $HOME is not set".into()),
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(Source::InCluster);
    }
    tried.push("in-cluster service account: not running in a pod".into());
    Err(Error::NoKubeconfig { tried })
}

fn read_kubeconfig(p: &Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(p).map_err(|e| Error::KubeconfigInvalid {
        what: p.display().to_string(),
        reason: e.to_string(),
    })
}

fn read_file(p: &Path) -> Result<Source> {
    Ok(Source::File {
        kubeconfig: Box::new(read_kubeconfig(p)?),
        what: p.display().to_string(),
    })
}

/// A client for one cluster, with what messages need to name it.
#[derive(Clone)]
pub struct Target {
    /// How the user named it (context, kubeconfig path).
    pub label: String,
    /// What messages call its API (`the cluster API (context east)`, `the broker`).
    pub what: String,
    /// The API server URL.
    pub url: String,
    /// The namespace of the kubeconfig's context (`default` if none).
    pub namespace: String,
    /// The client.
    pub client: Client,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Builds the client for `spec` (nothing is sent yet).
    pub async fn connect(spec: &TargetSpec) -> Result<Target> {
        let source = load(spec.kubeconfig.as_deref())?;
        let mut config = match source {
            Source::InCluster => {
                if spec.context.is_some() {
                    return Err(Error::Usage(
                        "--context needs a kubeconfig, but none was found (only the in-cluster service account)".into(),
                    ));
                }
                Config::incluster().map_err(|e| Error::KubeconfigInvalid {
                    what: "the in-cluster service account".into(),
                    reason: e.to_string(),
                })?
            }
            Source::File { kubeconfig, what } => {
                if let Some(ctx) = &spec.context
                    && !kubeconfig.contexts.iter().any(|c| &c.name == ctx)
                {
                    return Err(Error::UnknownContext {
                        context: ctx.clone(),
                        kubeconfig: what,
                        available: kubeconfig.contexts.iter().map(|c| c.name.clone()).collect(),
                    });
                }
                let opts = KubeConfigOptions {
                    context: spec.context.clone(),
                    ..Default::default()
                };
                Config::from_custom_kubeconfig(*kubeconfig, &opts)
                    .await
                    .map_err(|e| Error::KubeconfigInvalid {
                        what,
                        reason: e.to_string(),
                    })?
            }
        };
        Self::from_config(spec.describe(), &mut config)
    }

    /// A client for the broker of `info`, authenticating with `token`.
    pub async fn broker(info: &BrokerInfo, token: &str) -> Result<Target> {
        let client = ferry_kube::broker_client(info, token).await?;
        Ok(Target {
            label: "the broker".into(),
            what: "the broker".into(),
            url: info.api_server_url.trim_end_matches('/').to_string(),
            namespace: info.broker_namespace.clone(),
            client,
        })
    }

    fn from_config(label: String, config: &mut Config) -> Result<Target> {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.reset_reader_on_write = true;
        let url = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client = Client::try_from(config.clone()).map_err(|e| Error::KubeconfigInvalid {
            what: label.clone(),
            reason: e.to_string(),
        })?;
        Ok(Target {
            what: format!("the cluster API ({label})"),
            label,
            url,
            namespace: config.default_namespace.clone(),
            client,
        })
    }

    /// Maps a client error of `action` on this API to the kind of [`Error`]
    /// the user can act on.
    pub fn error(&self, action: impl Into<String>, e: kube::Error) -> Error {
        classify(&self.what, &self.url, action.into(), e)
    }

    /// Checks the API answers at all and accepts the credentials (reads the
    /// server version, then lists namespaces with `limit=1`; a 403 on the
    /// latter still proves the credentials are valid).
    pub async fn probe(&self) -> Result<()> {
        self.client
            .apiserver_version()
            .await
            .map_err(|e| self.error("reading the server version", e))?;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client.clone());
        match namespaces
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(()),
            Err(e) => Err(self.error("listing namespaces", e)),
        }
    }
}

/// Maps a client error to a user-facing [`Error`]: transport failures to
/// [`Error::Unreachable`] (with the innermost cause), 401 and 403 to their
/// own kinds, other statuses to [`Error::Status`].
pub fn classify(what: &str, url: &str, action: String, e: kube::Error) -> Error {
    match e {
        kube::Error::Api(s) if s.code == 401 => Error::Unauthorized {
            what: what.into(),
            url: url.into(),
        },
        kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
            what: what.into(),
            url: url.into(),
            action,
            message: s.message.clone(),
        },
        kube::Error::Api(s) => Error::Status {
            action,
            code: s.code,
            message: if s.message.is_empty() {
                s.reason.clone()
            } else {
                s.message.clone()
            },
        },
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            let (kind, cause) = transport_cause(&e);
            Error::Unreachable {
                what: what.into(),
                url: url.into(),
                cause,
                kind,
            }
        }
        e => Error::Kube {
            action,
            source: Box::new(e),
        },
    }
}

/// The innermost cause of a transport error, classified.
pub fn transport_cause(e: &(dyn std::error::Error + 'static)) -> (Transport, String) {
    let mut innermost: &(dyn std::error::Error + 'static) = e;
    let mut io_kind = None;
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = err;
        cur = err.source();
    }
    let text = innermost.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => Transport::Refused,
        Some(std::io::ErrorKind::TimedOut) => Transport::Timeout,
        _ if lower.contains("connection refused") => Transport::Refused,
        _ if lower.contains("certificate") || lower.contains("tls") => Transport::Tls,
        _ if lower.contains("timed out") || lower.contains("elapsed") => Transport::Timeout,
        _ if lower.contains("lookup") || lower.contains("resolve") => Transport::Dns,
        _ => Transport::Other,
    };
    let cause = match kind {
        Transport::Refused => "connection refused".to_string(),
        Transport::Timeout => "no answer (timed out)".to_string(),
        _ => text,
    };
    (kind, cause)
}

/// Refuses a command that works between clusters when fewer than two are
/// given; `what` says what the command does ("verify checks between
/// clusters").
pub fn require_two(specs: &[TargetSpec], what: &str) -> Result<()> {
    if specs.len() < 2 {
        return Err(Error::Usage(format!(
            "{what}: give two (--kubeconfig a,b or --context a,b)"
        )));
    }
    Ok(())
}
