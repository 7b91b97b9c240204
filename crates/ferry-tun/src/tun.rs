//! Opening the TUN device with offload (virtio-net header: TSO/USO in, GRO out).

use crate::Error;
use std::net::Ipv4Addr;

/// Create (or attach to) the TUN interface `name` with IFF_VNET_HDR offload,
/// its MTU and optional IPv4 address, bring it up and make it non-blocking.
pub fn open_tun(
    name: &str,
    mtu: u16,
    address: Option<(Ipv4Addr, u8)>,
) -> Result<tun_rs::SyncDevice, Error> {
    let err = |source| Error::Tun {
        name: name.to_string(),
        source,
    };
    let mut b = tun_rs::DeviceBuilder::new()
        .name(name.to_string())
        .mtu(mtu)
        .offload(true)
        .tx_queue_len(1000)
        .enable(true);
    if let Some((a, p)) = address {
        b = b.ipv4(a, p, None);
    }
    let dev = b.build_sync().map_err(err)?;
    dev.set_nonblocking(true).map_err(err)?;
    Ok(dev)
}
