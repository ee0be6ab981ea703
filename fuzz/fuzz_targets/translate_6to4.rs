#![no_main]
//! IPv6 input: the version nibble is forced so that every input goes
//! down the 6→4 path.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static SIIT: OnceLock<sixgate_xlat::Siit> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    if let Some(b) = buf.first_mut() {
        *b = 0x60 | (*b & 0x0f);
    }
    sixgate_xlat_fuzz::translate_twice(SIIT.get_or_init(sixgate_xlat_fuzz::siit), &buf);
});
