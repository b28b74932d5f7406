//! Go's `math.Log` family, operation for operation.
//!
//! Go's logarithm is not correctly rounded (it is off by one ulp for e.g.
//! `ln(3)`), and Rust's is. The difference is invisible within float
//! tolerance but shows wherever a value turns into text or is compared
//! exactly: `count_values` labels, `log10(x) == 3`, formatted alerts.
//! Prometheus 2.42 on amd64 runs Go's assembly `Log`, which reads the
//! exponent straight from the bits (so subnormals are not normalised);
//! `log2` and `log10` are built on it in plain Go.

// Reduction constants: ln(2) split so that k*LN2_HI is exact.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
// Coefficients of the polynomial in s = f / (2 + f).
const L1: f64 = f64::from_bits(0x3FE5_5555_5555_5593);
const L2: f64 = f64::from_bits(0x3FD9_9999_9997_FA04);
const L3: f64 = f64::from_bits(0x3FD2_4924_9422_9359);
const L4: f64 = f64::from_bits(0x3FCC_71C5_1D8E_78AF);
const L5: f64 = f64::from_bits(0x3FC7_4664_96CB_03DE);
const L6: f64 = f64::from_bits(0x3FC3_9A09_D078_C69F);
const L7: f64 = f64::from_bits(0x3FC2_F112_DF3E_5244);

/// Natural logarithm as Go computes it on amd64.
pub(crate) fn log(x: f64) -> f64 {
    let bits = x.to_bits();
    if bits & !(1 << 63) == 0 {
        return f64::NEG_INFINITY;
    }
    if x.is_sign_negative() {
        return f64::NAN;
    }
    if x.is_infinite() || x.is_nan() {
        return x;
    }
    // mantissa scaled into [0.5, 1) and the matching exponent, straight
    // from the bit fields
    let mut f1 = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FE0_0000_0000_0000);
    let mut k = f64::from(((bits >> 52) & 0x7FF) as i32 - 0x3FE);
    if f1 < std::f64::consts::FRAC_1_SQRT_2 {
        k -= 1.0;
        f1 *= 2.0;
    }
    let f = f1 - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
    let t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
    let r = t1 + t2;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// Go's `math.Frexp`: `x = frac * 2^exp` with `|frac|` in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || x.is_infinite() || x.is_nan() {
        return (x, 0);
    }
    let (x, mut exp) = if x.abs() < f64::MIN_POSITIVE {
        (x * (1u64 << 52) as f64, -52)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    exp += ((bits >> 52) & 0x7FF) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7FF << 52)) | (1022 << 52));
    (frac, exp)
}

pub(crate) fn log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    // exact for powers of two
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    log(frac) * std::f64::consts::LOG2_E + f64::from(exp)
}

pub(crate) fn log10(x: f64) -> f64 {
    log(x) * std::f64::consts::LOG10_E
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_not_correct_rounding() {
        // Go: math.Log(3) = 1.0986122886681096; correctly rounded ...098
        assert_eq!(log(3.0), 1.0986122886681096);
        assert_ne!(log(3.0), 3f64.ln());
        // values Prometheus 2.42 (amd64) answers
        assert_eq!(log10(0.1), -0.9999999999999999);
        assert_eq!(log10(1000.0), 3.0);
        assert_eq!(log2(std::f64::consts::FRAC_1_SQRT_2), -0.4999999999999999);
        // the assembly reads a subnormal's exponent field as if normal
        assert_eq!(log(5e-324), -709.0895657128241);
        assert_eq!(log2(5e-324), -1074.0);
        assert_eq!(log10(1e-310), -307.9517381166022);
        assert_eq!(log2(8.0), 3.0);
        assert_eq!(log(1.0), 0.0);
        assert_eq!(log(0.0), f64::NEG_INFINITY);
        assert_eq!(log(-0.0), f64::NEG_INFINITY);
        assert!(log(-1.0).is_nan());
        assert_eq!(log(f64::INFINITY), f64::INFINITY);
        assert_eq!(log2(0.0), f64::NEG_INFINITY);
        assert!(log2(-4.0).is_nan());
    }
}
