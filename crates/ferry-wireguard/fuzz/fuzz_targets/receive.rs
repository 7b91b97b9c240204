//! Fuzz the UDP receive path: message classification, handshake parsing and rate
//! limiting, decryption against an established session, allowed-IPs checks and TUN
//! coalescing. Run: `cargo fuzz run -s none receive` (stable toolchain).
#![no_main]

use ferry_wireguard::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static H: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    H.get_or_init(Harness::new).receive(data);
});
