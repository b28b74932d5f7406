//! Hand-built remote_write 1.0 bodies: each series' labels are encoded
//! once, so the generator spends its CPU on the server, not on itself.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `Label` messages (field 1 of `TimeSeries`), ready to splice.
pub(crate) fn encode_labels(labels: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in labels {
        let mut l = Vec::with_capacity(n.len() + v.len() + 4);
        l.push(0x0a);
        varint(n.len() as u64, &mut l);
        l.extend_from_slice(n.as_bytes());
        l.push(0x12);
        varint(v.len() as u64, &mut l);
        l.extend_from_slice(v.as_bytes());
        out.push(0x0a);
        varint(l.len() as u64, &mut out);
        out.extend_from_slice(&l);
    }
    out
}

/// Appends one `TimeSeries` (field 1 of `WriteRequest`) with one sample.
pub(crate) fn push_series(out: &mut Vec<u8>, labels: &[u8], t: i64, v: f64) {
    let mut sample = [0u8; 21];
    sample[0] = 0x09;
    sample[1..9].copy_from_slice(&v.to_le_bytes());
    sample[9] = 0x10;
    let mut ts = Vec::with_capacity(10);
    varint(t as u64, &mut ts);
    sample[10..10 + ts.len()].copy_from_slice(&ts);
    let sample = &sample[..10 + ts.len()];
    let mut body_len = labels.len() + 1 + sample.len();
    body_len += varint_len(sample.len() as u64);
    out.push(0x0a);
    varint(body_len as u64, out);
    out.extend_from_slice(labels);
    out.push(0x12);
    varint(sample.len() as u64, out);
    out.extend_from_slice(sample);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_proto::Message as _;
    use pharos_proto::prometheus::WriteRequest;

    #[test]
    fn hand_encoding_decodes_with_prost() {
        let labels = vec![
            ("__name__".to_owned(), "x".repeat(200)),
            ("job".to_owned(), "node".to_owned()),
        ];
        let enc = encode_labels(&labels);
        let mut body = Vec::new();
        push_series(&mut body, &enc, 1_700_000_000_123, 0.1);
        push_series(&mut body, &enc, -5, f64::MAX);
        let req = WriteRequest::decode(body.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        let ts = &req.timeseries[0];
        assert_eq!(ts.labels.len(), 2);
        assert_eq!(ts.labels[0].value, "x".repeat(200));
        assert_eq!(ts.labels[1].name, "job");
        assert_eq!(ts.samples[0].timestamp, 1_700_000_000_123);
        assert_eq!(ts.samples[0].value.to_bits(), 0.1f64.to_bits());
        assert_eq!(req.timeseries[1].samples[0].timestamp, -5);
        assert_eq!(req.timeseries[1].samples[0].value, f64::MAX);
    }
}
