//! Fuzz the UDP receive path: NAT-T classification, SPI lookup, ESP authentication,
//! decryption, replay window, padding, inner-source checks and TUN coalescing.
//! Run: `cargo fuzz run -s none esp` (stable toolchain).
#![no_main]

use ferry_ipsec::fuzzing::EspHarness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static H: OnceLock<EspHarness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    H.get_or_init(EspHarness::new).receive(data);
});
