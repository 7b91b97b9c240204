//! `ferry deploy-broker` ([`broker`]) and `ferry join` ([`join`]), as
//! library calls: applying generated manifests (`ferry-deploy`), minting
//! cluster-scoped broker tokens, and the checks `join` makes before it
//! changes anything.
//!
//! Trust model: `broker-info.ferry` carries a *joiner* credential — it may
//! read the broker namespace and mint a token for any new cluster id, so
//! treat the file like a kubeconfig. Each cluster keeps only its own
//! `cluster:<id>` token (in the `ferry-broker` Secret of `ferry-system`),
//! which may write only objects labelled `ferry.dev/cluster=<id>`. On
//! Everywhere the joiner credential is a TokenRequest token of the broker's
//! `ferry-joiner` ServiceAccount — never the admin credential `deploy-broker`
//! was given. On real Kubernetes that ServiceAccount has a narrow Role and a
//! ValidatingAdmissionPolicy enforces the per-cluster label rule; on `ferry
//! apiserver` its label `ferry.dev/joiner=true` makes its tokens the built-in
//! joiner identity, which the server scopes itself.

mod apply;
pub mod broker;
pub mod cidrs;
pub mod cni;
pub mod globalnet;
pub mod join;
pub mod preflight;
pub mod recover;
mod unsupported;
pub mod wait;

pub use apply::{apply_value, is_ferry_apiserver};
pub use broker::{DeployBrokerOptions, PSK_SECRET, deploy_broker};
pub use cidrs::{CidrSource, Discovered, FoundCidrs, discover_cidrs};
pub use globalnet::GlobalnetRequest;
pub use join::{JoinOptions, JoinReport, check_join, check_join_as, gateway_nodes, join};
pub use recover::recover_broker_info;
pub use unsupported::{Unsupported, cable_driver};
