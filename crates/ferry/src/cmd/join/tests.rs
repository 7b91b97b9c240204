#![allow(clippy::unwrap_used)]
use clap::Parser;

use super::*;

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
    let mut argv = vec!["join", "broker-info.ferry", "--clusterid", "cluster0"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).map(|c| c.args)
}

#[test]
fn the_seeds_flags_are_accepted_with_submariners_meaning() {
    let a = parse(&[
        "--clustercidr",
        "100.64.0.0/16",
        "--natt=false",
        "--cable-driver",
        "vxlan",
        "--health-check=false",
    ])
    .unwrap();
    assert!(a.refusal().is_none());
    assert_eq!(a.cable_driver().unwrap(), Some(CableDriver::Vxlan));
    let g = a.gateway();
    assert!(!g.nat_traversal && !g.health_check);
    assert_eq!(g.args(), ["--natt=false", "--health-check=false"]);
}

#[test]
fn defaults_and_bare_bool_flags() {
    let a = parse(&[]).unwrap();
    assert_eq!(a.gateway(), GatewaySettings::default());
    assert!(a.label_gateway && a.check_broker_certificate);
    let a = parse(&["--natt", "--health-check", "--label-gateway=false"]).unwrap();
    assert!(a.natt && a.health_check && !a.label_gateway);
    // As with subctl (pflag), a bool takes its value only after '='.
    assert!(parse(&["--natt", "false"]).is_err());
    assert!(parse(&["--natt=maybe"]).is_err());
}

#[test]
fn cable_and_health_check_settings_reach_the_gateway() {
    let a = parse(&[
        "--nattport",
        "4501",
        "--force-udp-encaps",
        "--preferred-server",
        "--air-gapped",
        "--health-check-interval",
        "2",
        "--health-check-max-packet-loss-count",
        "3",
        "--gateway-mode",
        "active-active",
    ])
    .unwrap();
    assert_eq!(
        a.gateway(),
        GatewaySettings {
            nat_traversal: true,
            nat_port: Some(4501),
            force_udp_encaps: true,
            preferred_server: true,
            air_gapped: true,
            health_check: true,
            health_check_interval: Some(Duration::from_secs(2)),
            health_check_max_packet_loss: Some(3),
            ipsec_ike_lifetime: None,
            ipsec_child_lifetime: None,
            active_active: true,
        }
    );
    assert!(
        a.gateway()
            .args()
            .contains(&"--gateway-mode=active-active".to_string())
    );
    let a = parse(&[
        "--ipsec-ike-lifetime",
        "8h",
        "--ipsec-child-lifetime",
        "90s",
    ])
    .unwrap();
    assert_eq!(
        a.gateway().args(),
        [
            "--ipsec-ike-lifetime=28800000ms",
            "--ipsec-child-lifetime=90000ms"
        ]
    );
    let a = parse(&["--health-check-interval", "250ms"]).unwrap();
    assert_eq!(
        a.gateway().health_check_interval,
        Some(Duration::from_millis(250))
    );
    for bad in [
        &["--health-check-interval", "0"][..],
        &["--health-check-interval", "soon"],
        &["--health-check-max-packet-loss-count", "0"],
        &["--nattport", "0"],
        &["--nattport", "70000"],
        &["--ipsec-ike-lifetime", "1s"],
        &["--ipsec-child-lifetime", "soon"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn globalnet_is_on_when_asked_or_the_brokers_default() {
    let mut info = BrokerInfo::new("https://b:6443", "ca", "tok", &[1; 32]);
    let on = |extra: &[&str], info: &BrokerInfo| parse(extra).unwrap().globalnet(info).unwrap();
    assert_eq!(on(&[], &info), None);
    let req = on(&["--globalnet-cidr", "100.120.3.0/24"], &info).unwrap();
    assert_eq!(
        req.cidr.map(|c| c.to_string()).as_deref(),
        Some("100.120.3.0/24")
    );
    info.settings.globalnet = true;
    assert!(on(&[], &info).is_some());
    assert_eq!(on(&["--globalnet=false"], &info), None);
    assert!(
        parse(&["--globalnet=false", "--globalnet-cidr", "100.120.3.0/24"])
            .unwrap()
            .globalnet(&info)
            .is_err()
    );
}

#[test]
fn unimplemented_flags_are_refused_by_type() {
    let refused = |extra: &[&str]| parse(extra).unwrap().refusal();
    // Globalnet flags are taken, not refused.
    for flags in [
        &["--globalnet"][..],
        &["--globalnet=false"],
        &["--globalnet-cidr", "242.0.0.0/16"],
    ] {
        assert_eq!(refused(flags), None, "{flags:?}");
    }
    assert_eq!(
        refused(&["--load-balancer"]),
        Some(Unsupported::LoadBalancer)
    );
    assert_eq!(
        refused(&["--custom-domains", "example.org"]),
        Some(Unsupported::CustomDomains)
    );
    assert_eq!(
        refused(&["--coredns-custom-configmap", "kube-system/x"]),
        Some(Unsupported::CorednsCustomConfigmap)
    );
    assert_eq!(
        refused(&["--clusterset-ip-cidr", "100.70.0.0/16"]),
        Some(Unsupported::ClustersetIp {
            flag: "--clusterset-ip-cidr"
        })
    );
    // `--enable-clusterset-ip` is decided against the broker's setting.
    assert_eq!(refused(&["--enable-clusterset-ip"]), None);
    let mut info = ferry_api::BrokerInfo::new("https://198.18.0.1:6443", "", "t", &[7; 32]);
    let args = parse(&["--enable-clusterset-ip"]).unwrap();
    assert!(
        !info.settings.clusterset_ip,
        "off unless the broker says so"
    );
    assert_eq!(
        args.clusterset_ip_refusal(&info),
        Some(Unsupported::ClustersetIp {
            flag: "--enable-clusterset-ip"
        })
    );
    assert_eq!(parse(&[]).unwrap().clusterset_ip_refusal(&info), None);
    info.settings.clusterset_ip = true; // deploy-broker --enable-clusterset-ip
    assert_eq!(args.clusterset_ip_refusal(&info), None);
    assert_eq!(
        refused(&["--check-broker-certificate=false"]),
        Some(Unsupported::UncheckedBrokerCertificate)
    );
    // Submariner's IPsec driver name is ferry's ipsec driver.
    for name in ["libreswan", "ipsec"] {
        let d = parse(&["--cable-driver", name])
            .unwrap()
            .cable_driver()
            .unwrap();
        assert_eq!(d, Some(ferry_api::CableDriver::Ipsec), "{name}");
    }
    // A flag subctl does not have is clap's error, as any typo.
    assert!(parse(&["--no-such-flag"]).is_err());
}

#[test]
fn image_from_repository_and_version() {
    let image = |extra: &[&str]| parse(extra).unwrap().image();
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(image(&[]), format!("ferry:{v}"));
    assert_eq!(image(&["--version", "dev"]), "ferry:dev");
    assert_eq!(
        image(&[
            "--repository",
            "registry.example/ferry-dev/",
            "--version",
            "1.2"
        ]),
        "registry.example/ferry-dev/ferry:1.2"
    );
    assert_eq!(image(&["--image", "x/y:z"]), "x/y:z");
    assert!(parse(&["--image", "x/y:z", "--version", "1"]).is_err());
}
