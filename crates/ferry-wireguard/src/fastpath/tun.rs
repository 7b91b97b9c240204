//! Opening the TUN device with offload.

use crate::{DeviceConfig, Error};
use std::net::IpAddr;

/// Create (or attach to) the TUN interface named in `cfg`, with IFF_VNET_HDR offload,
/// its MTU, the first IPv4 address if any, and bring it up.
pub(crate) fn open_tun(cfg: &DeviceConfig) -> Result<tun_rs::SyncDevice, Error> {
    let err = |source| Error::Tun {
        name: cfg.name.clone(),
        source,
    };
    let mut b = tun_rs::DeviceBuilder::new()
        .name(cfg.name.clone())
        .mtu(cfg.mtu)
        .offload(true)
        .tx_queue_len(1000)
        .enable(true);
    if let Some((IpAddr::V4(a), p)) = cfg.addresses.iter().find(|(a, _)| a.is_ipv4()) {
        b = b.ipv4(*a, *p, None);
    }
    let dev = b.build_sync().map_err(err)?;
    dev.set_nonblocking(true).map_err(err)?;
    Ok(dev)
}
