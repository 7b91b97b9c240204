//! Errors as the user sees them: one line saying what went wrong, a `hint:`
//! line saying what to do, and the exit code (2 for usage errors, 1 for
//! everything else). [`explain`] takes the whole error chain (e.g.
//! `anyhow::Error::chain()`), recognises the kinds a user can cause — no
//! kubeconfig, API unreachable, 401, 403, malformed broker info, cluster id
//! taken, overlapping CIDRs, … — wherever they sit in the chain, and renders
//! client errors without their debug dumps.

use std::error::Error as StdError;

use crate::{Error, Refusal, Transport, target};

/// A failure, ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    /// One line: what went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Whether the command line was wrong (exit code 2).
    pub usage: bool,
}

impl Explained {
    /// 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.usage { 2 } else { 1 }
    }

    /// `error: …` and, when there is one, `hint: …`, each on one line.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(h) = &self.hint {
            out.push_str(&format!("hint: {h}\n"));
        }
        out
    }
}

/// Explains an error chain, outermost first.
pub fn explain<'a, I>(chain: I) -> Explained
where
    I: IntoIterator<Item = &'a (dyn StdError + 'static)>,
{
    let chain: Vec<&(dyn StdError + 'static)> = chain.into_iter().collect();
    Explained {
        message: message(&chain),
        hint: chain.iter().find_map(|e| hint_of(*e)),
        usage: chain
            .iter()
            .any(|e| e.downcast_ref::<Error>().is_some_and(Error::is_usage)),
    }
}

/// Explains one error and its `source()` chain.
pub fn explain_error(e: &(dyn StdError + 'static)) -> Explained {
    explain(std::iter::successors(
        Some(e),
        |e: &&(dyn StdError + 'static)| (*e).source(),
    ))
}

/// What a link of the chain says, and whether the rest of the chain adds
/// nothing to it.
fn own_message(e: &(dyn StdError + 'static)) -> (String, bool) {
    if let Some(ctl) = e.downcast_ref::<Error>() {
        return match ctl {
            Error::Agent(a) => agent_message(a),
            Error::Plumbing(k) => plumbing_message(k),
            Error::Api(_) | Error::Deploy(ferry_deploy::Error::Api(_)) => (ctl.to_string(), false),
            Error::Kube { action, source } => (format!("{action}: {}", kube_message(source)), true),
            _ => (ctl.to_string(), true),
        };
    }
    if let Some(a) = e.downcast_ref::<ferry_agent::Error>() {
        return agent_message(a);
    }
    if let Some(k) = e.downcast_ref::<ferry_kube::Error>() {
        return plumbing_message(k);
    }
    if let Some(k) = e.downcast_ref::<kube::Error>() {
        return (kube_message(k), true);
    }
    (e.to_string(), false)
}

fn agent_message(a: &ferry_agent::Error) -> (String, bool) {
    match a {
        ferry_agent::Error::Kube { context, source } => {
            (format!("{context}: {}", kube_message(source)), true)
        }
        ferry_agent::Error::Api(_)
        | ferry_agent::Error::BrokerSecret(ferry_deploy::Error::Api(_)) => (a.to_string(), false),
        ferry_agent::Error::Plumbing(k) => plumbing_message(k),
        _ => (a.to_string(), true),
    }
}

fn plumbing_message(k: &ferry_kube::Error) -> (String, bool) {
    match k {
        ferry_kube::Error::Kube { context, source } => {
            (format!("{context}: {}", kube_message(source)), true)
        }
        _ => (k.to_string(), true),
    }
}

/// A client error without its debug dump: the server's message for API
/// errors, the innermost cause for transport errors.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let text = if s.message.is_empty() {
                s.reason.as_str()
            } else {
                s.message.as_str()
            };
            format!("{text} ({})", s.code)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => target::transport_cause(e).1,
        _ => e.to_string(),
    }
}

fn message(chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain {
        let (text, complete) = own_message(*e);
        parts.push(text.replace('\n', " "));
        if complete {
            break;
        }
    }
    // `context: cause` wrappers repeat their source: keep each text once.
    let mut out: Vec<String> = Vec::new();
    for i in 0..parts.len() {
        let mut p = parts[i].clone();
        if let Some(next) = parts.get(i + 1) {
            if p == *next {
                continue;
            }
            if let Some(stripped) = p.strip_suffix(next.as_str()) {
                p = stripped.trim_end_matches([' ', ':']).to_string();
            }
        }
        if !p.is_empty() {
            out.push(p);
        }
    }
    if out.is_empty() {
        "unknown error".into()
    } else {
        out.join(": ")
    }
}

fn hint_of(e: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(ctl) = e.downcast_ref::<Error>() {
        return hint_for_ctl(ctl);
    }
    if let Some(a) = e.downcast_ref::<ferry_agent::Error>() {
        return hint_for_agent(a);
    }
    if let Some(k) = e.downcast_ref::<ferry_kube::Error>() {
        return hint_for_plumbing(k);
    }
    if let Some(a) = e.downcast_ref::<ferry_api::Error>() {
        return hint_for_api(a);
    }
    if let Some(k) = e.downcast_ref::<kube::Error>() {
        return hint_for_kube(k);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::NotFound
    {
        return Some("check that the file exists and the path is right".into());
    }
    None
}

const KUBECONFIG_HINT: &str = "pass --kubeconfig FILE or set KUBECONFIG (for a sandbox cluster: export KUBECONFIG=$(ferry sandbox kubeconfig NAME))";
const UNAUTHORIZED_HINT: &str = "the token or client certificate is wrong or expired: get fresh credentials (a new kubeconfig; for the broker, a new broker-info.ferry from `ferry deploy-broker`)";
const FORBIDDEN_HINT: &str = "the credentials are valid but lack permission for this: use a kubeconfig with cluster-admin rights (join and uninstall manage CRDs and cluster-wide RBAC)";
const BROKER_INFO_HINT: &str = "broker-info.ferry must be exactly what `ferry deploy-broker` wrote (one line of base64): copy it again, or run deploy-broker again to write a new one";
const OVERLAP_HINT: &str = "join with Globalnet (`ferry join … --globalnet`, clusters then reach each other through global addresses, so their CIDRs may overlap), or give this cluster pod and service CIDRs (--clustercidr, --servicecidr) that no other cluster uses; `ferry show networks` lists the ones taken";
const GLOBALNET_HINT: &str = "choose another --globalnet-cidr (or leave it out to take a free block of the broker's pool); `ferry show networks` lists the CIDRs taken";
const TAKEN_HINT: &str = "choose another --clusterid; if the cluster holding it is gone for good, run `ferry uninstall` against it (or delete its Cluster object on the broker)";
const CLUSTER_ID_HINT: &str = "a cluster id is lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. cluster-east)";

fn unreachable_hint(kind: Transport) -> &'static str {
    match kind {
        Transport::Refused => {
            "nothing listens there: is the API server running, and is the URL right (the server: line of the kubeconfig, or apiServerUrl in broker-info.ferry)?"
        }
        Transport::Tls => {
            "the server's certificate is not signed by the CA you were given: was the server re-created? get a fresh kubeconfig or broker-info.ferry"
        }
        Transport::Timeout => {
            "no answer in time: check the network path to the server (firewall, VPN, routes)"
        }
        Transport::Dns => "the host name does not resolve: check the URL and DNS",
        Transport::Other => "check the URL and the network path to the server",
    }
}

/// The hint for one of this crate's errors.
pub(crate) fn hint_for_ctl(e: &Error) -> Option<String> {
    let h = match e {
        Error::NoKubeconfig { .. } => KUBECONFIG_HINT.to_string(),
        Error::KubeconfigMissing { .. } => {
            "check the path; --kubeconfig takes a file (several clusters: --kubeconfig a,b)".into()
        }
        Error::KubeconfigInvalid { .. } => {
            "check the file, e.g. with `kubectl --kubeconfig FILE config view`".into()
        }
        Error::UnknownContext { .. } => {
            "list the contexts with `kubectl config get-contexts`".into()
        }
        Error::Unreachable { kind, .. } => unreachable_hint(*kind).into(),
        Error::Unauthorized { .. } => UNAUTHORIZED_HINT.into(),
        Error::Forbidden { .. } => FORBIDDEN_HINT.into(),
        Error::Status { code: 404, .. } => {
            "the resource type or object does not exist there: has ferry been installed (`ferry join`)?".into()
        }
        Error::Kube { source, .. } => return hint_for_kube(source),
        Error::Status { .. } | Error::Render(_) => return None,
        Error::NotJoined { .. } => {
            "join the cluster first: ferry join broker-info.ferry --clusterid ID --kubeconfig FILE"
                .into()
        }
        Error::ServiceNotFound { namespace, name } => format!(
            "ferry exports Services, not Deployments: create it first, e.g. `kubectl -n {namespace} expose deployment {name} --port PORT` or `kubectl apply -f` a Service manifest"
        ),
        Error::NotExportable { .. } => {
            "ExternalName services have no endpoints to share; export a ClusterIP or headless Service instead".into()
        }
        Error::NotExported { .. } => {
            "list what is exported with `kubectl get serviceexports -A`".into()
        }
        Error::ExportNotValid { namespace, name, .. } => format!(
            "fix the Service (the agent re-checks by itself), or remove the export with `ferry unexport service {name} -n {namespace}`"
        ),
        Error::BrokerSecret { .. } => {
            "run `ferry join` again to rewrite it".into()
        }
        Error::BrokerCleanup { source, .. } => {
            let then = "run `ferry uninstall` again once the broker answers (this cluster keeps its broker credentials until then), or pass --skip-broker to leave its objects there (other clusters will keep seeing it)";
            match hint_for_ctl(source) {
                Some(h) => format!("{h}; then {then}"),
                None => then.to_string(),
            }
        }
        Error::Usage(_) => "see the command's --help".into(),
        Error::Dashboard { .. } => {
            "pick another port with --listen 127.0.0.1:PORT (port 0: any free one)".into()
        }
        Error::Cluster { hint, .. } => return hint.clone(),
        Error::Partial { .. } => "each failing cluster's line above says why".into(),
        Error::Incomplete { .. } => {
            "fix the cause and run `ferry uninstall` again (it is safe to re-run)".into()
        }
        Error::ProbePod { image, .. } => format!(
            "see `kubectl -n ferry-system describe pod` and `kubectl -n ferry-system logs` of the pod; every node must be able to run image {image}"
        ),
        Error::ChecksFailed { .. } => "each FAIL line above says why and what to do".into(),
        Error::Interrupted => return None,
        Error::Agent(a) => return hint_for_agent(a),
        Error::Api(a) => return hint_for_api(a),
        Error::Refused(r) => hint_for_refusal(r).into(),
        Error::Unsupported(u) => u.hint().into(),
        Error::Plumbing(k) => return hint_for_plumbing(k),
        Error::Deploy(d) => return hint_for_deploy(d),
        Error::Globalnet(g) => hint_for_globalnet(g).into(),
    };
    Some(h)
}

fn hint_for_globalnet(e: &ferry_globalnet::Error) -> &'static str {
    use ferry_globalnet::Error as G;
    match e {
        G::PoolExhausted { .. } | G::PoolTooSmall { .. } => {
            "give the broker a larger range (deploy-broker --globalnet-cidr-range) or each cluster fewer addresses (--globalnet-cluster-size), or pass --globalnet-cidr; nothing was changed"
        }
        G::BadClusterSize(_) => {
            "--globalnet-cluster-size takes a power of two: 256 (a /24), 1024, 65536 (a /16, Submariner's default)"
        }
        G::TooManyIps { .. } => "ask for at most 20 global IPs (numberOfIPs)",
        _ => GLOBALNET_HINT,
    }
}

fn hint_for_refusal(r: &Refusal) -> &'static str {
    match r {
        Refusal::IdTaken { .. } => TAKEN_HINT,
        Refusal::CidrOverlap { .. } => OVERLAP_HINT,
        Refusal::GlobalCidrTaken { .. } => GLOBALNET_HINT,
        Refusal::NoGlobalnetPool => {
            "pass --globalnet-cidr CIDR (a range no cluster uses), or deploy the broker with --globalnet [--globalnet-cidr-range CIDR --globalnet-cluster-size N]; nothing was changed"
        }
        Refusal::AlreadyJoined { .. } => {
            "a cluster joins under one id: run `ferry uninstall` first to join it under another"
        }
        Refusal::CidrsUnknown { .. } => {
            "pass them: --clustercidr for pods, --servicecidr for services (comma-separated, e.g. --clustercidr 100.64.0.0/16 --servicecidr 100.96.0.0/16); nothing was changed"
        }
        Refusal::UndrivableCni { .. } => {
            "ferry drives kube-ovn, Calico, flannel and CNIs that route through the kernel and netfilter (--cni generic); nothing was changed"
        }
        Refusal::Preflight { .. } => {
            "fix what the message names and run join again; nothing was changed"
        }
        Refusal::NoJoinerToken { .. } => {
            "the broker must serve TokenRequest for the ferry-joiner ServiceAccount (Kubernetes ≥ 1.24, or a ferry apiserver of this version); broker-info.ferry never carries an admin credential"
        }
    }
}

fn hint_for_plumbing(e: &ferry_kube::Error) -> Option<String> {
    match e {
        ferry_kube::Error::Kube { source, .. } => hint_for_kube(source),
        ferry_kube::Error::Client {
            api: ferry_kube::ClientFor::Broker { .. },
            ..
        } => Some(BROKER_INFO_HINT.into()),
        ferry_kube::Error::Client { .. } => Some(KUBECONFIG_HINT.into()),
        _ => None,
    }
}

fn hint_for_deploy(e: &ferry_deploy::Error) -> Option<String> {
    match e {
        ferry_deploy::Error::Api(a) => hint_for_api(a),
        _ => None,
    }
}

fn hint_for_agent(e: &ferry_agent::Error) -> Option<String> {
    match e {
        ferry_agent::Error::Api(a) => hint_for_api(a),
        ferry_agent::Error::Kube { source, .. } => hint_for_kube(source),
        ferry_agent::Error::Plumbing(k) => hint_for_plumbing(k),
        ferry_agent::Error::BrokerSecret(d) => hint_for_deploy(d),
        _ => None,
    }
}

fn hint_for_api(e: &ferry_api::Error) -> Option<String> {
    use ferry_api::Error as A;
    let h = match e {
        A::BrokerInfoEmpty
        | A::BrokerInfoNotBase64(_)
        | A::BrokerInfoNotJson(_)
        | A::BrokerInfoNotObject { .. }
        | A::BrokerInfoMissingField(_)
        | A::BrokerInfoInvalidField { .. } => BROKER_INFO_HINT,
        A::InvalidClusterId { .. } => CLUSTER_ID_HINT,
        A::InvalidCidr { .. } => {
            "a CIDR is ADDRESS/PREFIX with no host bits set, e.g. 100.64.0.0/16; separate several with commas"
        }
        A::CidrOverlap { .. } => OVERLAP_HINT,
        A::InvalidCableDriver(_) => {
            "use wireguard, vxlan or ipsec (libreswan is accepted for ipsec)"
        }
        A::UnknownNetworkPlugin(_) => "--cni takes generic, kube-ovn, calico or flannel",
        A::InvalidComponent(_) => {
            "--components takes service-discovery and/or connectivity, comma-separated"
        }
        _ => return None,
    };
    Some(h.into())
}

fn hint_for_kube(e: &kube::Error) -> Option<String> {
    match e {
        kube::Error::Api(s) if s.code == 401 => Some(UNAUTHORIZED_HINT.into()),
        kube::Error::Api(s) if s.code == 403 => Some(FORBIDDEN_HINT.into()),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            Some(unreachable_hint(target::transport_cause(e).0).into())
        }
        kube::Error::InferConfig(_) | kube::Error::InferKubeconfig(_) => {
            Some(KUBECONFIG_HINT.into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
