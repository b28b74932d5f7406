//! Feeds arbitrary bytes to both exposition parsers: they must return an
//! error, never panic or loop.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_scrape::exposition::{Format, parse_bytes};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PromText, Format::OpenMetrics] {
        let _ = parse_bytes(data, format);
    }
});
