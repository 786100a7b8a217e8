#![no_main]
//! The cursor decoder and the filter compiler on arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| roster::graphql::fuzzing::cursor_and_filter(data));
