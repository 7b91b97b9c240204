//! Fuzz IKE input to an established responder: header and payload parsing, SK
//! decryption, message-id handling and the exchanges behind them.
//! Run: `cargo fuzz run -s none ike` (stable toolchain).
#![no_main]

use ferry_ipsec::fuzzing::IkeHarness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static H: OnceLock<IkeHarness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    H.get_or_init(IkeHarness::new).receive(data);
});
