use super::*;

#[test]
fn binary_names_drop_cargos_hash_only() {
    assert_eq!(binary_name("dataplane-4a699669e41b8422"), "dataplane");
    assert_eq!(binary_name("seed_flow-1386a1b7f0dce745"), "seed_flow");
    assert_eq!(binary_name("dataplane"), "dataplane");
    assert_eq!(binary_name("ferry-e2e"), "ferry-e2e");
    assert_eq!(binary_name("mcs-"), "mcs-");
}
