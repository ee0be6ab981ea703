#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static SIIT: OnceLock<sixgate_xlat::Siit> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    sixgate_xlat_fuzz::translate_twice(SIIT.get_or_init(sixgate_xlat_fuzz::siit), data);
});
