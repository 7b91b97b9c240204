//! Feeds arbitrary bytes to the query path (UDP and TCP variants) over the
//! test fixture zone: it must never panic, and any answer must parse.
#![no_main]

use std::sync::LazyLock;

use ferry_dns::model::StaticZone;
use ferry_dns::{Answerer, AnswererConfig};
use libfuzzer_sys::fuzz_target;

static ANSWERER: LazyLock<Answerer> = LazyLock::new(|| {
    let answerer = Answerer::new(AnswererConfig {
        zones: vec!["clusterset.local".into(), "mcs.example".into()],
        ..Default::default()
    })
    .unwrap();
    let zone = StaticZone::from_json(include_str!("../../tests/fixtures/zone.json")).unwrap();
    answerer.set_data(zone.to_zone_data().unwrap());
    answerer
});

fuzz_target!(|data: &[u8]| {
    for udp in [true, false] {
        if let Some(a) = ANSWERER.answer_packet(data, udp) {
            assert!(a.bytes.len() >= 12);
            if udp {
                assert!(a.bytes.len() <= 1232 || a.bytes.len() <= data.len().max(512));
            }
        }
    }
});
