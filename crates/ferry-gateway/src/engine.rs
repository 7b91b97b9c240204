//! The gateway engine: one event loop that joins the Lease election, the
//! remote Endpoints, the health checker's news (read from a shared board
//! each tick and at a cable's deadline; see [`crate::prober::heard`]) and a
//! tick, and keeps the cable, the published Endpoint and the Gateway status
//! in line with them.
//!
//! Status writes go through a coalescing writer task: state transitions are
//! sent at once (a dead cable leaves DNS answers within one write), RTT
//! figures every 30 s (each is an API write, and the cluster's API server
//! should see almost none at idle).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_api::{
    Connection, ConnectionStatus, Endpoint, EndpointSpec, Gateway, GatewayStatus, HaStatus,
};
use ferry_kube::Watch;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};

use crate::cable::{Cable, CableConfig};
use crate::config::{GatewayConfig, load_or_create_key};
use crate::health::{ConnectionHealth, HealthPolicy};
use crate::nat_prober::{self, NatEvent};
use crate::prober::heard::Heard;
use crate::prober::{self, Role, Target};
use crate::publish::{self, LocalEndpoint};
use crate::remote::{self, LocalGateway, NotCabled, RemoteGateway};
use crate::traffic::TrafficMeter;
use crate::{Result, lease, peer_prober, peers};
use ferry_api::ferry::backend_config::GATEWAY_SLOT;

mod nat;
use nat::NatState;

/// Name of the Lease the gateways of a cluster compete for.
pub const LEASE_NAME: &str = "ferry-gateway";

/// How often failed steps (cable device, Endpoint, attachments) are retried.
const RETRY: Duration = Duration::from_secs(1);

/// How often RTT figures are refreshed in the Gateway status (an API write
/// each: at idle the status is the active gateway's only write besides the
/// lease renewal). State changes are written at once.
const RTT_REFRESH: Duration = Duration::from_secs(30);

/// NAT discovery datagrams handled per wake-up at most.
const NAT_EVENT_BATCH: usize = 256;

/// How often the cable driver's counters are sampled into the metrics.
const COUNTER_SAMPLE: Duration = Duration::from_secs(1);

/// Runs the gateway on this node until `shutdown` completes; then releases
/// the lease and takes the cable down so a standby takes over at once.
///
/// The event loop runs as a task of the runtime, not on the caller's thread
/// (`block_on` in `ferry gateway`): it wakes every tick, and waking a task
/// on the same worker costs far less than waking the blocked main thread
/// (issue #19: idle CPU per cable).
pub async fn run(
    cfg: GatewayConfig,
    client: Client,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut serving = tokio::spawn(serve(cfg, client, stop_rx));
    tokio::select! {
        done = &mut serving => return done.unwrap_or_else(|e| Err(crate::Error::EngineTask(e.to_string()))),
        () = shutdown => {}
    }
    let _ = stop_tx.send(());
    serving
        .await
        .unwrap_or_else(|e| Err(crate::Error::EngineTask(e.to_string())))
}

/// The event loop of [`run`]; stops when `shutdown` resolves (or its
/// sender is gone).
async fn serve(
    cfg: GatewayConfig,
    client: Client,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> Result<()> {
    let ns = cfg.namespace.clone();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    let endpoints: Api<Endpoint> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    publish::gateway_object(&gateways, &cfg.node_name, &cfg.cluster_id).await?;
    let private_key = match cfg.driver {
        ferry_api::CableDriver::Wireguard => Some(load_or_create_key(&cfg.key_file)?),
        ferry_api::CableDriver::Vxlan | ferry_api::CableDriver::Ipsec => None,
    };
    // A previous run killed with -9 may have left a VXLAN cable and routes.
    tokio::task::block_in_place(crate::cable::cleanup);
    // …and Globalnet's table (also when Globalnet has since been switched off).
    tokio::task::block_in_place(|| crate::globalnet::Translator::default().remove());

    let (active_tx, mut active_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    // The peer-probe socket first: while a predecessor on this node still
    // holds it, this process stays out of the election.
    let probe_addr = SocketAddr::new(IpAddr::V4(cfg.private_ip), cfg.peer.port);
    let peer_socket = peer_prober::bind_when_free(probe_addr).await?;
    let (target_tx, target_rx) = watch::channel(None);
    let (verdict_tx, verdict_rx) = watch::channel(crate::peer::HolderVerdict::default());
    let peer_task = tokio::spawn(peer_prober::run(
        peer_socket,
        cfg.peer.detect,
        crate::peer::random_seq_base(),
        active_tx.subscribe(),
        target_rx,
        verdict_tx,
    ));
    // Active-active: every gateway node is active; no election. The
    // sender stays alive (the loop ends when it is gone).
    let active_active = cfg.join.active_active;
    // The peer link is kept either way: the peer prober holds the socket
    // (one gateway process per node) while its target's sender lives.
    let peer_link = lease::PeerLink {
        target: target_tx,
        verdict: verdict_rx,
    };
    let (lease_task, keep_active) = if active_active {
        active_tx.send_replace(true);
        (None, Some((active_tx, peer_link)))
    } else {
        let election = lease::Election {
            api: leases,
            name: LEASE_NAME.into(),
            me: cfg.node_name.clone(),
            timing: cfg.lease,
            probe_addr: Some(probe_addr),
        };
        let task = tokio::spawn(lease::run(election, peer_link, active_tx, stop_rx));
        (Some(task), None)
    };
    // Active-active: this gateway probes the cluster's other gateways
    // (targets set from their Endpoints; none with active-passive).
    let (peer_watch, mut peer_rx) = peer_prober::PeerWatch::new(
        IpAddr::V4(cfg.private_ip),
        cfg.peer.detect,
        peer_prober::NEVER_ANSWERED_GRACE,
    );
    let (ep_tx, mut ep_rx) = watch::channel(BTreeMap::new());
    let watch_task = tokio::spawn(watch_endpoints(endpoints.clone(), ep_tx));
    let socket = prober::bind(cfg.health_check_ip, cfg.health_check_port)?;
    let (targets_tx, targets_rx) = watch::channel(BTreeMap::new());
    let heard = Arc::new(Heard::new(cfg.health_check_interval));
    let prober_task = tokio::spawn(prober::run(
        socket,
        cfg.health_check_interval,
        targets_rx,
        heard.clone(),
    ));
    let nat_socket = nat_prober::bind(cfg.nat_discovery_port)?;
    let (identity_tx, identity_rx) = watch::channel(None);
    let (nat_out_tx, nat_out_rx) = mpsc::channel(64);
    let (nat_event_tx, mut nat_event_rx) = mpsc::channel(1024);
    let nat_task = tokio::spawn(nat_prober::run(
        nat_socket,
        identity_rx,
        nat_out_rx,
        nat_event_tx,
    ));
    let (mapping_tx, mut mapping_rx) = watch::channel(crate::globalnet::Mapping::default());
    let globalnet_task = (!cfg.global_cidrs.is_empty())
        .then(|| tokio::spawn(crate::globalnet::watch_mapping(client.clone(), mapping_tx)));
    let (status_tx, status_rx) = watch::channel(GatewayStatus::default());
    let writer_task = tokio::spawn(status_writer(
        gateways.clone(),
        cfg.node_name.clone(),
        status_rx,
    ));

    let cable_cfg = CableConfig {
        driver: cfg.driver,
        health_check_ip: cfg.health_check_ip,
        private_ip: cfg.private_ip,
        public_ip: cfg.public_ip,
        port: cfg.port,
        underlay_mtu: underlay_mtu(&cfg),
        private_key,
        psk: Some(cfg.psk.clone()),
        cluster_id: cfg.cluster_id.clone(),
        subnets: cfg.subnets(),
        ipsec_lifetimes: cfg.join.ipsec_lifetimes,
        host_source_dev: cfg.host_source_dev.clone(),
    };
    let mut supervisor = CableSupervisor {
        policy: HealthPolicy {
            error_after: cfg.error_after,
            // A new cable gets time for its handshake and the remote's
            // route agents; after that silence is an error.
            connect_grace: cfg.error_after.max(Duration::from_secs(2)),
        },
        cfg,
        cable_cfg,
        endpoints,
        cable: None,
        active: false,
        last_attempt: Instant::now(),
        endpoint_published: false,
        remotes: BTreeMap::new(),
        peers: peer_watch,
        partners: BTreeMap::new(),
        plans: BTreeMap::new(),
        health: BTreeMap::new(),
        attach_errors: BTreeMap::new(),
        failure: None,
        targets: targets_tx,
        heard: heard.clone(),
        status: status_tx,
        nat: NatState::new(identity_tx, nat_out_tx),
        globalnet: crate::globalnet::Translator::default(),
        mapping: crate::globalnet::Mapping::default(),
        traffic: TrafficMeter::default(),
    };
    supervisor.send_status();

    // At the health checker's phase (a multiple of the interval since the
    // epoch, as on every gateway): the engine's tick and the checker's then
    // share a wake-up, and the NAT probes it sends reach the remotes in the
    // same burst as the health probes instead of waking them apart.
    let mut tick = tokio::time::interval_at(
        crate::prober::aligned_start(supervisor.cfg.health_check_interval),
        supervisor.cfg.health_check_interval,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_rtt_refresh = Instant::now();
    let mut last_counter_sample = Instant::now();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = active_rx.changed() => {
                if r.is_err() { break; }
                let active = *active_rx.borrow_and_update();
                supervisor.set_active(active).await;
            }
            r = ep_rx.changed() => {
                if r.is_err() { break; }
                let before = std::mem::replace(
                    &mut supervisor.remotes,
                    ep_rx.borrow_and_update().clone(),
                );
                supervisor.watch_peers(&before);
                supervisor.reconcile();
                supervisor.send_status();
            }
            Ok(()) = mapping_rx.changed() => {
                supervisor.mapping = mapping_rx.borrow_and_update().clone();
                supervisor.translate();
            }
            Some(event) = peer_rx.recv() => supervisor.on_peer_event(event).await,
            // A reply after a silence (which may turn a cable `connected`).
            () = heard.urgent() => supervisor.check_health(),
            // A silent cable turns `error` at its deadline, not at the next tick.
            _ = sleep_until_opt(supervisor.health_deadline()) => supervisor.check_health(),
            Some(event) = nat_event_rx.recv() => {
                // Everything that arrived meanwhile in one go: the verdicts
                // are compared (every remote's) once per batch, not per datagram.
                let mut events = vec![event];
                while events.len() < NAT_EVENT_BATCH
                    && let Ok(e) = nat_event_rx.try_recv()
                {
                    events.push(e);
                }
                supervisor.on_nat_events(events);
            }
            _ = tick.tick() => {
                supervisor.on_tick().await;
                if last_rtt_refresh.elapsed() >= RTT_REFRESH {
                    last_rtt_refresh = Instant::now();
                    // The cable's bytes ride on this refresh: no write of their own.
                    supervisor.sample_traffic();
                    supervisor.send_status();
                }
                if last_counter_sample.elapsed() >= COUNTER_SAMPLE {
                    last_counter_sample = Instant::now();
                    supervisor.sample_counters();
                }
            }
        }
    }
    tracing::info!("stopping: releasing the lease and taking the cable down");
    let _ = stop_tx.send(true);
    if let Some(t) = lease_task {
        let _ = t.await;
    }
    drop(keep_active);
    if supervisor.cfg.join.active_active {
        // No successor replaces this Endpoint: withdraw it, so the other
        // gateways and the route agents stop sending here at once.
        let name = supervisor.endpoint_name();
        if let Err(e) = publish::withdraw_endpoint(&supervisor.endpoints, &name).await {
            tracing::warn!("{e}");
        }
    }
    supervisor.active = false;
    supervisor.take_down();
    supervisor.send_status();
    // Let the writer flush the final (passive) status.
    drop(supervisor);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
    watch_task.abort();
    if let Some(t) = globalnet_task {
        t.abort();
    }
    prober_task.abort();
    peer_task.abort();
    nat_task.abort();
    Ok(())
}

/// Sends the NAT discovery probes that are due: slower towards a remote
/// whose cable passes its health checks.
fn probe_nat(nat: &mut NatState, health: &BTreeMap<String, ConnectionHealth>) {
    nat.probe(|cluster| {
        health
            .get(cluster)
            .is_some_and(|h| h.status() == ConnectionStatus::Connected)
    });
}

/// The state of this node's gateway, changed by the event loop of [`run`]:
/// whether it is active, its cable device and the cable to each remote
/// cluster, each cable's health, the published Endpoint, and the Gateway
/// status that reports all of it.
struct CableSupervisor {
    cfg: GatewayConfig,
    cable_cfg: CableConfig,
    policy: HealthPolicy,
    endpoints: Api<Endpoint>,
    cable: Option<Cable>,
    /// Whether this node holds the lease.
    active: bool,
    /// When a failed step was last retried.
    last_attempt: Instant,
    endpoint_published: bool,
    /// Every Endpoint in the namespace, by name.
    remotes: BTreeMap<String, EndpointSpec>,
    /// Active-active: the probes of this cluster's other gateways.
    peers: peer_prober::PeerWatch,
    /// The remote Endpoints this gateway cables, one per remote cluster
    /// ([`remote::partners`]), by name.
    partners: BTreeMap<String, EndpointSpec>,
    /// Remote cluster → its planned cable (or why there is none).
    plans: BTreeMap<String, Result<RemoteGateway, NotCabled>>,
    health: BTreeMap<String, ConnectionHealth>,
    /// Remote cluster → why attaching the cable failed.
    attach_errors: BTreeMap<String, String>,
    /// Why this gateway cannot serve (cable device failed), if it cannot.
    failure: Option<String>,
    targets: watch::Sender<BTreeMap<String, Target>>,
    /// What the health checker heard from each remote.
    heard: Arc<Heard>,
    status: watch::Sender<GatewayStatus>,
    nat: NatState,
    /// Globalnet's translation table and the mapping it follows.
    globalnet: crate::globalnet::Translator,
    mapping: crate::globalnet::Mapping,
    /// The cable device's bytes, sampled at each status refresh.
    traffic: TrafficMeter,
}

impl CableSupervisor {
    async fn set_active(&mut self, active: bool) {
        self.active = active;
        self.cfg.metrics.set_active(active);
        if active {
            if self.cable.is_none() {
                tracing::info!(node = %self.cfg.node_name, driver = %self.cfg.driver, "active: bringing the cable up");
                self.last_attempt = Instant::now();
                let cfg = self.cable_cfg.clone();
                match tokio::task::block_in_place(|| Cable::up(&cfg)) {
                    Ok(c) => {
                        self.cable = Some(c);
                        self.failure = None;
                    }
                    Err(e) => {
                        tracing::error!("cable: {e}");
                        self.failure = Some(e.to_string());
                    }
                }
            }
            self.publish_endpoint().await;
            self.reconcile();
            self.translate();
        } else {
            tracing::info!(node = %self.cfg.node_name, "passive: taking the cable down");
            self.take_down();
        }
        self.send_status();
    }

    /// The name of this gateway's Endpoint.
    fn endpoint_name(&self) -> String {
        publish::endpoint_name(
            &self.cfg.cluster_id,
            &self.cfg.node_name,
            self.cfg.join.active_active,
        )
    }

    fn take_down(&mut self) {
        if !self.cfg.global_cidrs.is_empty() {
            self.globalnet.remove();
        }
        if let Some(c) = self.cable.take() {
            tokio::task::block_in_place(|| c.down());
        }
        self.endpoint_published = false;
        self.traffic = TrafficMeter::default();
        self.nat.clear();
        self.plans.clear();
        self.health.clear();
        self.attach_errors.clear();
        let _ = self.targets.send(BTreeMap::new());
    }

    /// Installs Globalnet's translation for the current mapping (active
    /// with a cable, Globalnet on); a failure is retried on the next change.
    fn translate(&mut self) {
        let Some(cable) = self.cable.as_ref().filter(|_| self.active) else {
            return;
        };
        if self.cfg.global_cidrs.is_empty() {
            return;
        }
        let t = self.mapping.translation(
            cable.device(),
            &self.cfg.global_cidrs,
            &self.cfg.cluster_cidrs,
        );
        if let Err(e) = tokio::task::block_in_place(|| self.globalnet.apply(t)) {
            tracing::warn!("globalnet: {e}");
        }
    }

    async fn publish_endpoint(&mut self) {
        let Some(cable) = &self.cable else { return };
        let e = LocalEndpoint {
            name: self.endpoint_name(),
            cluster_id: self.cfg.cluster_id.clone(),
            hostname: self.cfg.node_name.clone(),
            driver: self.cfg.driver,
            private_ip: IpAddr::V4(self.cfg.private_ip),
            public_ip: IpAddr::V4(self.cfg.public_ip),
            subnets: self.cfg.subnets(),
            backend_config: {
                let mut b = cable.backend_config();
                b.insert(
                    ferry_api::ferry::backend_config::HEALTH_CHECK_PORT.into(),
                    self.cfg.health_check_port.to_string(),
                );
                b.insert(
                    ferry_api::ferry::backend_config::MTU.into(),
                    cable.mtu().to_string(),
                );
                b.insert(
                    prober::acked::BACKEND_CONFIG_KEY.into(),
                    prober::acked::BACKEND_CONFIG_VALUE.into(),
                );
                b.extend(join_backend_config(&self.cfg.join));
                if self.cfg.join.active_active {
                    let slot = ferry_api::gateway_pairs::slot_to_claim(
                        &self.cfg.cluster_id,
                        &self.endpoint_name(),
                        &self.remotes,
                    );
                    b.insert(GATEWAY_SLOT.into(), slot.to_string());
                }
                b
            },
            health_check_ip: IpAddr::V4(self.cfg.health_check_ip),
        };
        match publish::endpoint(&self.endpoints, &e).await {
            Ok(()) => {
                tracing::info!(endpoint = %e.cluster_id, "published this cluster's Endpoint");
                self.endpoint_published = true;
                let _ = self.nat.identity.send(Some(ferry_api::nat_discovery::Peer {
                    cluster_id: e.cluster_id.clone(),
                    endpoint: e.name.clone(),
                }));
            }
            Err(err) => tracing::warn!("{err}; retrying"),
        }
    }

    /// Active-active: probes the cluster's other gateways as their
    /// Endpoints now say, and publishes this gateway's Endpoint again (at
    /// the next retry) when a peer withdrew it or its slot clashes.
    fn watch_peers(&mut self, before: &BTreeMap<String, EndpointSpec>) {
        if !self.cfg.join.active_active {
            return;
        }
        let (cluster, me) = (&self.cfg.cluster_id, self.endpoint_name());
        self.peers.set_targets(&peers::peer_targets(
            cluster,
            &me,
            &self.remotes,
            self.cfg.peer.port,
        ));
        if !self.endpoint_published {
            return;
        }
        if let Some(why) = peers::check_own_endpoint(cluster, &me, before, &self.remotes) {
            tracing::warn!(endpoint = %me, ?why, "publishing this gateway's Endpoint again");
            self.endpoint_published = false;
        }
    }

    /// Withdraws the Endpoint of a peer gateway the probes judge down, so
    /// the route agents and the remote clusters stop sending through it.
    async fn on_peer_event(&mut self, event: peer_prober::PeerEvent) {
        let me = self.endpoint_name();
        let current =
            peers::peer_targets(&self.cfg.cluster_id, &me, &self.remotes, self.cfg.peer.port);
        if !peers::should_withdraw(&event.name, event.addr, event.verdict, &current) {
            return;
        }
        tracing::warn!(peer = %event.name, addr = %event.addr, "peer gateway down: withdrawing its Endpoint");
        if let Err(e) = publish::withdraw_endpoint(&self.endpoints, &event.name).await {
            tracing::warn!("{e}");
        }
    }

    /// Brings the cables in line with the remote Endpoints.
    fn reconcile(&mut self) {
        let my_endpoint = self.endpoint_name();
        let Some(cable) = self.cable.as_mut() else {
            return;
        };
        let local = LocalGateway {
            cluster_id: self.cfg.cluster_id.clone(),
            driver: self.cfg.driver,
            private_ip: self.cfg.private_ip,
            public_ip: self.cfg.public_ip,
            preferred_server: self.cfg.join.preferred_server,
        };
        self.partners = remote::partners(&self.cfg.cluster_id, &my_endpoint, &self.remotes);
        self.nat.track(&self.partners, &self.cfg.cluster_id);
        // A new remote is probed at once, not at the next tick.
        probe_nat(&mut self.nat, &self.health);
        let now = Instant::now();
        let mut plans = BTreeMap::new();
        for (name, spec) in &self.partners {
            let found = self.nat.found(&spec.cluster_id, now);
            self.nat.found.insert(spec.cluster_id.clone(), found);
            plans.insert(
                spec.cluster_id.clone(),
                remote::plan(&local, name, spec, &found),
            );
        }
        // A remote being probed anew (its Endpoint changed: a failover
        // there) keeps its cable until discovery decides: removing its
        // routes meanwhile would answer traffic with "unreachable".
        for (cluster, plan) in plans.iter_mut() {
            if matches!(plan, Err(NotCabled::Waiting(_)))
                && let Some(Ok(old)) = self.plans.get(cluster)
            {
                *plan = Ok(old.clone());
            }
        }
        // Vanished or unusable remotes lose their cable.
        let connected: Vec<String> = cable.connected().map(str::to_string).collect();
        for cluster in connected {
            if !matches!(plans.get(&cluster), Some(Ok(_))) {
                tracing::info!(cluster = %cluster, "disconnecting");
                if let Err(e) = tokio::task::block_in_place(|| cable.disconnect(&cluster)) {
                    tracing::warn!(cluster = %cluster, "disconnecting: {e}");
                }
            }
        }
        let now = Instant::now();
        self.attach_errors.clear();
        for (cluster, plan) in &plans {
            let Ok(r) = plan else { continue };
            let changed = !matches!(self.plans.get(cluster), Some(Ok(old)) if old == r);
            match tokio::task::block_in_place(|| cable.connect(r)) {
                Ok(()) => {
                    if changed {
                        tracing::info!(cluster = %cluster, ip = %r.using_ip, nat = r.using_nat, initiate = r.initiate, "cable connected");
                        self.health
                            .insert(cluster.clone(), ConnectionHealth::new(now));
                    }
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster, "connecting: {e}");
                    self.attach_errors.insert(cluster.clone(), e.to_string());
                }
            }
        }
        self.health
            .retain(|c, _| matches!(plans.get(c), Some(Ok(_))));
        let targets: BTreeMap<String, Target> = plans
            .iter()
            .filter(|_| self.cfg.join.health_check)
            .filter_map(|(c, p)| {
                let r = p.as_ref().ok()?;
                let acks = self.remotes.get(&r.endpoint).is_some_and(|s| {
                    s.backend_config
                        .get(prober::acked::BACKEND_CONFIG_KEY)
                        .map(String::as_str)
                        == Some(prober::acked::BACKEND_CONFIG_VALUE)
                });
                let role = Role::towards(&self.cfg.cluster_id, c, acks);
                Some((
                    c.clone(),
                    Target {
                        addr: r.health_check?,
                        role,
                    },
                ))
            })
            .collect();
        let _ = self.targets.send(targets);
        self.plans = plans;
    }

    fn on_nat_events(&mut self, events: Vec<NatEvent>) {
        let now = Instant::now();
        let mut taken = false;
        for event in events {
            match event {
                NatEvent::Request { from, request } => {
                    taken |= self.nat.on_request(from, request, self.active);
                }
                NatEvent::Response { from, response } => {
                    if let Some(d) = self.nat.discoveries.get_mut(&response.sender.cluster_id) {
                        d.on_response(now, from, &response);
                        taken = true;
                    }
                }
            }
        }
        if taken && self.nat.changed() {
            self.reconcile();
            self.send_status();
        }
    }

    /// Takes the health checker's news of every cable (the replies since
    /// the last read); returns whether a cable came up.
    fn take_heard(&mut self) -> bool {
        let mut changed = false;
        let health = &mut self.health;
        let metrics = &self.cfg.metrics;
        self.heard.read(|cluster, news| {
            metrics.observe_rtts(cluster, &news.rtts);
            let Some(last) = news.last else { return };
            if let Some(h) = health.get_mut(cluster)
                && h.on_heard(last, &news.rtts)
            {
                tracing::info!(cluster = %cluster, rtt = ?news.rtts.last(), "connection up");
                changed = true;
            }
        });
        changed
    }

    async fn on_tick(&mut self) {
        if self.active && self.cable.is_some() {
            probe_nat(&mut self.nat, &self.health);
            if self.nat.changed() {
                self.reconcile();
                self.send_status();
            }
        }
        self.check_health();
        // Retry whatever failed: the cable device, the Endpoint, attachments.
        if self.active && self.last_attempt.elapsed() >= RETRY {
            self.last_attempt = Instant::now();
            if self.cable.is_none() {
                self.set_active(true).await;
            } else if !self.endpoint_published {
                self.publish_endpoint().await;
            } else if !self.attach_errors.is_empty() {
                self.reconcile();
            }
        }
    }

    /// Takes the replies heard so far, then applies the health timeouts;
    /// a change goes out at once.
    fn check_health(&mut self) {
        let mut changed = self.take_heard();
        let now = Instant::now();
        for (cluster, h) in &mut self.health {
            if h.on_tick(now, &self.policy) {
                tracing::warn!(cluster = %cluster, "connection error: {}", h.message(now));
                changed = true;
            }
        }
        if changed {
            self.send_status();
        }
    }

    /// The earliest instant a cable turns `error` without another reply.
    fn health_deadline(&self) -> Option<Instant> {
        self.health
            .values()
            .filter_map(|h| h.deadline(&self.policy))
            .min()
    }

    fn build_status(&self) -> GatewayStatus {
        if !self.active {
            return GatewayStatus {
                ha_status: HaStatus::Passive,
                ..Default::default()
            };
        }
        let now = Instant::now();
        let mut connections = Vec::new();
        for (cluster, plan) in &self.plans {
            let endpoint = self
                .partners
                .iter()
                .find(|(_, s)| &s.cluster_id == cluster)
                .map(|(n, s)| (n.clone(), s.cable_driver));
            let Some((endpoint, driver)) = endpoint else {
                continue;
            };
            let mut c = Connection {
                endpoint,
                cluster_id: cluster.clone(),
                cable_driver: driver,
                status: ConnectionStatus::Error,
                status_message: String::new(),
                using_ip: None,
                using_nat: false,
                latency_rtt: None,
                nat_discovery: self
                    .nat
                    .discoveries
                    .get(cluster)
                    .map(|d| d.report(now, &self.nat.policy)),
            };
            match plan {
                Err(NotCabled::Waiting(why)) => {
                    c.status = ConnectionStatus::Connecting;
                    c.status_message = why.clone();
                }
                Err(NotCabled::Unusable(why)) => c.status_message = why.clone(),
                Ok(r) => {
                    c.using_ip = Some(IpAddr::V4(r.using_ip));
                    c.using_nat = r.using_nat;
                    if let Some(err) = self.attach_errors.get(cluster) {
                        c.status_message = err.clone();
                    } else if !self.cfg.join.health_check {
                        // As Submariner without health checks: attached is connected.
                        c.status = ConnectionStatus::Connected;
                        c.status_message = "health check off (join --health-check=false)".into();
                    } else if let Some(h) = self.health.get(cluster) {
                        c.status = h.status();
                        c.status_message = h.message(now);
                        c.latency_rtt = h.rtt();
                    }
                    // The driver knows why it cannot connect (IPsec: a wrong key).
                    if c.status != ConnectionStatus::Connected
                        && let Some(why) = self.cable.as_ref().and_then(|k| k.failure(cluster))
                    {
                        c.status_message = join_messages(&c.status_message, &why);
                    }
                    if let Some(note) = self.cable.as_ref().and_then(|k| k.notice(cluster)) {
                        c.status_message = join_messages(&c.status_message, &note);
                    }
                    if r.health_check.is_none() && c.status_message.is_empty() {
                        c.status_message = "its Endpoint has no health-check IP".into();
                    }
                    // The cable was tried without a path NAT discovery
                    // could confirm: say so next to what the health check says.
                    if let Some(nd) = &c.nat_discovery
                        && nd.result == ferry_api::NatDiscoveryResult::Unreachable
                    {
                        c.status_message = format!(
                            "{}{}NAT discovery: {}",
                            c.status_message,
                            if c.status_message.is_empty() {
                                ""
                            } else {
                                "; "
                            },
                            nd.message
                        );
                    }
                }
            }
            connections.push(c);
        }
        GatewayStatus {
            ha_status: HaStatus::Active,
            local_endpoint: self.endpoint_published.then(|| self.endpoint_name()),
            status_failure: self.failure.clone(),
            connections,
            traffic: self.traffic.report(),
        }
    }

    /// The cable device's counters into the next status (none while passive).
    fn sample_traffic(&mut self) {
        let device = self
            .cable
            .as_ref()
            .filter(|_| self.active)
            .map(Cable::device);
        self.traffic.sample(device);
    }

    /// The cable driver's byte and handshake counters into the metrics.
    fn sample_counters(&self) {
        let counters = self.cable.as_ref().map(Cable::counters).unwrap_or_default();
        self.cfg.metrics.observe_counters(&counters);
    }

    fn send_status(&self) {
        let s = self.build_status();
        self.cfg.metrics.observe_status(&s);
        self.status.send_if_modified(|cur| {
            if *cur == s {
                false
            } else {
                *cur = s;
                true
            }
        });
    }
}

/// Sleeps until `at`; never completes for `None`.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// `a; b`, or whichever is not empty.
fn join_messages(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

/// The Endpoint's `backendConfig` entries for `join`'s cable settings.
fn join_backend_config(join: &crate::config::JoinSettings) -> BTreeMap<String, String> {
    use ferry_api::ferry::backend_config::{FORCE_UDP_ENCAPS, NAT_ENABLED, PREFERRED_SERVER};
    let mut b = BTreeMap::new();
    b.insert(NAT_ENABLED.into(), join.nat_traversal.to_string());
    for (on, key) in [
        (join.preferred_server, PREFERRED_SERVER),
        (join.force_udp_encaps, FORCE_UDP_ENCAPS),
    ] {
        if on {
            b.insert(key.into(), "true".into());
        }
    }
    b
}

/// Reports why this node's gateway cannot start (e.g. a node annotation
/// that does not parse) in its `Gateway` status, as a passive gateway with a
/// `statusFailure`, so `ferry show gateways` and `kubectl get gateways -o
/// yaml` name the cause.
pub async fn report_failure(
    client: &Client,
    namespace: &str,
    node: &str,
    cluster_id: &str,
    failure: &str,
) -> Result<()> {
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), namespace);
    publish::gateway_object(&gateways, node, cluster_id).await?;
    let status = GatewayStatus {
        ha_status: HaStatus::Passive,
        status_failure: Some(failure.to_string()),
        ..Default::default()
    };
    publish::gateway_status(&gateways, node, &status).await
}

/// Writes the latest status whenever it changes; failed writes are retried
/// with the then-latest status.
async fn status_writer(api: Api<Gateway>, node: String, mut rx: watch::Receiver<GatewayStatus>) {
    loop {
        let s = rx.borrow_and_update().clone();
        let mut backoff = Duration::from_millis(50);
        loop {
            match publish::gateway_status(&api, &node, &s).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!("{e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if rx.has_changed().unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        if rx.changed().await.is_err() {
            // CableSupervisor gone: write the final value if it changed meanwhile.
            let last = rx.borrow().clone();
            if last != s {
                let _ = publish::gateway_status(&api, &node, &last).await;
            }
            return;
        }
    }
}

/// Every Endpoint in the namespace, by name, sent on each change of the set.
fn watch_endpoints(
    api: Api<Endpoint>,
    tx: watch::Sender<BTreeMap<String, EndpointSpec>>,
) -> impl Future<Output = ()> + Send + 'static {
    let (_, run) = Watch::new(api, watcher::Config::default()).into_store(move |store| {
        let snapshot: BTreeMap<String, EndpointSpec> = store
            .state()
            .iter()
            .filter_map(|e| Some((e.metadata.name.clone()?, e.spec.clone())))
            .collect();
        tx.send_if_modified(|cur| {
            if *cur == snapshot {
                false
            } else {
                *cur = snapshot;
                true
            }
        });
    });
    run
}

/// MTU of the interface holding the node's private IP (1500 if unknown).
fn underlay_mtu(cfg: &GatewayConfig) -> u32 {
    ferry_net::interface_of(None, IpAddr::V4(cfg.private_ip))
        .and_then(|dev| ferry_net::link_mtu(None, &dev))
        .unwrap_or(1500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JoinSettings;

    #[test]
    fn join_settings_are_published_in_backend_config() {
        let plain = join_backend_config(&JoinSettings::default());
        assert_eq!(
            plain,
            BTreeMap::from([("natEnabled".to_string(), "true".to_string())])
        );
        let seed = JoinSettings {
            nat_traversal: false,
            preferred_server: true,
            force_udp_encaps: true,
            ..JoinSettings::default()
        };
        let b = join_backend_config(&seed);
        assert_eq!(b["natEnabled"], "false");
        assert_eq!(b["preferredServer"], "true");
        assert_eq!(b["forceUdpEncaps"], "true");
    }
}
