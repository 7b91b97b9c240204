//! `ferry show topology`: the clusterset as a picture — clusters, their
//! gateways (active/standby), the cables between them with driver, status
//! and RTT, and imported/exported service counts. [`Topology::from_report`]
//! builds the model from the same [`Report`] `show` prints (no I/O);
//! [`text`], [`dot`] and [`svg`] render it (pure). Unhealthy cables stand
//! out in every format: marked in text, red in dot and SVG.

mod dot;
mod svg;
mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_api::{CableDriver, ConnectionStatus, HaStatus};
use serde::Serialize;

pub use dot::dot;
pub use svg::{escape, svg};
pub use text::text;

use super::Section;
use super::model::{ClusterReport, Report};

/// The sections of `show` the topology is built from.
pub const SECTIONS: [Section; 4] = [
    Section::Connections,
    Section::Endpoints,
    Section::Gateways,
    Section::Services,
];

/// The clusterset as one picture.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    /// Every cluster read or named by another, by id.
    pub clusters: Vec<ClusterNode>,
    /// One cable per pair of clusters, whichever side reported it.
    pub cables: Vec<Cable>,
}

/// One cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNode {
    /// Its cluster id (or, when it could not be read, how it was named).
    pub id: String,
    /// Whether its own API was read (otherwise it is only known from the
    /// others' endpoints and cables).
    pub read: bool,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its gateway nodes.
    pub gateways: Vec<GatewayNode>,
    /// ServiceImports in it (when read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<usize>,
    /// ServiceExports in it (when read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported: Option<usize>,
}

/// A gateway node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Holds the lease: its cables carry the traffic.
    Active,
    /// Waits to take over.
    Standby,
    /// Has not reported (or is only known from another cluster's Endpoint,
    /// which only names the active one).
    Unknown,
}

/// One gateway node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayNode {
    /// Node name.
    pub node: String,
    /// Its role.
    pub role: Role,
    /// Its part of the bytes its cluster's gateways moved in their last
    /// status window (`show gateways`' SHARE), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_percent: Option<f64>,
}

impl GatewayNode {
    /// `active`, or `active, 52%` when its traffic share is known.
    pub fn role_label(&self, role: &str) -> String {
        match self.share_percent {
            Some(p) => format!("{role}, {p:.0}%"),
            None => role.to_string(),
        }
    }
}

/// How a cable is doing, worst end first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// Some end reports an error: the cable does not carry traffic.
    Down,
    /// Some end is still connecting.
    Connecting,
    /// Every end reporting it is connected.
    Up,
}

impl Health {
    fn of(s: ConnectionStatus) -> Health {
        match s {
            ConnectionStatus::Connected => Health::Up,
            ConnectionStatus::Connecting => Health::Connecting,
            ConnectionStatus::Error => Health::Down,
        }
    }

    /// The word the renderings use (also the SVG's `data-status`).
    pub fn word(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Connecting => "connecting",
            Health::Down => "down",
        }
    }
}

/// A cable between two clusters.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cable {
    /// One cluster (the smaller id).
    pub a: String,
    /// The other.
    pub b: String,
    /// Cable driver (of the first end reporting it).
    pub driver: CableDriver,
    /// The worst state any end reports.
    pub health: Health,
    /// Mean of the ends' average RTTs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Duration>,
    /// What each end's gateway reports.
    pub ends: Vec<CableEnd>,
}

/// A cable as one cluster's gateway reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CableEnd {
    /// The reporting cluster.
    pub cluster: String,
    /// Its gateway node.
    pub gateway: String,
    /// Its state.
    pub health: Health,
    /// Average RTT of its health checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Duration>,
    /// Why, when it is not up.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Topology {
    /// The topology of the clusters `report` read (built with at least
    /// [`SECTIONS`]); clusters only named by others' endpoints or cables
    /// are included as not read.
    pub fn from_report(report: &Report) -> Topology {
        let mut clusters: BTreeMap<String, ClusterNode> = BTreeMap::new();
        let mut cables: BTreeMap<(String, String), Cable> = BTreeMap::new();
        for c in &report.clusters {
            let node = read_cluster(c);
            clusters.insert(node.id.clone(), node);
        }
        for c in report.clusters.iter().filter(|c| c.error.is_none()) {
            let Some(id) = &c.cluster_id else { continue };
            for e in c.view.endpoints.iter().flatten().filter(|e| !e.local) {
                let other = clusters
                    .entry(e.cluster.clone())
                    .or_insert_with(|| unread(&e.cluster));
                if !other.read && !other.gateways.iter().any(|g| g.node == e.hostname) {
                    other.gateways.push(GatewayNode {
                        node: e.hostname.clone(),
                        role: Role::Unknown,
                        share_percent: None,
                    });
                }
            }
            for r in c.view.connections.iter().flatten() {
                clusters
                    .entry(r.cluster.clone())
                    .or_insert_with(|| unread(&r.cluster));
                let key = if *id <= r.cluster {
                    (id.clone(), r.cluster.clone())
                } else {
                    (r.cluster.clone(), id.clone())
                };
                let cable = cables.entry(key.clone()).or_insert_with(|| Cable {
                    a: key.0,
                    b: key.1,
                    driver: r.cable_driver,
                    health: Health::Up,
                    rtt: None,
                    ends: Vec::new(),
                });
                cable.ends.push(CableEnd {
                    cluster: id.clone(),
                    gateway: r.gateway.clone(),
                    health: Health::of(r.status),
                    rtt: r.latency_rtt.map(|l| Duration::from(l.average)),
                    message: r.status_message.clone(),
                });
            }
        }
        let cables = cables.into_values().map(summarize).collect();
        Topology {
            clusters: clusters.into_values().collect(),
            cables,
        }
    }
}

/// A cable's health and RTT from its ends.
fn summarize(mut cable: Cable) -> Cable {
    cable
        .ends
        .sort_by(|x, y| (&x.cluster, &x.gateway).cmp(&(&y.cluster, &y.gateway)));
    cable.health = cable
        .ends
        .iter()
        .map(|e| e.health)
        .min()
        .unwrap_or(Health::Down);
    let rtts: Vec<Duration> = cable.ends.iter().filter_map(|e| e.rtt).collect();
    cable.rtt = (!rtts.is_empty()).then(|| rtts.iter().sum::<Duration>() / rtts.len() as u32);
    cable
}

fn unread(id: &str) -> ClusterNode {
    ClusterNode {
        id: id.to_string(),
        read: false,
        error: None,
        gateways: Vec::new(),
        imported: None,
        exported: None,
    }
}

/// A cluster whose API was asked: its gateways and service counts, or why
/// it could not be read.
fn read_cluster(c: &ClusterReport) -> ClusterNode {
    let id = c.cluster_id.clone().unwrap_or_else(|| c.source.clone());
    if c.error.is_some() {
        return ClusterNode {
            error: c.error.clone(),
            ..unread(&id)
        };
    }
    let gateways = c
        .view
        .gateways
        .iter()
        .flatten()
        .map(|g| GatewayNode {
            node: g.node.clone(),
            role: match g.ha_status {
                Some(HaStatus::Active) => Role::Active,
                Some(HaStatus::Passive) => Role::Standby,
                None => Role::Unknown,
            },
            share_percent: g.share_percent,
        })
        .collect();
    let services = c.view.services.as_ref();
    ClusterNode {
        id,
        read: true,
        error: None,
        gateways,
        imported: services.map(|s| s.imports.len()),
        exported: services.map(|s| s.exports.len()),
    }
}

/// `wireguard · up · 0.35ms`: a cable's label.
pub fn cable_label(c: &Cable) -> String {
    let mut label = format!("{} · {}", c.driver, c.health.word());
    if let Some(rtt) = c.rtt {
        label.push_str(&format!(" · {}", super::render::fmt_duration(rtt)));
    }
    label
}

/// `imports 2 · exports 1`, or why the cluster was not read.
pub fn service_counts(c: &ClusterNode) -> String {
    match (&c.error, c.imported, c.exported) {
        (Some(_), _, _) => "unreachable".into(),
        (None, Some(i), Some(e)) => format!("imports {i} · exports {e}"),
        _ => "not read".into(),
    }
}

#[cfg(test)]
mod tests;
