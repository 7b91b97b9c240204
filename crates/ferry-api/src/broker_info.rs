//! The `broker-info.ferry` format: what `ferry deploy-broker` writes and
//! `ferry join` reads. On disk it is the base64 of a JSON document:
//!
//! ```json
//! {"apiServerUrl":"https://192.0.2.1:6443","caBundle":"-----BEGIN CERTIFICATE-----…",
//!  "token":"…","brokerNamespace":"ferry-broker","clustersetDomain":"clusterset.local",
//!  "cablePsk":"<base64 of 32 bytes>",
//!  "settings":{"globalnet":false,"defaultCableDriver":"wireguard","healthCheckInterval":"100ms",
//!              "components":["service-discovery","connectivity"]}}
//! ```
//!
//! [`BrokerInfo::decode`] names exactly what is wrong with a bad file.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::labels::{BROKER_NAMESPACE, CLUSTERSET_DOMAIN};
use crate::{CableDriver, Cidr, Error, Result, validate_cluster_id};

/// Length of the cables' pre-shared key in bytes.
pub const CABLE_PSK_LEN: usize = 32;

/// Default interval between health checks through each cable.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: std::time::Duration =
    std::time::Duration::from_millis(100);

/// Everything a cluster needs to join the broker, and the settings every
/// member must agree on. `Debug` hides the token and the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerInfo {
    /// `https://` URL of the broker's Kubernetes API.
    pub api_server_url: String,
    /// PEM bundle of the CA(s) that sign the broker API's serving certificate.
    pub ca_bundle: String,
    /// Bearer token for the broker API: the credential `join` uses to obtain
    /// a token scoped to its cluster id.
    pub token: String,
    /// Namespace on the broker holding the clusterset's objects.
    #[serde(default = "default_broker_namespace")]
    pub broker_namespace: String,
    /// DNS zone of the clusterset, normally `clusterset.local`.
    #[serde(default = "default_clusterset_domain")]
    pub clusterset_domain: String,
    /// Pre-shared key for the cables: base64 of [`CABLE_PSK_LEN`] bytes.
    pub cable_psk: String,
    /// Settings every member cluster must share.
    #[serde(default)]
    pub settings: SharedSettings,
}

/// Settings every member cluster must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SharedSettings {
    /// Whether the broker was deployed with Globalnet (`deploy-broker
    /// --globalnet`): its pool is [`Self::globalnet_cidr_range`]. Each
    /// cluster still chooses Globalnet for itself (`join --globalnet`).
    pub globalnet: bool,
    /// The global pool clusters take their Globalnet block from
    /// (`deploy-broker --globalnet-cidr-range`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globalnet_cidr_range: Option<Cidr>,
    /// Addresses per cluster block (`deploy-broker --globalnet-cluster-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globalnet_cluster_size: Option<u32>,
    /// The cable driver clusters use unless `join --cable-driver` says otherwise.
    pub default_cable_driver: CableDriver,
    /// Interval between health checks through each cable (Go duration, e.g. `100ms`).
    pub health_check_interval: kube::core::Duration,
    /// Whether imported ClusterSetIP services get a routed ClusterSet IP
    /// (`deploy-broker --enable-clusterset-ip`): each importing cluster's
    /// derived Service's ClusterIP, from that cluster's service range.
    /// Off: a ClusterSetIP service is answered with an exporting cluster's
    /// own service IP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clusterset_ip: bool,
    /// Which parts `join` deploys (`deploy-broker --components`).
    pub components: Components,
}

/// One part of ferry that `join` can deploy, as `subctl deploy-broker
/// --components` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// The MCS exchange and `ferry dns` (Submariner's Lighthouse).
    ServiceDiscovery,
    /// The gateways and route agents: traffic between clusters.
    Connectivity,
}

impl Component {
    /// Every component, in a stable order.
    pub const ALL: [Component; 2] = [Component::ServiceDiscovery, Component::Connectivity];

    /// The name `--components` takes.
    pub fn as_str(&self) -> &'static str {
        match self {
            Component::ServiceDiscovery => "service-discovery",
            Component::Connectivity => "connectivity",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Component {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::InvalidComponent(s.to_string()))
    }
}

/// The set of [`Component`]s `join` deploys; serialized as a list of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Components {
    /// [`Component::ServiceDiscovery`] is on.
    pub service_discovery: bool,
    /// [`Component::Connectivity`] is on.
    pub connectivity: bool,
}

impl Default for Components {
    fn default() -> Self {
        Self {
            service_discovery: true,
            connectivity: true,
        }
    }
}

impl Components {
    /// Parses a comma-separated list (`service-discovery,connectivity`);
    /// at least one component, each known.
    pub fn parse_list(list: &str) -> Result<Self> {
        let mut out = Components {
            service_discovery: false,
            connectivity: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.parse::<Component>()? {
                Component::ServiceDiscovery => out.service_discovery = true,
                Component::Connectivity => out.connectivity = true,
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidComponent(list.to_string()));
        }
        Ok(out)
    }

    /// Whether `c` is on.
    pub fn has(&self, c: Component) -> bool {
        match c {
            Component::ServiceDiscovery => self.service_discovery,
            Component::Connectivity => self.connectivity,
        }
    }

    /// The components that are on, in [`Component::ALL`] order.
    pub fn list(&self) -> Vec<Component> {
        Component::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .collect()
    }

    fn is_empty(&self) -> bool {
        !self.service_discovery && !self.connectivity
    }
}

impl fmt::Display for Components {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.list().iter().map(Component::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Components {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.list().iter().map(Component::as_str))
    }
}

impl<'de> Deserialize<'de> for Components {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let names: Vec<String> = Vec::deserialize(d)?;
        Components::parse_list(&names.join(",")).map_err(serde::de::Error::custom)
    }
}

impl Default for SharedSettings {
    fn default() -> Self {
        Self {
            globalnet: false,
            globalnet_cidr_range: None,
            globalnet_cluster_size: None,
            default_cable_driver: CableDriver::default(),
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL.into(),
            components: Components::default(),
            clusterset_ip: false,
        }
    }
}

impl BrokerInfo {
    /// A broker info with the default namespace, domain and settings.
    pub fn new(
        api_server_url: impl Into<String>,
        ca_bundle: impl Into<String>,
        token: impl Into<String>,
        cable_psk: &[u8; CABLE_PSK_LEN],
    ) -> Self {
        Self {
            api_server_url: api_server_url.into(),
            ca_bundle: ca_bundle.into(),
            token: token.into(),
            broker_namespace: BROKER_NAMESPACE.to_string(),
            clusterset_domain: CLUSTERSET_DOMAIN.to_string(),
            cable_psk: STANDARD.encode(cable_psk),
            settings: SharedSettings::default(),
        }
    }

    /// Parses the contents of a `broker-info.ferry` file (surrounding and
    /// embedded whitespace, such as line wrapping, is ignored) and validates
    /// every field. The error names what is wrong: not base64, not JSON
    /// (with serde's message), a missing field, or which field is invalid and why.
    pub fn decode(text: &str) -> Result<Self> {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if compact.is_empty() {
            return Err(Error::BrokerInfoEmpty);
        }
        let json = STANDARD
            .decode(compact.as_bytes())
            .map_err(Error::BrokerInfoNotBase64)?;
        let value: Value = serde_json::from_slice(&json).map_err(Error::BrokerInfoNotJson)?;
        let mut top = into_object(value)?;

        let settings = match top.remove("settings") {
            None => SharedSettings::default(),
            Some(value) => {
                let mut obj = match value {
                    Value::Object(obj) => obj,
                    other => {
                        return Err(Error::BrokerInfoInvalidField {
                            field: "settings",
                            reason: format!("must be an object, found {}", type_name(&other)),
                        });
                    }
                };
                let defaults = SharedSettings::default();
                SharedSettings {
                    globalnet: optional(&mut obj, "globalnet", "settings.globalnet")?
                        .unwrap_or(defaults.globalnet),
                    globalnet_cidr_range: optional(
                        &mut obj,
                        "globalnetCidrRange",
                        "settings.globalnetCidrRange",
                    )?,
                    globalnet_cluster_size: optional(
                        &mut obj,
                        "globalnetClusterSize",
                        "settings.globalnetClusterSize",
                    )?,
                    default_cable_driver: optional(
                        &mut obj,
                        "defaultCableDriver",
                        "settings.defaultCableDriver",
                    )?
                    .unwrap_or(defaults.default_cable_driver),
                    health_check_interval: optional(
                        &mut obj,
                        "healthCheckInterval",
                        "settings.healthCheckInterval",
                    )?
                    .unwrap_or(defaults.health_check_interval),
                    components: optional(&mut obj, "components", "settings.components")?
                        .unwrap_or(defaults.components),
                    // A broker-info written by an earlier ferry carries the
                    // range its agents allocated from; that switched
                    // ClusterSet IPs on, and still does.
                    clusterset_ip: optional(&mut obj, "clustersetIp", "settings.clustersetIp")?
                        .unwrap_or(false)
                        || optional::<Cidr>(
                            &mut obj,
                            "clustersetIpCidr",
                            "settings.clustersetIpCidr",
                        )?
                        .is_some(),
                }
            }
        };

        let info = BrokerInfo {
            api_server_url: required(&mut top, "apiServerUrl")?,
            ca_bundle: required(&mut top, "caBundle")?,
            token: required(&mut top, "token")?,
            broker_namespace: optional(&mut top, "brokerNamespace", "brokerNamespace")?
                .unwrap_or_else(|| BROKER_NAMESPACE.to_string()),
            clusterset_domain: optional(&mut top, "clustersetDomain", "clustersetDomain")?
                .unwrap_or_else(|| CLUSTERSET_DOMAIN.to_string()),
            cable_psk: required(&mut top, "cablePsk")?,
            settings,
        };
        info.validate()?;
        Ok(info)
    }

    /// Validates, then renders the `broker-info.ferry` contents (one line of
    /// base64, no trailing newline).
    pub fn encode(&self) -> Result<String> {
        self.validate()?;
        let json = serde_json::to_vec(self).map_err(|e| Error::Serialize {
            what: "broker info".into(),
            reason: e.to_string(),
        })?;
        Ok(STANDARD.encode(json))
    }

    /// Checks every field: an `https://` URL with a host, a PEM certificate
    /// bundle, a non-empty token without whitespace, a valid namespace and
    /// domain, a 32-byte key, a positive health-check interval.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: String| {
            Err(Error::BrokerInfoInvalidField { field, reason })
        };

        let url = &self.api_server_url;
        match url.parse::<http::Uri>() {
            Err(e) => return invalid("apiServerUrl", format!("{url:?} is not a URL: {e}")),
            Ok(uri) => {
                if uri.scheme_str() != Some("https") {
                    return invalid("apiServerUrl", format!("{url:?} must start with https://"));
                }
                if uri.host().is_none_or(str::is_empty) {
                    return invalid("apiServerUrl", format!("{url:?} has no host"));
                }
            }
        }

        if !(self.ca_bundle.contains("-----BEGIN CERTIFICATE-----")
            && self.ca_bundle.contains("-----END CERTIFICATE-----"))
        {
            return invalid(
                "caBundle",
                "must be a PEM bundle with at least one -----BEGIN CERTIFICATE----- block".into(),
            );
        }

        if self.token.is_empty() {
            return invalid("token", "must not be empty".into());
        }
        if self
            .token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid(
                "token",
                "must not contain whitespace or control characters".into(),
            );
        }

        if let Err(Error::InvalidClusterId { reason, .. }) =
            validate_cluster_id(&self.broker_namespace)
        {
            return invalid(
                "brokerNamespace",
                format!(
                    "{:?} is not a namespace name: {reason}",
                    self.broker_namespace
                ),
            );
        }

        if let Err(reason) = check_domain(&self.clusterset_domain) {
            return invalid(
                "clustersetDomain",
                format!("{:?} is not a DNS domain: {reason}", self.clusterset_domain),
            );
        }

        self.cable_psk_bytes()?;

        let interval = self.settings.health_check_interval;
        if interval.is_negative() || std::time::Duration::from(interval).is_zero() {
            return invalid(
                "settings.healthCheckInterval",
                format!("must be positive, got {interval}"),
            );
        }
        Ok(())
    }

    /// The decoded pre-shared key.
    pub fn cable_psk_bytes(&self) -> Result<[u8; CABLE_PSK_LEN]> {
        let bytes = STANDARD.decode(self.cable_psk.as_bytes()).map_err(|e| {
            Error::BrokerInfoInvalidField {
                field: "cablePsk",
                reason: format!("not base64: {e}"),
            }
        })?;
        let len = bytes.len();
        bytes.try_into().map_err(|_| Error::BrokerInfoInvalidField {
            field: "cablePsk",
            reason: format!("must decode to {CABLE_PSK_LEN} bytes, got {len}"),
        })
    }
}

impl fmt::Debug for BrokerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerInfo")
            .field("api_server_url", &self.api_server_url)
            .field(
                "ca_bundle",
                &format_args!("<{} bytes of PEM>", self.ca_bundle.len()),
            )
            .field("token", &"<redacted>")
            .field("broker_namespace", &self.broker_namespace)
            .field("clusterset_domain", &self.clusterset_domain)
            .field("cable_psk", &"<redacted>")
            .field("settings", &self.settings)
            .finish()
    }
}

fn default_broker_namespace() -> String {
    BROKER_NAMESPACE.to_string()
}

fn default_clusterset_domain() -> String {
    CLUSTERSET_DOMAIN.to_string()
}

fn into_object(value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(Error::BrokerInfoNotObject {
            found: type_name(&other),
        }),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required<T: DeserializeOwned>(obj: &mut Map<String, Value>, key: &'static str) -> Result<T> {
    optional(obj, key, key)?.ok_or(Error::BrokerInfoMissingField(key))
}

/// `key` from `obj`, or `None` when absent or null; `field` is the dotted
/// name used in errors.
fn optional<T: DeserializeOwned>(
    obj: &mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<T>> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            serde_json::from_value(value)
                .map(Some)
                .map_err(|e| Error::BrokerInfoInvalidField {
                    field,
                    reason: e.to_string(),
                })
        }
    }
}

/// A DNS name of RFC 1123 labels separated by dots, no trailing dot.
fn check_domain(domain: &str) -> std::result::Result<(), String> {
    if domain.is_empty() {
        return Err("must not be empty".into());
    }
    if domain.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in domain.split('.') {
        if let Err(Error::InvalidClusterId { reason, .. }) = validate_cluster_id(label) {
            return Err(format!("label {label:?} {reason}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
