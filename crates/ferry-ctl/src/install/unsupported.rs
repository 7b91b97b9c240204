//! subctl's flags whose meaning ferry does not implement (yet), each refused
//! with one line saying why and one saying what to do instead — a flag a user
//! copies from Submariner's docs is never silently ignored — and the one
//! place that maps `--cable-driver` names to drivers ([`cable_driver`]).

use ferry_api::CableDriver;

/// A flag ferry accepts by name but refuses by meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// `--load-balancer`: gateways behind a LoadBalancer Service.
    #[error("--load-balancer: ferry does not put gateways behind a LoadBalancer Service")]
    LoadBalancer,
    /// `--custom-domains`: extra DNS zones besides the clusterset's.
    #[error("--custom-domains: ferry dns serves only the clusterset domain of broker-info.ferry")]
    CustomDomains,
    /// `--coredns-custom-configmap`.
    #[error("--coredns-custom-configmap: ferry edits kube-system/coredns (its Corefile) only")]
    CorednsCustomConfigmap,
    /// `join --enable-clusterset-ip` in a clusterset whose broker did not
    /// switch them on, or `join --clusterset-ip-cidr`: per cluster.
    #[error(
        "{flag}: ferry's ClusterSet IPs are switched on for the whole clusterset, at the broker"
    )]
    ClustersetIp {
        /// The flag as given.
        flag: &'static str,
    },
    /// `deploy-broker --clusterset-ip-cidr[-range]`: a separate range.
    #[error(
        "--clusterset-ip-cidr: a ClusterSet IP is the ClusterIP each importing cluster's API server gives ferry's derived Service, from that cluster's service range; ferry uses no separate range"
    )]
    ClustersetIpRange,
    /// `--check-broker-certificate=false`.
    #[error(
        "--check-broker-certificate=false: ferry always verifies the broker against the CA in broker-info.ferry"
    )]
    UncheckedBrokerCertificate,
    /// `--nattport` with the vxlan driver, whose kernel device has one port.
    #[error("--nattport {port} with --cable-driver vxlan: the vxlan cable always uses UDP 4800")]
    NatPortWithVxlan {
        /// The port given.
        port: u16,
    },
    /// `--ipsec-ike-lifetime`/`--ipsec-child-lifetime` with another driver.
    #[error("{flag} with --cable-driver {driver}: only the ipsec cable has IKE and child SAs")]
    IpsecLifetimeWithoutIpsec {
        /// The flag given.
        flag: &'static str,
        /// The cluster's driver.
        driver: CableDriver,
    },
}

impl Unsupported {
    /// What to do instead.
    pub fn hint(&self) -> &'static str {
        match self {
            Unsupported::LoadBalancer => {
                "label reachable nodes ferry.dev/gateway=true; set a node's public address with the annotation gateway.ferry.dev/public-ip=ipv4:ADDRESS"
            }
            Unsupported::CustomDomains => {
                "use the clusterset domain (clusterset.local unless deploy-broker set another)"
            }
            Unsupported::CorednsCustomConfigmap => {
                "leave it out: join adds the clusterset forward block to kube-system/coredns by itself"
            }
            Unsupported::ClustersetIp { .. } | Unsupported::ClustersetIpRange => {
                "pass `--enable-clusterset-ip` to `ferry deploy-broker` (no range: each cluster's service range is used), or give single services one with `ferry export service --use-clusterset-ip`"
            }
            Unsupported::UncheckedBrokerCertificate => {
                "leave it out; if the broker's certificate changed, write a new broker-info.ferry with `ferry deploy-broker` (or `ferry recover-broker-info`)"
            }
            Unsupported::NatPortWithVxlan { .. } => {
                "leave --nattport out with vxlan (it applies to the wireguard and ipsec cables)"
            }
            Unsupported::IpsecLifetimeWithoutIpsec { .. } => {
                "leave it out, or join with --cable-driver ipsec (or libreswan)"
            }
        }
    }
}

/// The driver a `--cable-driver` name stands for: `libreswan`, Submariner's
/// default, is ferry's `ipsec`.
pub fn cable_driver(name: &str) -> crate::Result<CableDriver> {
    Ok(name.parse()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cable_driver_names() {
        assert_eq!(cable_driver("vxlan").unwrap(), CableDriver::Vxlan);
        assert_eq!(cable_driver("wireguard").unwrap(), CableDriver::Wireguard);
        for ipsec in ["libreswan", "ipsec"] {
            assert_eq!(cable_driver(ipsec).unwrap(), CableDriver::Ipsec);
        }
        let e = cable_driver("gre").unwrap_err();
        assert!(e.to_string().contains("unknown cable driver"), "{e}");
    }
}
