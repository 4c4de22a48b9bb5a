#![no_main]
//! Fuzz target `api_create`: see crates/fuzz-targets/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::api_create(data));
