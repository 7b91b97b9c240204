#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn public_ip_sources_parse_in_order() {
    assert_eq!(
        parse_public_ip("ipv4:198.18.0.7").unwrap(),
        [PublicIpSource::Ipv4("198.18.0.7".parse().unwrap())]
    );
    assert_eq!(
        parse_public_ip(" api:ip.example/v4 , dns:gw.example,ipv4:198.18.0.7").unwrap(),
        [
            PublicIpSource::Api("ip.example/v4".into()),
            PublicIpSource::Dns("gw.example".into()),
            PublicIpSource::Ipv4("198.18.0.7".parse().unwrap()),
        ]
    );
}

#[test]
fn a_public_ip_that_does_not_parse_names_the_cause() {
    for (value, cause) in [
        ("198.18.0.7", "has no kind"),
        ("ipv4:198.18.0.300", "not an IPv4 address"),
        ("ipv4:", "nothing after ipv4:"),
        ("lb:", "nothing after"),
        ("lb:gw", "LoadBalancer"),
        ("ipv6:fd00::1", "unknown kind \"ipv6\""),
        ("", "empty"),
    ] {
        let e = parse_public_ip(value).unwrap_err();
        assert_eq!(e.annotation, PUBLIC_IP_ANNOTATION);
        let text = e.to_string();
        assert!(
            text.starts_with("node annotation gateway.ferry.dev/public-ip=")
                && text.contains(cause),
            "{value}: {text}"
        );
    }
}

#[test]
fn udp_port_parses_or_names_the_cause() {
    assert_eq!(parse_udp_port("4501").unwrap(), 4501);
    for bad in ["0", "65536", "x", ""] {
        let e = parse_udp_port(bad).unwrap_err().to_string();
        assert!(
            e.contains("gateway.ferry.dev/udp-port") && e.contains("not a UDP port"),
            "{e}"
        );
    }
}

#[test]
fn api_targets_default_to_https() {
    assert_eq!(api_url("api.ipify.org"), "https://api.ipify.org");
    assert_eq!(
        api_url("http://127.0.0.1:8080/ip"),
        "http://127.0.0.1:8080/ip"
    );
}

/// A one-shot HTTP server on loopback answering `body`.
async fn answer_once(body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(reply.as_bytes()).await.unwrap();
    });
    format!("http://{addr}/ip")
}

#[tokio::test]
async fn resolution_takes_the_first_source_that_answers() {
    let url = answer_once("198.18.5.5\n").await;
    let value = format!("api:{url},ipv4:198.18.0.7");
    let sources = parse_public_ip(&value).unwrap();
    assert_eq!(
        resolve_public_ip(&value, &sources, false).await.unwrap(),
        "198.18.5.5".parse::<Ipv4Addr>().unwrap()
    );
    // Air-gapped: the api: source is not asked.
    assert_eq!(
        resolve_public_ip(&value, &sources, true).await.unwrap(),
        "198.18.0.7".parse::<Ipv4Addr>().unwrap()
    );
    assert_eq!(
        resolve_public_ip(
            "dns:localhost",
            &[PublicIpSource::Dns("localhost".into())],
            false
        )
        .await
        .unwrap(),
        Ipv4Addr::LOCALHOST
    );
}

#[tokio::test]
async fn every_source_failing_lists_each_cause() {
    let url = answer_once("not an address").await;
    let value = format!("api:{url}");
    let sources = parse_public_ip(&value).unwrap();
    let e = resolve_public_ip(&value, &sources, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an IPv4 address"), "{e}");
    let e = resolve_public_ip(&value, &sources, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("air-gapped"), "{e}");
}
