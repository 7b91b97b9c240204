//! Server start-up: the data directory, the shared [`App`] state, the admin
//! kubeconfig, background tasks (controllers, compaction), and the TLS
//! listener. The top of the crate: it builds the state and starts everything
//! else; nothing below imports it.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::auth::{Identity, TokenStore};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::ops::{self, WriteOptions};
use crate::registry::{Registry, crd_resource};
use crate::service_ips::{ServiceAllocator, ServiceIpRange};
use crate::state::App;
use crate::store::Store;
use crate::tls;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Extra names/IPs for the serving certificate.
    pub tls_sans: Vec<String>,
    /// URL written into the admin kubeconfig (default: from `listen`).
    pub advertise_url: Option<String>,
    pub body_limit: usize,
    /// Revisions of history kept for watchers that resume.
    pub history_revisions: u64,
    pub compaction_interval: Duration,
    /// Most writes (POST, PUT, PATCH, DELETE) handled at once; more get 429
    /// with `Retry-After`, as kube-apiserver's
    /// `--max-mutating-requests-inflight`. 0: no limit.
    pub max_mutating_inflight: usize,
    /// Where Service cluster IPs come from (`--service-cluster-ip-range`).
    pub service_cluster_ip_range: ServiceIpRange,
    /// Where Service node ports come from (`--service-node-port-range`).
    pub service_node_port_range: RangeInclusive<u16>,
}

/// The service range of a server not told otherwise: the one of the first
/// sandbox cluster (`ferry sandbox create` passes each cluster's own).
pub const DEFAULT_SERVICE_CLUSTER_IP_RANGE: &str = "100.96.0.0/16";
/// kube-apiserver's default node port range.
pub const DEFAULT_SERVICE_NODE_PORT_RANGE: RangeInclusive<u16> = 30000..=32767;

impl Config {
    /// Defaults for everything but where to keep data and where to listen.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen,
            tls_sans: Vec::new(),
            advertise_url: None,
            body_limit: 3 * 1024 * 1024,
            history_revisions: 10_000,
            compaction_interval: Duration::from_secs(60),
            max_mutating_inflight: 0,
            service_cluster_ip_range: DEFAULT_SERVICE_CLUSTER_IP_RANGE
                .parse()
                .unwrap_or_else(|_| unreachable!("the default service range parses")),
            service_node_port_range: DEFAULT_SERVICE_NODE_PORT_RANGE,
        }
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Where clients reach it, e.g. `https://127.0.0.1:6443`.
    pub url: String,
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub admin_kubeconfig: PathBuf,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Runs until the accept loop ends (it does not, unless shut down).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The database file inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state.db")
}

/// Mints a token for `identity` in the data directory of a (running or
/// stopped) server.
pub fn create_token(data_dir: &Path, identity: &Identity) -> Result<String> {
    let db = db_path(data_dir);
    if !db.exists() {
        return Err(Error::io(
            format!(
                "{} holds no ferry apiserver data (start `ferry apiserver --data-dir {}` once first)",
                data_dir.display(),
                data_dir.display()
            ),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    TokenStore::open(&db)?.create(identity)
}

fn create_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Starts the server: opens the data directory, binds, and serves in the
/// background of the current Tokio runtime.
pub async fn start(config: Config) -> Result<RunningServer> {
    create_data_dir(&config.data_dir)?;
    let db = db_path(&config.data_dir);
    let store = Store::open(&db)?;
    let tokens = TokenStore::open(&db)?;
    let registry = Registry::new();
    let crds = crd_resource();
    let (_, existing, _) = store.list(&crds.prefix(), None, None, |_, _| true);
    for (_, crd) in existing {
        registry.apply_crd(&crd.value()?);
    }
    let service_ips = ServiceAllocator::new(
        config.service_cluster_ip_range,
        config.service_node_port_range.clone(),
    );
    if let Some(services) = registry.get("", "v1", "services") {
        service_ips.load(&store, &services.prefix())?;
    }
    let app = Arc::new(App {
        service_ips,
        store,
        registry,
        tokens,
        metrics: Metrics::new(),
        body_limit: config.body_limit,
        mutating: (config.max_mutating_inflight > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_mutating_inflight))),
        controllers_wake: Notify::new(),
    });
    ensure_system_namespaces(&app).await?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listen address", e))?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = config.advertise_url.clone().unwrap_or_else(|| {
        if host.contains(':') {
            format!("https://[{host}]:{}", addr.port())
        } else {
            format!("https://{host}:{}", addr.port())
        }
    });
    let mut sans = config.tls_sans.clone();
    sans.push(host);
    if let Some(h) = url_host(&url) {
        sans.push(h);
    }
    let server_tls = tls::server_tls(&config.data_dir, &sans)?;
    let admin_kubeconfig = write_admin_kubeconfig(&app, &config.data_dir, &url, &server_tls)?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    crate::controllers::spawn(app.clone(), shutdown_rx.clone());
    spawn_housekeeping(app.clone(), &config, shutdown_rx.clone());
    let task = tokio::spawn(crate::http::serve(
        listener,
        server_tls.config.clone(),
        app.clone(),
        shutdown_rx,
    ));
    Ok(RunningServer {
        url,
        addr,
        ca_pem: server_tls.ca_pem,
        admin_kubeconfig,
        app,
        shutdown,
        task,
    })
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Some(host.to_string())
}

async fn ensure_system_namespaces(app: &App) -> Result<()> {
    let Some(def) = app.registry.get("", "v1", "namespaces") else {
        return Ok(());
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if app.store.get(&def.key(None, ns)).is_some() {
            continue;
        }
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match ops::create(
            app,
            &Identity::Admin,
            &def,
            None,
            object,
            WriteOptions::system(),
        )
        .await
        {
            Ok(_) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `admin.kubeconfig`, reusing its token when it is still valid.
fn write_admin_kubeconfig(
    app: &App,
    dir: &Path,
    url: &str,
    server_tls: &tls::ServerTls,
) -> Result<PathBuf> {
    let path = dir.join("admin.kubeconfig");
    let existing = std::fs::read_to_string(&path).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_string))
    });
    let token = match existing {
        Some(t) if app.tokens.authenticate(&t)? == Some(Identity::Admin) => t,
        _ => app.tokens.create(&Identity::Admin)?,
    };
    let text = tls::kubeconfig(url, &server_tls.ca_pem, "admin", &token);
    tls::write_private(&path, text.as_bytes())?;
    Ok(path)
}

fn spawn_housekeeping(app: Arc<App>, config: &Config, mut shutdown: watch::Receiver<bool>) {
    let keep = config.history_revisions;
    let interval = config.compaction_interval;
    tokio::spawn(async move {
        let mut compact = tokio::time::interval(interval);
        let mut gauges = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = compact.tick() => {
                    if let Err(e) = app.store.compact(keep).await {
                        tracing::warn!(error = %e, "compaction failed");
                    }
                }
                _ = gauges.tick() => {
                    let objects = i64::try_from(app.store.len()).unwrap_or(i64::MAX);
                    app.metrics.objects.set(objects);
                    app.metrics.db_bytes.set(app.store.disk_bytes());
                    app.metrics.revision.set(app.store.revision());
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}
