use super::*;

#[test]
fn local_addresses_come_from_the_namespace_without_a_subprocess() {
    let addrs = local_ipv4_addresses().unwrap();
    // Loopback is on every namespace's `lo` once it is up; the test
    // runner's own namespace has it.
    assert!(addrs.contains(&Ipv4Addr::LOCALHOST), "{addrs:?}");
}

#[test]
fn the_source_towards_a_destination_is_asked_once_per_ttl() {
    let mut sources = Sources::default();
    let dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4490);
    assert_eq!(sources.get(dst), Some(Ipv4Addr::LOCALHOST));
    let (_, asked) = sources.by_dst[&dst];
    assert_eq!(sources.get(dst), Some(Ipv4Addr::LOCALHOST));
    assert_eq!(sources.by_dst[&dst].1, asked, "answered from the cache");
}
