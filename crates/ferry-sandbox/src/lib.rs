//! `ferry sandbox`: real multi-node Kubernetes-like clusters built from Linux
//! network namespaces on one host, with no VM, cloud or container engine.
//!
//! A sandbox cluster is a bridge with one network namespace per node on it, a
//! shared "WAN" bridge every node also sits on, a `ferry apiserver` listening
//! on the host's bridge address, and one supervisor process that runs the
//! controllers (scheduler, Deployment through ReplicaSets, DaemonSet,
//! EndpointSlices; ClusterIPs come from the API server), a pod runner per node (pods are network
//! namespaces behind veths; their commands come from the host filesystem, or
//! are the local `ferry` binary for images named `ferry`), an nftables
//! service proxy in every node and a cluster DNS for `cluster.local`.
//! With `--nat`, the nodes leave the WAN and sit behind a masquerading
//! router namespace instead ([`nat`]), as gateways behind a cloud NAT.
//!
//! By default it is not a container runtime: no image pulling, no filesystem
//! or PID isolation, no cgroups and no admission. A cluster created
//! `--runtime runc --image ARCHIVE` runs the containers of the images it was
//! given as real containers under `runc` instead ([`oci`]). Only 100.64.0.0/10 (pods,
//! services) and 198.18.0.0/15 (nodes, bridges, WAN) are used, and no
//! namespace has a route out of the host. Plumbing shells out to `ip` and
//! `nft`, so errors name the exact command that failed.
//!
//! ```text
//! ferry sandbox create east                 # prints the kubeconfig path
//! export KUBECONFIG=$(ferry sandbox kubeconfig east)
//! kubectl apply -f examples/nginx.yaml
//! ferry sandbox exec east east-node0 -- curl -s nginx.nginx-test.svc.cluster.local:8080
//! ferry sandbox exec east nginx-test/POD -- ip addr
//! ferry sandbox logs east nginx-test/POD
//! ferry sandbox delete east                 # or: delete --all (also sweeps leftovers)
//! ```
//!
//! Layout: [`plan`] (names and addresses), [`state`] (files under
//! /run/ferry/sandbox), [`net`] (plumbing and sweeping), [`manage`] (the
//! commands), [`supervisor`] (the per-cluster process), [`controllers`],
//! [`runner`], [`nft`] (proxy rules), [`dns`] and [`kube_ovn`] (the Subnets of a
//! kube-ovn-shaped cluster); [`harness`] is the test
//! harness of every end-to-end test and benchmark that makes sandbox clusters.
#![forbid(unsafe_code)]

mod cmd;
pub mod controllers;
pub mod dns;
pub mod error;
pub mod harness;
pub mod kube_ovn;
pub mod manage;
pub mod nat;
pub mod net;
pub mod nft;
pub mod oci;
pub mod plan;
pub mod runner;
pub mod state;
pub mod supervisor;

pub use error::{Error, Result};
pub use manage::{CreateOptions, create, delete, delete_all, exec_target, list, logs};
pub use oci::Runtime;
pub use plan::{NatMode, Plan};
