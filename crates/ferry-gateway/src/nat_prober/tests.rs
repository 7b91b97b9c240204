use super::*;

#[test]
fn local_addresses_come_from_the_namespace_without_a_subprocess() {
    let addrs = local_ipv4_addresses().unwrap();
    // Loopback is on every namespace's `lo` once it is up; the test
    // runner's own namespace has it.
    assert!(addrs.contains(&Ipv4Addr::LOCALHOST), "{addrs:?}");
}
