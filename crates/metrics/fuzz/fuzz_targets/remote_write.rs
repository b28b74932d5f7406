//! Feeds arbitrary bytes to the remote_write body pipeline: snappy first, as
//! a sender's body arrives, and the raw bytes straight to both protobuf
//! decoders so the decoders are reached without valid snappy framing. The
//! 1.0 path is the hand-written walker (`decode_v1`), which `decode` also
//! uses; its flat batch is iterated so every span it made is read back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_metrics::remote_write::{Protocol, decode, decode_v1, decompress};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = decode_v1(data) {
        for (labels, samples) in b.iter() {
            // validated: a metric name, and only series with samples kept
            assert!(labels.to_string().contains("__name__") && !samples.is_empty());
        }
    }
    for protocol in [Protocol::V1, Protocol::V2] {
        if let Ok(raw) = decompress(data, Some("snappy")) {
            let _ = decode(&raw, protocol);
        }
        let _ = decode(data, protocol);
    }
});
