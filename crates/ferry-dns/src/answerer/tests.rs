use super::*;
use crate::model::StaticZone;

fn answerer() -> Answerer {
    let e = Answerer::new(AnswererConfig::default()).unwrap();
    let z = StaticZone::from_json(include_str!("../../tests/fixtures/zone.json")).unwrap();
    e.set_data(z.to_zone_data().unwrap());
    e
}

fn look(e: &Answerer, name: &str, t: RecordType) -> Lookup {
    e.lookup(&Name::from_ascii(name).unwrap(), t, DNSClass::IN)
}

#[test]
fn nxdomain_and_nodata_carry_the_soa() {
    let e = answerer();
    let l = look(&e, "nope.default.svc.clusterset.local.", RecordType::A);
    assert_eq!(l.rcode, ResponseCode::NXDomain);
    assert_eq!(l.authorities.len(), 1);
    assert_eq!(l.authorities[0].ttl, 5);
    let l = look(&e, "web.default.svc.clusterset.local.", RecordType::AAAA);
    assert_eq!(l.rcode, ResponseCode::NoError);
    assert!(l.answers.is_empty());
    assert_eq!(l.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn outside_zone_and_other_classes_are_refused() {
    let e = answerer();
    assert_eq!(
        look(&e, "example.com.", RecordType::A).rcode,
        ResponseCode::Refused
    );
    let l = e.lookup(
        &Name::from_ascii("web.default.svc.clusterset.local.").unwrap(),
        RecordType::A,
        DNSClass::CH,
    );
    assert_eq!(l.rcode, ResponseCode::Refused);
}

#[test]
fn ttl_is_configurable() {
    let e = Answerer::new(AnswererConfig {
        ttl: 30,
        ..Default::default()
    })
    .unwrap();
    e.set_data(
        StaticZone::from_json(include_str!("../../tests/fixtures/zone.json"))
            .unwrap()
            .to_zone_data()
            .unwrap(),
    );
    let l = look(&e, "web.default.svc.clusterset.local.", RecordType::A);
    assert_eq!(l.answers[0].ttl, 30);
}

#[test]
fn short_or_response_packets_are_dropped_and_garbage_is_formerr() {
    let e = answerer();
    assert!(e.answer_packet(&[], true).is_none());
    assert!(e.answer_packet(&[0; 11], true).is_none());
    let mut resp = vec![0u8; 12];
    resp[2] = 0x80;
    assert!(e.answer_packet(&resp, true).is_none());
    let mut loop_ = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    loop_.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let a = e.answer_packet(&loop_, true).unwrap();
    assert_eq!(a.rcode, ResponseCode::FormErr);
    assert_eq!(&a.bytes[..2], &[0x12, 0x34]);
}

#[test]
fn two_questions_are_formerr() {
    let e = answerer();
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_ascii("web.default.svc.clusterset.local.").unwrap(),
        RecordType::A,
    ));
    m.add_query(Query::query(
        Name::from_ascii("db.data.svc.clusterset.local.").unwrap(),
        RecordType::A,
    ));
    let a = e.answer_packet(&m.to_vec().unwrap(), true).unwrap();
    assert_eq!(a.rcode, ResponseCode::FormErr);
}

#[test]
fn a_clusterset_ip_service_has_no_per_cluster_name() {
    let e = answerer();
    // `web` has a clusterset IP: `<clusterid>.web` must not exist (MCS DNS 2.3.4).
    for cluster in ["east", "west"] {
        let l = look(
            &e,
            &format!("{cluster}.web.default.svc.clusterset.local."),
            RecordType::A,
        );
        assert_eq!(l.rcode, ResponseCode::NXDomain, "{cluster}.web");
    }
    // `remote-only` has none (the opt-out): its clusters keep their names.
    let l = look(
        &e,
        "west.remote-only.default.svc.clusterset.local.",
        RecordType::A,
    );
    assert_eq!(l.rcode, ResponseCode::NoError);
    assert_eq!(l.answers.len(), 1);
}

#[test]
fn clusterset_ip_answers_count_the_policys_choice() {
    let metrics = crate::metrics::Metrics::new();
    let counters = metrics.choice_counters(Policy::LocalFirst);
    let e = answerer().with_choice_counters(counters.clone());
    let l = look(&e, "web.default.svc.clusterset.local.", RecordType::A);
    assert_eq!(l.rcode, ResponseCode::NoError);
    assert_eq!(counters.local.get() + counters.remote.get(), 1);
    assert_eq!(counters.none.get(), 0);
    let text = metrics.encode();
    assert!(
        text.contains(r#"ferry_dns_clusterset_answers_total{policy="local-first",choice="#),
        "{text}"
    );
}
