//! Feeds arbitrary bytes to the invariants in `hoody_snapd::fuzzing::journal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hoody_snapd::fuzzing::journal(data));
