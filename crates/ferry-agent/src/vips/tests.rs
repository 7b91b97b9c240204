use super::*;

#[test]
fn a_derived_name_is_stable_short_and_per_service() {
    let a = derived_service_name("nginx-test", "nginx");
    assert_eq!(a, derived_service_name("nginx-test", "nginx"));
    assert_eq!(a.len(), "derived-".len() + 16);
    assert_ne!(a, derived_service_name("nginx-test", "nginx2"));
    assert_ne!(a, derived_service_name("nginx", "test-nginx"));
    // Pinned: the name must survive toolchain upgrades (it is stored).
    assert_eq!(a, "derived-2d1d634929d607c5");
}

#[test]
fn only_an_allocated_ipv4_cluster_ip_is_a_clusterset_ip() {
    assert_eq!(
        clusterset_ip(Some("100.96.0.20")),
        Some(Ipv4Addr::new(100, 96, 0, 20))
    );
    assert_eq!(clusterset_ip(Some("None")), None);
    assert_eq!(clusterset_ip(Some("")), None);
    assert_eq!(clusterset_ip(None), None);
}
