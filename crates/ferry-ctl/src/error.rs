//! The crate's single error type. Every variant a user can cause carries
//! what [`Error::hint`] needs to say how to fix it.

use std::path::PathBuf;

use ferry_api::Cidr;

/// Why a Kubernetes API could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Nothing listens at the address.
    Refused,
    /// The TLS handshake failed (usually: the certificate is not signed by
    /// the CA we were given).
    Tls,
    /// No answer in time.
    Timeout,
    /// The host name does not resolve.
    Dns,
    /// Anything else on the way (reset, unreachable network, …).
    Other,
}

/// Why `join` refused to change anything; each carries what its message and
/// hint need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// This cluster joined before under another id.
    #[error(
        "this cluster already joined the clusterset as {own:?}; it cannot join again as {wanted:?}"
    )]
    AlreadyJoined {
        /// The id it joined as.
        own: String,
        /// The id asked for now.
        wanted: String,
    },
    /// Another cluster has joined the broker with this id.
    #[error("cluster id {id:?} is taken: another cluster has joined the broker with it")]
    IdTaken {
        /// The id asked for.
        id: String,
    },
    /// A CIDR of this cluster overlaps one of another cluster.
    #[error(
        "CIDR {cidr} of cluster {cluster:?} overlaps CIDR {other_cidr} of cluster {other_cluster:?}"
    )]
    CidrOverlap {
        /// This cluster's CIDR.
        cidr: Cidr,
        /// This cluster's id.
        cluster: String,
        /// The other cluster's CIDR.
        other_cidr: Cidr,
        /// The other cluster's id.
        other_cluster: String,
    },
    /// `--globalnet-cidr` overlaps a CIDR the clusterset uses.
    #[error("global CIDR {cidr} overlaps CIDR {other_cidr} of cluster {other_cluster:?}")]
    GlobalCidrTaken {
        /// The global CIDR asked for.
        cidr: Cidr,
        /// The CIDR it overlaps.
        other_cidr: Cidr,
        /// The cluster using it.
        other_cluster: String,
    },
    /// `--globalnet` without `--globalnet-cidr` on a broker with no pool.
    #[error("the broker has no Globalnet pool to take this cluster's global CIDR from")]
    NoGlobalnetPool,
    /// The cluster runs a CNI whose datapath ferry cannot drive.
    #[error(
        "this cluster runs {cni} ({evidence}): {why}; if that does not apply here, pass --cni generic"
    )]
    UndrivableCni {
        /// The CNI's name.
        cni: &'static str,
        /// What showed it (`ConfigMap kube-system/cilium-config`).
        evidence: &'static str,
        /// What ferry cannot do with it.
        why: &'static str,
    },
    /// A check before `join` changes anything found the cluster cannot
    /// run ferry as asked.
    #[error("{problem}; {fix}")]
    Preflight {
        /// What is wrong.
        problem: String,
        /// The flag or command that fixes it.
        fix: String,
    },
    /// Neither a flag nor the cluster says which CIDRs the cluster uses.
    #[error("cannot tell this cluster's {kind} CIDRs: no --{flag}, and {tried}")]
    CidrsUnknown {
        /// `pod` or `service`.
        kind: &'static str,
        /// The flag that gives them (`clustercidr`, `servicecidr`).
        flag: &'static str,
        /// What was looked at, and what each source said.
        tried: String,
    },
    /// `deploy-broker` could not mint a joiner credential (only an admin
    /// one would do, and broker-info.ferry never carries that).
    #[error("cannot mint a joiner token on the broker at {url}: {reason}")]
    NoJoinerToken {
        /// The broker URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Everything that can go wrong in `ferry-ctl`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kubeconfig was given and none was found where one is looked for.
    #[error("no kubeconfig found (tried {})", tried.join("; "))]
    NoKubeconfig {
        /// Each place looked at, and why it did not do.
        tried: Vec<String>,
    },

    /// `--kubeconfig` names a file that does not exist.
    #[error("kubeconfig {} does not exist", path.display())]
    KubeconfigMissing {
        /// The path given.
        path: PathBuf,
    },

    /// A kubeconfig exists but cannot be used.
    #[error("cannot use kubeconfig {what}: {reason}")]
    KubeconfigInvalid {
        /// Which kubeconfig (path, or `$KUBECONFIG`).
        what: String,
        /// Why.
        reason: String,
    },

    /// `--context` names a context the kubeconfig does not have.
    #[error("kubeconfig {kubeconfig} has no context {context:?} (it has: {})", available.join(", "))]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// Which kubeconfig.
        kubeconfig: String,
        /// The contexts it has.
        available: Vec<String>,
    },

    /// An API server could not be reached at all.
    #[error("cannot reach {what} at {url}: {cause}")]
    Unreachable {
        /// Whose API (`the cluster east`, `the broker`).
        what: String,
        /// Its URL.
        url: String,
        /// The innermost cause, as the OS or TLS library said it.
        cause: String,
        /// The class of the cause.
        kind: Transport,
    },

    /// The API server rejected the credentials (HTTP 401).
    #[error("{what} at {url} rejected the credentials (401 Unauthorized)")]
    Unauthorized {
        /// Whose API.
        what: String,
        /// Its URL.
        url: String,
    },

    /// The credentials are valid but not allowed to do this (HTTP 403).
    #[error("{what} at {url} forbids {action}: {message}")]
    Forbidden {
        /// Whose API.
        what: String,
        /// Its URL.
        url: String,
        /// What was attempted.
        action: String,
        /// The server's message.
        message: String,
    },

    /// Any other API error status.
    #[error("{action}: {message} ({code})")]
    Status {
        /// What was attempted.
        action: String,
        /// The HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },

    /// A client-side failure talking to an API (decoding, building a request).
    #[error("{action}: {source}")]
    Kube {
        /// What was attempted.
        action: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// The cluster has not joined a clusterset (or ferry was removed).
    #[error("ferry is not installed in {what}: {detail}")]
    NotJoined {
        /// Which cluster.
        what: String,
        /// What is missing.
        detail: String,
    },

    /// `ferry export` of a Service that does not exist.
    #[error("service {namespace}/{name} does not exist")]
    ServiceNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },

    /// `ferry export` of a Service that MCS cannot export.
    #[error("service {namespace}/{name} is of type {type_}, which cannot be exported")]
    NotExportable {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its type.
        type_: String,
    },

    /// `ferry unexport` of a Service that is not exported.
    #[error(
        "service {namespace}/{name} is not exported (there is no ServiceExport {namespace}/{name})"
    )]
    NotExported {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },

    /// `ferry agent` found the export invalid (`Valid=False`).
    #[error("the export of {namespace}/{name} is not valid: {message}")]
    ExportNotValid {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The agent's message.
        message: String,
    },

    /// The `ferry-broker` Secret (what `join` stored) cannot be read.
    #[error("the broker Secret {namespace}/{name} is malformed: {reason}")]
    BrokerSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// `uninstall` could not remove this cluster's objects from the broker
    /// (nothing after the workloads was removed, so a re-run can retry).
    #[error("cannot remove this cluster's objects from the broker at {url}: {source}")]
    BrokerCleanup {
        /// The broker URL.
        url: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// The command line is inconsistent in a way clap cannot see.
    #[error("{0}")]
    Usage(String),

    /// `show` could not read some of the clusters it was asked about (each
    /// already reported in its own section).
    #[error("{failed} of {total} clusters could not be shown")]
    Partial {
        /// How many failed.
        failed: usize,
        /// How many were asked for.
        total: usize,
    },

    /// The only cluster `show` was asked about could not be shown (its
    /// error, already explained).
    #[error("{message}")]
    Cluster {
        /// What went wrong.
        message: String,
        /// What to do.
        hint: Option<String>,
    },

    /// `uninstall` removed what it could but not everything.
    #[error("uninstall is incomplete: {}", problems.join("; "))]
    Incomplete {
        /// What was left behind, and why.
        problems: Vec<String>,
    },

    /// A temporary test pod of `diagnose`, `verify` or `benchmark` could
    /// not do its job.
    #[error("test pod {pod} in {cluster}: {reason}")]
    ProbePod {
        /// Which cluster.
        cluster: String,
        /// The pod (namespace/name on node).
        pod: String,
        /// What went wrong.
        reason: String,
        /// The image it runs.
        image: String,
    },

    /// Checks failed (each already reported on its own line).
    #[error("{failed} of {total} checks failed")]
    ChecksFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },

    /// The command was interrupted (Ctrl-C) and cleaned up.
    #[error("interrupted; the test pods were removed")]
    Interrupted,

    /// A `ferry-agent` call failed.
    #[error(transparent)]
    Agent(#[from] ferry_agent::Error),

    /// A subctl flag ferry knows but does not implement (Globalnet, IPsec, …).
    #[error(transparent)]
    Unsupported(#[from] crate::install::Unsupported),

    /// `join` refused: the cluster id is taken, CIDRs overlap, ….
    #[error(transparent)]
    Refused(#[from] Refusal),

    /// Kubernetes plumbing failed: building a client (kubeconfig, broker
    /// info), reading a kubeconfig, a TokenRequest.
    #[error(transparent)]
    Plumbing(#[from] ferry_kube::Error),

    /// Manifests could not be rendered, or the broker Secret read back.
    #[error(transparent)]
    Deploy(#[from] ferry_deploy::Error),

    /// Globalnet refused its input (pool, global CIDR, IP counts).
    #[error(transparent)]
    Globalnet(#[from] ferry_globalnet::Error),

    /// Invalid input by ferry-api's rules (cluster id, CIDR, broker info).
    #[error(transparent)]
    Api(#[from] ferry_api::Error),

    /// `ferry dashboard` could not listen or serve on its address.
    #[error("dashboard on {addr}: {source}")]
    Dashboard {
        /// The listen address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// Rendering JSON or YAML output failed (a bug, not bad input).
    #[error("cannot render output: {0}")]
    Render(String),
}

impl Error {
    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        crate::explain::hint_for_ctl(self)
    }

    /// Whether the command line itself was wrong (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::Unsupported(_))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
