//! Reading back the [`BROKER_SECRET`](crate::BROKER_SECRET) that
//! [`cluster_manifests`](crate::cluster_manifests) writes: the agent, the
//! gateway and the CLI all start from it.

use std::collections::BTreeMap;

use ferry_api::{BrokerInfo, Cidr, NetworkPlugin};
use k8s_openapi::api::core::v1::Secret;

use crate::secret_keys;
use crate::{Error, Result};

/// What `ferry join` keeps in a member cluster's broker Secret.
#[derive(Clone, Debug)]
pub struct BrokerSecret {
    /// This cluster's id.
    pub cluster_id: String,
    /// Its pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// Its service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Its global CIDRs (Globalnet); empty: Globalnet is off.
    pub global_cidrs: Vec<Cidr>,
    /// The CNI `join` detected; `None`: generic (or joined before it was kept).
    pub network_plugin: Option<NetworkPlugin>,
    /// The broker, with this cluster's own token.
    pub broker_info: BrokerInfo,
}

impl BrokerSecret {
    /// Reads the Secret's data (the cable driver, optional, is left to the
    /// gateway).
    pub fn from_secret(secret: &Secret) -> Result<BrokerSecret> {
        let data: BTreeMap<String, String> = secret
            .data
            .as_ref()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let get = |k: &str| {
            data.get(k)
                .cloned()
                .ok_or_else(|| Error::MissingSecretKey(k.to_string()))
        };
        let list = |k: &str| -> Result<Vec<Cidr>> {
            match data.get(k).map(|s| s.trim()) {
                None | Some("") => Ok(Vec::new()),
                Some(s) => Ok(Cidr::parse_list(s)?),
            }
        };
        Ok(BrokerSecret {
            broker_info: BrokerInfo::decode(&get(secret_keys::BROKER_INFO)?)?,
            cluster_id: get(secret_keys::CLUSTER_ID)?,
            cluster_cidrs: list(secret_keys::CLUSTER_CIDRS)?,
            service_cidrs: list(secret_keys::SERVICE_CIDRS)?,
            global_cidrs: list(secret_keys::GLOBAL_CIDRS)?,
            network_plugin: match data.get(secret_keys::NETWORK_PLUGIN).map(|s| s.trim()) {
                None | Some("") => None,
                Some(s) => Some(s.parse()?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ClusterParams, cluster_manifests};

    #[test]
    fn what_join_writes_reads_back() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let info = BrokerInfo::new("https://b:6443", pem, "tok", &[1; 32]);
        let params = ClusterParams {
            cluster_id: "east".into(),
            image: "ferry:test".into(),
            namespace: "ferry-system".into(),
            broker_info: info.encode().unwrap(),
            cluster_cidrs: vec!["100.64.0.0/16".parse().unwrap()],
            service_cidrs: Vec::new(),
            global_cidrs: vec!["100.120.1.0/24".parse().unwrap()],
            network_plugin: Some(NetworkPlugin::KubeOvn),
            cable_driver: ferry_api::CableDriver::Wireguard,
            gateway: Default::default(),
            components: Default::default(),
        };
        let secret = cluster_manifests(&params)
            .unwrap()
            .into_iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == crate::BROKER_SECRET)
            .unwrap();
        let secret: Secret = serde_json::from_value(secret).unwrap();
        let read = BrokerSecret::from_secret(&secret).unwrap();
        assert_eq!(read.cluster_id, "east");
        assert_eq!(read.cluster_cidrs, params.cluster_cidrs);
        assert!(read.service_cidrs.is_empty());
        assert_eq!(read.global_cidrs, params.global_cidrs);
        assert_eq!(read.network_plugin, Some(NetworkPlugin::KubeOvn));
        assert_eq!(read.broker_info.token, "tok");
    }

    #[test]
    fn a_missing_key_is_named() {
        let e = BrokerSecret::from_secret(&Secret::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: the broker Secret has no key \"broker-info\""
        );
    }
}
