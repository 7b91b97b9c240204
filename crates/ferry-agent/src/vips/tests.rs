use super::*;

fn cidr(s: &str) -> Option<Cidr> {
    Some(s.parse().unwrap())
}

#[test]
fn off_without_a_range() {
    let mut a = VipAllocator::new(None);
    assert_eq!(a.allocate("ns", "svc"), Ok(None));
}

#[test]
fn a_service_keeps_its_vip_and_two_never_share_one() {
    let mut a = VipAllocator::new(cidr("198.18.200.0/24"));
    let first = a.allocate("ns", "a").unwrap().unwrap();
    assert_eq!(a.allocate("ns", "a").unwrap(), Some(first));
    let mut seen = std::collections::HashSet::from([first]);
    for i in 0..253 {
        let ip = a.allocate("ns", &format!("s{i}")).unwrap().unwrap();
        assert!(seen.insert(ip), "{ip} given twice");
        assert!(cidr("198.18.200.0/24").unwrap().contains(IpAddr::V4(ip)));
        assert_ne!(ip, Ipv4Addr::new(198, 18, 200, 0), "network address");
        assert_ne!(ip, Ipv4Addr::new(198, 18, 200, 255), "broadcast address");
    }
    assert_eq!(
        a.allocate("ns", "one-too-many"),
        Err(VipError::Exhausted("198.18.200.0/24".parse().unwrap()))
    );
    a.release("ns", "a");
    assert_eq!(a.allocate("ns", "one-too-many").unwrap(), Some(first));
}

#[test]
fn the_first_choice_is_the_same_in_every_cluster() {
    let mut one = VipAllocator::new(cidr("198.18.0.0/16"));
    let mut two = VipAllocator::new(cidr("198.18.0.0/16"));
    two.allocate("other", "svc").unwrap();
    assert_eq!(
        one.allocate("ns", "nginx").unwrap(),
        two.allocate("ns", "nginx").unwrap()
    );
}

#[test]
fn observed_vips_are_kept_unless_out_of_range_or_taken() {
    let mut a = VipAllocator::new(cidr("198.18.200.0/24"));
    a.observe("ns", "a", Some("198.18.200.7"));
    assert_eq!(
        a.allocate("ns", "a").unwrap(),
        Some(Ipv4Addr::new(198, 18, 200, 7))
    );
    // Another import claiming the same VIP does not get it.
    a.observe("ns", "b", Some("198.18.200.7"));
    let b = a.allocate("ns", "b").unwrap().unwrap();
    assert_ne!(b, Ipv4Addr::new(198, 18, 200, 7));
    // Out of range (the range changed): a new one.
    a.observe("ns", "c", Some("100.96.0.10"));
    let c = a.allocate("ns", "c").unwrap().unwrap();
    assert!(cidr("198.18.200.0/24").unwrap().contains(IpAddr::V4(c)));
    // An import without IPs frees what its service held.
    a.observe("ns", "a", None);
    a.observe("ns", "d", Some("198.18.200.7"));
    assert_eq!(
        a.allocate("ns", "d").unwrap(),
        Some(Ipv4Addr::new(198, 18, 200, 7))
    );
}

#[test]
fn derived_names_are_valid_and_distinct() {
    let a = derived_service_name("ns", "svc");
    assert!(a.starts_with("derived-") && a.len() <= 63);
    assert_ne!(a, derived_service_name("svc", "ns"));
    assert_eq!(a, derived_service_name("ns", "svc"));
}
