//! Sizes in bytes with Prometheus' units (`512MB`, `1GiB`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KIB: u64 = 1 << 10;

/// Suffixes and their sizes. As in Prometheus (`--storage.tsdb.retention.size`
/// parses with `units.Base2Bytes`), `KB` and `KiB` both mean 1024 bytes, `MB`
/// and `MiB` both 1024², and so on: an operator copying `512MB` from a
/// Prometheus flag gets the same size.
const UNITS: [(&str, &str, u64); 6] = [
    ("EiB", "EB", KIB.pow(6)),
    ("PiB", "PB", KIB.pow(5)),
    ("TiB", "TB", KIB.pow(4)),
    ("GiB", "GB", KIB.pow(3)),
    ("MiB", "MB", KIB.pow(2)),
    ("KiB", "KB", KIB),
];

const HINT: &str = "use a number of bytes or units B, KB, MB, GB, TB, PB, EB (powers of 1024; KiB, MiB... also accepted) like 512MB";

/// A size in bytes. In YAML: a number of bytes, or a string such as `512B`,
/// `64KB`, `1.5GiB`, `2TB`. Both `MB` and `MiB` mean 1024² bytes, as in
/// Prometheus; decimal fractions are rounded down to whole bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn b(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// A size of `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * KIB * KIB)
    }

    /// A size of `n` gibibytes.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * KIB * KIB * KIB)
    }

    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        ByteSize(bytes)
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

/// Why a size string was rejected; the message is what a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseByteSizeError(String);

impl fmt::Display for ParseByteSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseByteSizeError {}

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseByteSizeError(format!("invalid size \"{s}\": {HINT}"));
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let multiplier = match unit {
            "" | "B" => 1,
            _ => UNITS
                .iter()
                .find(|(iec, short, _)| unit == *iec || unit == *short)
                .map(|(_, _, size)| *size)
                .ok_or_else(invalid)?,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
            return Err(invalid());
        }
        let too_big = || ParseByteSizeError(format!("size \"{s}\" is too large"));
        let whole: u128 = whole.parse().map_err(|_| too_big())?;
        let mut bytes = whole
            .checked_mul(u128::from(multiplier))
            .ok_or_else(too_big)?;
        if !fraction.is_empty() {
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            // 18 digits keep the product within u128; finer digits are below a byte.
            let fraction = &fraction[..fraction.len().min(18)];
            let scale = 10u128.pow(fraction.len() as u32);
            let numerator: u128 = fraction.parse().map_err(|_| invalid())?;
            bytes += numerator * u128::from(multiplier) / scale;
        }
        u64::try_from(bytes).map(ByteSize).map_err(|_| too_big())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (iec, _, size) in UNITS {
            if self.0 != 0 && self.0.is_multiple_of(size) {
                return write!(f, "{}{iec}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteSize({self})")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByteSizeVisitor;

        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like 512MB, or a number of bytes")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!("invalid size {v}: {HINT}")))
            }
        }

        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> u64 {
        s.parse::<ByteSize>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .as_u64()
    }

    #[test]
    fn parses_base2_units_like_prometheus() {
        assert_eq!(parse("512B"), 512);
        assert_eq!(parse("1024"), 1024);
        assert_eq!(parse("64KB"), 64 * 1024);
        assert_eq!(parse("64KiB"), 64 * 1024);
        assert_eq!(parse("512MB"), 512 * 1024 * 1024);
        assert_eq!(parse("512MiB"), 512 * 1024 * 1024);
        assert_eq!(parse("2GB"), 2 << 30);
        assert_eq!(parse("1TiB"), 1 << 40);
        assert_eq!(parse("1PB"), 1 << 50);
        assert_eq!(parse("1.5GB"), 3 << 29);
        assert_eq!(parse("0.5KB"), 512);
        assert_eq!(parse("0"), 0);
    }

    #[test]
    fn rejects_unknown_units_and_junk() {
        for bad in [
            "5XB", "kb", "1kB", "", "MB", "1.GB", ".5GB", "1 GB", "-1B", "1.2.3MB",
        ] {
            let err = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(err.starts_with("invalid size"), "{bad:?}: {err}");
        }
        let err = "16EB".parse::<ByteSize>().unwrap_err().to_string();
        assert_eq!(err, "size \"16EB\" is too large");
    }

    #[test]
    fn displays_largest_exact_unit_and_round_trips() {
        let cases = [
            (0, "0B"),
            (1000, "1000B"),
            (1024, "1KiB"),
            (512 << 20, "512MiB"),
            (3 << 29, "1536MiB"),
            (1 << 40, "1TiB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(ByteSize::b(bytes).to_string(), text);
            assert_eq!(parse(text), bytes);
        }
        assert_eq!(ByteSize::mib(2), ByteSize::b(2 << 20));
        assert_eq!(ByteSize::gib(1).as_u64(), 1 << 30);
    }

    #[test]
    fn yaml_number_or_string() {
        let size: ByteSize = serde_yaml::from_str("4096").unwrap();
        assert_eq!(size.as_u64(), 4096);
        let size: ByteSize = serde_yaml::from_str("\"64MB\"").unwrap();
        assert_eq!(size, ByteSize::mib(64));
        assert!(serde_yaml::from_str::<ByteSize>("-1").is_err());
        assert_eq!(
            serde_yaml::to_string(&ByteSize::mib(64)).unwrap(),
            "64MiB\n"
        );
    }
}
