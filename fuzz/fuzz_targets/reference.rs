#![no_main]
//! Fuzz target `reference`: see crates/fuzz-targets/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::reference(data));
