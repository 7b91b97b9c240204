//! What the engine watches: each (API, kind) pair is a [`Source`] with its
//! own store, indexed by the service its objects belong to where a
//! reconciler looks them up that way.

use ferry_api::labels::{
    MANAGED_BY, MANAGED_BY_FERRY, ORIGIN_NAME, ORIGIN_NAMESPACE, SERVICE_NAME,
};

use crate::store::{K8S_SERVICE_NAME, Kind, Obj, Side, Store};

/// Where objects come from: which API, which kind.
pub(super) type Source = (Side, Kind);

/// Every source the engine watches; `run` starts their watches in this
/// order.
pub(super) const SOURCES: [Source; 12] = [
    (Side::Local, Kind::ServiceExport),
    (Side::Local, Kind::Service),
    (Side::Local, Kind::EndpointSlice),
    (Side::Local, Kind::Namespace),
    (Side::Local, Kind::ServiceImport),
    (Side::Local, Kind::Cluster),
    (Side::Local, Kind::Endpoint),
    (Side::Broker, Kind::ServiceImport),
    (Side::Broker, Kind::EndpointSlice),
    (Side::Broker, Kind::Cluster),
    (Side::Broker, Kind::Endpoint),
    (Side::Local, Kind::Gateway),
];

/// The cluster's EndpointSlices belong to their Service (ferry's imports to
/// the imported service).
fn index_local_slice<'a>(ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
    let svc = if o.label(MANAGED_BY) == Some(MANAGED_BY_FERRY) {
        o.label(SERVICE_NAME)
    } else {
        o.label(K8S_SERVICE_NAME)
    }?;
    Some((ns, svc))
}

/// A cluster's export data on the broker belongs to the service it exports.
pub(super) fn index_origin<'a>(_ns: &'a str, o: &'a Obj) -> Option<(&'a str, &'a str)> {
    Some((o.label(ORIGIN_NAMESPACE)?, o.label(ORIGIN_NAME)?))
}

/// An empty store for `source`, with its index.
pub(super) fn new_store(source: Source) -> Store {
    match source {
        (Side::Local, Kind::EndpointSlice) => Store::new(Some(index_local_slice)),
        (Side::Broker, Kind::ServiceImport | Kind::EndpointSlice) => Store::new(Some(index_origin)),
        _ => Store::new(None),
    }
}
