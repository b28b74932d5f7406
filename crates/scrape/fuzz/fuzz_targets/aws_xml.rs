//! The XML reader of EC2 discovery must return an error, never panic, on
//! whatever an endpoint (or something posing as one) sends back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pharos_scrape::xml::parse(text);
    }
});
