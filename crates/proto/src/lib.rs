//! Protobuf messages, generated at build time from `proto/`.

/// Prometheus remote_write 1.0 (`prometheus.WriteRequest`).
#[allow(clippy::all, rust_2018_idioms)]
pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Prometheus remote_write 2.0 (`io.prometheus.write.v2.Request`).
#[allow(clippy::all, rust_2018_idioms)]
pub mod write_v2 {
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
}

pub use prost::Message;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_round_trip_and_field_numbers() {
        let req = prometheus::WriteRequest {
            timeseries: vec![prometheus::TimeSeries {
                labels: vec![prometheus::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![prometheus::Sample {
                    value: 1.0,
                    timestamp: 5,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let bytes = req.encode_to_vec();
        // field 1, wire type 2 (length-delimited)
        assert_eq!(bytes[0], 0x0a);
        assert_eq!(
            prometheus::WriteRequest::decode(bytes.as_slice()).unwrap(),
            req
        );
    }

    #[test]
    fn v1_request_does_not_decode_as_v2_series() {
        let v1 = prometheus::WriteRequest {
            timeseries: vec![prometheus::TimeSeries::default()],
            metadata: vec![],
        };
        // reserved fields 1-3 are skipped as unknown: no symbols, no series
        let v2 = write_v2::Request::decode(v1.encode_to_vec().as_slice()).unwrap();
        assert!(v2.symbols.is_empty() && v2.timeseries.is_empty());
    }
}
