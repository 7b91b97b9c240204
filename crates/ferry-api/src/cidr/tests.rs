use super::*;

fn c(s: &str) -> Cidr {
    s.parse().unwrap()
}

#[test]
fn parses_and_displays_v4_and_v6() {
    for s in [
        "10.16.0.0/16",
        "0.0.0.0/0",
        "192.0.2.1/32",
        "fd00::/8",
        "::/0",
        "2001:db8::1/128",
    ] {
        assert_eq!(c(s).to_string(), s);
    }
    assert!(c("100.64.0.0/10").is_ipv4());
    assert!(c("fd00::/64").is_ipv6());
    assert_eq!(c("100.64.0.0/10").prefix_len(), 10);
}

#[test]
fn rejects_malformed_input_with_a_reason() {
    let cases = [
        ("", "empty"),
        ("10.0.0.0", "missing /PREFIX"),
        ("10.0.0/8", "not an IPv4 or IPv6"),
        ("10.0.0.0/", "not a number"),
        ("10.0.0.0/-1", "not a number"),
        ("10.0.0.0/33", "longer than 32"),
        ("fd00::/129", "longer than 128"),
        ("10.0.0.0/999", "too large"),
        (
            "10.16.0.5/16",
            "host bits are set (the network is 10.16.0.0/16)",
        ),
        ("fd00::1/64", "host bits are set (the network is fd00::/64)"),
    ];
    for (input, want) in cases {
        let err = input.parse::<Cidr>().unwrap_err().to_string();
        assert!(err.contains(want), "{input:?}: {err}");
        assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
    }
}

#[test]
fn contains() {
    let net = c("10.16.0.0/16");
    assert!(net.contains("10.16.255.1".parse().unwrap()));
    assert!(!net.contains("10.17.0.0".parse().unwrap()));
    assert!(!net.contains("::a10:0".parse().unwrap()));
    assert!(c("0.0.0.0/0").contains("255.255.255.255".parse().unwrap()));
    assert!(c("::/0").contains("2001:db8::1".parse().unwrap()));
}

#[test]
fn overlap_is_symmetric() {
    let cases = [
        ("10.0.0.0/8", "10.16.0.0/16", true),
        ("10.16.0.0/16", "10.16.0.0/16", true),
        ("10.16.0.0/16", "10.17.0.0/16", false),
        ("10.0.0.0/15", "10.1.255.0/24", true),
        ("100.64.0.0/10", "100.128.0.0/9", false),
        ("0.0.0.0/0", "192.0.2.0/24", true),
        ("fd00::/8", "fd12:3456::/32", true),
        ("fd00::/16", "fd01::/16", false),
        ("::/0", "10.0.0.0/8", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(c(a).overlaps(&c(b)), want, "{a} vs {b}");
        assert_eq!(c(b).overlaps(&c(a)), want, "{b} vs {a}");
    }
}

#[test]
fn lists_and_overlap_reports_name_both_cidrs() {
    let mine = Cidr::parse_list("100.64.0.0/16, 100.65.0.0/16").unwrap();
    let theirs = Cidr::parse_list("100.66.0.0/16,100.65.128.0/17").unwrap();
    assert_eq!(
        find_overlap(&mine, &theirs),
        Some((c("100.65.0.0/16"), c("100.65.128.0/17")))
    );
    let err = check_disjoint(&mine, &theirs).unwrap_err().to_string();
    assert_eq!(err, "CIDR 100.65.0.0/16 overlaps CIDR 100.65.128.0/17");
    assert!(check_disjoint(&mine, &theirs[..1]).is_ok());

    assert!(check_no_self_overlap(&mine).is_ok());
    let bad = Cidr::parse_list("10.0.0.0/8,192.0.2.0/24,10.1.0.0/16").unwrap();
    assert!(matches!(
        check_no_self_overlap(&bad),
        Err(Error::CidrOverlap { .. })
    ));

    assert!(Cidr::parse_list("10.0.0.0/8,,10.1.0.0/16").is_err());
}

#[test]
fn serde_as_string() {
    let v: Vec<Cidr> = serde_json::from_str(r#"["10.0.0.0/8","fd00::/8"]"#).unwrap();
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"["10.0.0.0/8","fd00::/8"]"#
    );
    let err = serde_json::from_str::<Cidr>(r#""10.0.0.1/8""#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("host bits"), "{err}");
}
