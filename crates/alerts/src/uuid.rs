//! Version 4 UUIDs for silence ids, as upstream generates them.
//!
//! Sixteen bytes from the OS generator (`getrandom`, already in the build
//! through rustls) are all a v4 UUID needs; a UUID crate would add nothing.

/// A random (version 4, RFC 4122 variant) UUID in its hyphenated form.
pub fn new_v4() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Whether `s` is a UUID as go-openapi's `strfmt.UUID` accepts it.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_layout_and_uniqueness() {
        let a = new_v4().unwrap();
        let b = new_v4().unwrap();
        assert_ne!(a, b);
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("0000000000000000000000000000000000000"));
    }
}
