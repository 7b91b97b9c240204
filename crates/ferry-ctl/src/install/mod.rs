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
//! `ferry apiserver` the joiner is a built-in identity (minted from the data
//! directory); against a ferry apiserver reached only through an admin
//! kubeconfig, the admin token is the only credential able to mint cluster
//! tokens, so it is written instead (with a warning). On real Kubernetes the
//! joiner is a ServiceAccount with a narrow Role, and a
//! ValidatingAdmissionPolicy enforces the per-cluster label rule.

mod apply;
pub mod broker;
pub mod join;

pub use apply::{apply_value, is_ferry_apiserver};
pub use broker::{DeployBrokerOptions, PSK_SECRET, deploy_broker};
pub use join::{JoinOptions, JoinReport, check_join, join};
