//! Feeds arbitrary bytes to the remote_write body pipeline: snappy first, as
//! a sender's body arrives, and the raw bytes straight to both protobuf
//! decoders so the decoders are reached without valid snappy framing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_metrics::remote_write::{Protocol, decode, decompress};

fuzz_target!(|data: &[u8]| {
    for protocol in [Protocol::V1, Protocol::V2] {
        if let Ok(raw) = decompress(data, Some("snappy")) {
            let _ = decode(&raw, protocol);
        }
        let _ = decode(data, protocol);
    }
});
