use super::count_next_hops;

#[test]
fn next_hops_of_multipath_and_plain_routes() {
    let multipath = "100.66.0.0/16 proto static metric 20 \n\tnexthop via 100.64.3.1 dev vx-ferry weight 1 onlink \n\tnexthop via 100.64.3.2 dev vx-ferry weight 1 onlink \n";
    assert_eq!(count_next_hops(multipath), 2);
    let plain = "100.66.0.0/16 via 100.64.3.1 dev vx-ferry proto static onlink \n";
    assert_eq!(count_next_hops(plain), 1);
    assert_eq!(count_next_hops(""), 0);
}
