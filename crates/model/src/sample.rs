//! Samples.

/// The NaN bit pattern Prometheus writes as a staleness marker; any other
/// NaN is an ordinary value.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }

    pub fn is_stale(&self) -> bool {
        self.v.to_bits() == STALE_NAN
    }

    pub fn stale(t: i64) -> Self {
        Self {
            t,
            v: f64::from_bits(STALE_NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_a_specific_nan() {
        assert!(Sample::stale(1).is_stale());
        assert!(Sample::stale(1).v.is_nan());
        assert!(!Sample::new(1, f64::NAN).is_stale());
    }
}
