//! MAC addresses: the deterministic VTEP MAC and text conversions.

use std::net::Ipv4Addr;

/// A MAC address.
pub type Mac = [u8; 6];

/// The MAC address of a node's `vx-ferry`: `02:fe` followed by the four bytes
/// of the node's underlay IPv4 address. Locally administered and unicast, and
/// computable by every node, so fdb and neighbour entries need no ARP or
/// learning.
pub const fn vtep_mac(underlay: Ipv4Addr) -> Mac {
    let o = underlay.octets();
    [0x02, 0xfe, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff`, lowercase.
pub fn format_mac(mac: &Mac) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (either case); `None` if it is not six
/// colon-separated hex bytes.
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtep_mac_embeds_the_underlay_address() {
        let mac = vtep_mac(Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(mac, [0x02, 0xfe, 198, 18, 0, 10]);
        assert_eq!(format_mac(&mac), "02:fe:c6:12:00:0a");
        // Locally administered (bit 1) and unicast (bit 0 clear).
        assert_eq!(mac[0] & 0b11, 0b10);
    }

    #[test]
    fn distinct_nodes_get_distinct_macs() {
        assert_ne!(
            vtep_mac(Ipv4Addr::new(198, 18, 0, 10)),
            vtep_mac(Ipv4Addr::new(198, 18, 0, 11))
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_junk() {
        let mac = [0x02, 0xfe, 0xc6, 0x12, 0x00, 0x0a];
        assert_eq!(parse_mac(&format_mac(&mac)), Some(mac));
        assert_eq!(parse_mac("02:FE:C6:12:00:0A"), Some(mac));
        for bad in [
            "",
            "02:fe:c6:12:00",
            "02:fe:c6:12:00:0a:01",
            "02:fe:c6:12:00:0g",
            "2:fe:c6:12:00:0a",
            "02-fe-c6-12-00-0a",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
