#![no_main]
//! Fuzz target `format_template`: see crates/fuzz-targets/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::format_template(data));
