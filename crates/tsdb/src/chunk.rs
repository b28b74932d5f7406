//! Compressed chunks of samples, descended from Facebook's Gorilla format:
//! variable-length timestamp residuals and either XOR-compressed values or,
//! when every value is a decimal number with few digits (what exporters
//! print), integer deltas of the scaled value (in prefix-coded buckets, or
//! bit-packed at one width chosen per chunk). Every f64 bit pattern
//! round-trips exactly (NaN payloads, the staleness marker, -0.0,
//! infinities, subnormals): a value that the integer encoding cannot
//! reproduce bit for bit is stored raw.
//!
//! Each chunk records its encoding in its header. The open chunk of a
//! series uses the encoding that won for the series' previous chunk; when a
//! chunk is closed it is re-encoded with each candidate and the smallest is
//! kept ([`ChunkAppender::finish_best`]).
//!
//! The bit layout is specified in `FORMAT.md`; keep the two in step.

use pharos_model::Sample;

/// Bytes before the bit stream: sample count (big-endian u16), the
/// encoding byte and the integer bucket width.
pub const HEADER_LEN: usize = 4;

/// Most samples one chunk can hold (the count is a u16).
pub const MAX_SAMPLES: usize = 0x7fff;

/// Bit 15 of the header's count word: the timestamps are evenly spaced
/// ([`TimeEncoding::Regular`]).
const REGULAR_FLAG: u16 = 0x8000;

/// Largest decimal exponent (decimals after the point): 10^e is exact in
/// an f64 up to 10^22, and more digits than this do not occur in exporter
/// output.
pub const MAX_EXPONENT: i8 = 18;
/// Smallest decimal exponent: a negative exponent `-z` stores values with
/// `z` trailing zeros (byte and file counts rounded by the kernel or the
/// exporter, e.g. 123456 * 10^4) as the integer without them. The header
/// has room for 13 such exponents next to the 19 non-negative ones.
pub const MIN_EXPONENT: i8 = -13;

const POW10: [f64; MAX_EXPONENT as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// Scaled integers stay within ±2^53, so every one converts to f64 exactly
/// and deltas and delta-of-deltas never overflow an i64.
const INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Timestamp residual buckets: (prefix, prefix length, payload bits).
const T_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 5), (0b110, 3, 14), (0b1110, 4, 20)];
/// Prefix of the 64-bit timestamp bucket.
const T_WIDE: (u64, u32) = (0b1111, 4);
/// Residuals within this bucket's range count as jitter and keep the base
/// interval in base mode.
const T_SMALL_BITS: u32 = 5;

/// Integer value residual buckets for a chunk whose first bucket holds `k`
/// bits: (prefix, prefix length, payload bits). `k` is chosen per chunk to
/// fit its data (a packets counter needs far fewer bits than a bytes
/// counter).
fn i_buckets(k: u8) -> [(u64, u32, u32); 3] {
    let k = u32::from(k);
    [(0b10, 2, k), (0b110, 3, k + 6), (0b1110, 4, k + 14)]
}
const I_WIDE: (u64, u32) = (0b11110, 5);
/// A value the integer encoding cannot reproduce follows as raw f64 bits.
const I_RAW: (u64, u32) = (0b11111, 5);
/// Range of the first integer bucket's width.
pub const MIN_INT_BITS: u8 = 1;
pub const MAX_INT_BITS: u8 = 40;
/// Width used until a series' data has chosen one.
const DEFAULT_INT_BITS: u8 = 7;
/// Widths [`ChunkAppender::finish_best`] considers.
const INT_BITS_CANDIDATES: [u8; 13] = [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24];

/// Value encoding families for [`ChunkIter::decode_as`].
const V_XOR: u8 = 0;
const V_INT: u8 = 1;
const V_PACKED: u8 = 2;
const V_RANGED: u8 = 3;
const V_CONST: u8 = 7;

/// The largest symbol count of the ranged encoding: its codes stay within
/// 63 bits.
const MAX_RANGED_SYMBOLS: u64 = 1 << 62;

/// Byte 3 of an integer-delta chunk with this bit set: the one-bit code
/// means "unchanged" ([`ValueEncoding::IntStep`]).
const STEP_FLAG: u8 = 0x80;

/// What an integer encoding stores per value, and what its one-bit code
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntMode {
    /// delta of deltas; `0` repeats the delta
    Dod,
    /// deltas; `0` repeats the delta
    Delta,
    /// deltas; `0` is delta 0
    Step,
}

/// `leading` meaning "no XOR window yet", forcing the next non-zero XOR to
/// spell out its window.
const NO_WINDOW: u8 = 0xff;

/// How timestamps are predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEncoding {
    /// Delta of deltas: the previous interval predicts the next. Best for
    /// intervals that drift.
    DeltaOfDelta,
    /// A base interval predicts every step; residuals small enough to be
    /// jitter keep the base, larger ones replace it. Jittered scrape
    /// timestamps cost about half the bits of delta-of-delta this way,
    /// since the jitter is not differenced twice.
    Base,
    /// Every interval is the same non-zero one: the second timestamp
    /// stores it once and later samples store no timestamp bits at all.
    /// Scrapes with aligned timestamps (Prometheus' default tolerance,
    /// our scraper, agents forwarding them) look like this. Only chosen
    /// when a chunk is closed ([`ChunkAppender::finish_best`]); an open
    /// chunk cannot know its future intervals, so the public constructors
    /// use [`TimeEncoding::Base`] instead.
    Regular,
}

/// How values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// Gorilla XOR against the previous value.
    Xor,
    /// `v * 10^e` as an integer, stored as delta of deltas. `e` is the
    /// exponent actually used, in `MIN_EXPONENT..=MAX_EXPONENT` (negative:
    /// the values' trailing zeros are dropped); the appender may raise the
    /// one asked for to fit the first value. `k` is the payload width of
    /// the smallest residual bucket.
    IntDod { e: i8, k: u8 },
    /// `v * 10^e` as an integer, stored as deltas ("same delta again" is
    /// one bit). Better than delta of deltas for counters with varying
    /// increments and for wandering gauges.
    IntDelta { e: i8, k: u8 },
    /// `v * 10^e` as an integer, stored as deltas where the one-bit code
    /// means "unchanged" (delta 0) instead of "same delta again". Gauges
    /// that hold a value for a few scrapes (memory, disk space,
    /// temperatures) pay one bit per repeat and one prefix per change.
    IntStep { e: i8, k: u8 },
    /// `v * 10^e` as an integer; each sample stores `x - base` in exactly
    /// `w` bits, where `x` is the integer itself or (`delta`) its
    /// difference from the previous one. No bucket prefixes: for counters
    /// with irregular increments and for noisy gauges this is the
    /// information and nothing else. The all-ones pattern escapes values
    /// outside the range. `base` is written in the stream before the first
    /// value (it is 0 for [`ChunkAppender::with_encoding`]);
    /// [`ChunkAppender::finish_best`] picks `w` and `base` from the chunk's
    /// data.
    IntPacked { e: i8, w: u8, delta: bool },
    /// Like [`ValueEncoding::IntPacked`], but each integer (or delta) `x`
    /// is stored as its distance from a centre `c`, zigzagged (`0, -1, 1,
    /// -2, ...` become `0, 1, 2, 3, ...`), in a truncated binary code for
    /// `n` symbols: `floor(log2 n)` bits for the first ones, one more for
    /// the rest, so a range that is not a power of two costs its own
    /// `log2` rather than the next whole bit, and the values near the
    /// centre (most deltas of a counter with jittered increments) get the
    /// short codes. Distances are counted in a unit `g`, the common
    /// divisor of the chunk's distances (memory and disk sizes move in
    /// whole pages: 12 bits a value less). Symbol `n - 1` escapes. `c`,
    /// `n` and `g` follow the first timestamp; only
    /// [`ChunkAppender::finish_best`] picks this.
    IntRanged { e: i8, delta: bool },
    /// The ranged code over the values' IEEE-754 bit patterns read as
    /// integers, for values no decimal exponent fits (timestamps in
    /// seconds with nanoseconds, float sums): within one binade the bit
    /// pattern grows linearly with the value, so the deltas of a growing
    /// value are nearly constant and the ranged code stores only their
    /// jitter. Exact by construction: the bits are the value.
    BitsRanged { delta: bool },
    /// Every value of the chunk has the same bits, stored once after the
    /// first timestamp; later samples have no value bits at all. Half the
    /// series of a node exporter hold one value for hours (info metrics,
    /// sizes, error counters at zero): with regular timestamps such a
    /// chunk is its header. Only [`ChunkAppender::finish_best`] picks it.
    Const,
}

/// A chunk's encoding, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub time: TimeEncoding,
    pub value: ValueEncoding,
}

impl Default for Encoding {
    fn default() -> Self {
        Self {
            time: TimeEncoding::Base,
            value: ValueEncoding::IntDelta {
                e: 0,
                k: DEFAULT_INT_BITS,
            },
        }
    }
}

impl Encoding {
    fn to_bytes(self) -> [u8; 2] {
        let t = match self.time {
            // regular chunks say so in the count word instead
            TimeEncoding::DeltaOfDelta | TimeEncoding::Regular => 0,
            TimeEncoding::Base => 0x80,
        };
        let (v, k) = match self.value {
            ValueEncoding::Xor => (0, 0),
            // the XOR family with byte 3 = 1 (plus the delta flag)
            ValueEncoding::BitsRanged { delta } => (0, if delta { 0x81 } else { 0x01 }),
            // and with byte 3 = 2
            ValueEncoding::Const => (0, 0x02),
            ValueEncoding::IntDod { e, k } => (0x20 | exponent_field(e), k),
            ValueEncoding::IntDelta { e, k } => (0x40 | exponent_field(e), k),
            ValueEncoding::IntStep { e, k } => (0x40 | exponent_field(e), STEP_FLAG | k),
            ValueEncoding::IntPacked { e, w, delta, .. } => {
                (0x60 | exponent_field(e), if delta { 0x80 } else { 0 } | w)
            }
            // width 0, which no packing has, marks the ranged form
            ValueEncoding::IntRanged { e, delta } => {
                (0x60 | exponent_field(e), if delta { 0x80 } else { 0 })
            }
        };
        [t | v, k]
    }

    /// The header's count word for `count` samples in this encoding.
    fn count_word(self, count: u16) -> [u8; 2] {
        let flag = if self.time == TimeEncoding::Regular {
            REGULAR_FLAG
        } else {
            0
        };
        (count | flag).to_be_bytes()
    }

    fn from_bytes(b: u8, k: u8, regular: bool) -> Option<Self> {
        let time = if regular {
            if b & 0x80 != 0 {
                return None;
            }
            TimeEncoding::Regular
        } else if b & 0x80 != 0 {
            TimeEncoding::Base
        } else {
            TimeEncoding::DeltaOfDelta
        };
        let field = b & 0x1f;
        let e = field_exponent(field);
        let int_ok = (MIN_INT_BITS..=MAX_INT_BITS).contains(&k);
        let value = match (b >> 5) & 0x3 {
            0 if field == 0 && k == 0 => ValueEncoding::Xor,
            0 if field == 0 && k & 0x7f == 1 => ValueEncoding::BitsRanged {
                delta: k & 0x80 != 0,
            },
            0 if field == 0 && k == 2 => ValueEncoding::Const,
            1 if int_ok => ValueEncoding::IntDod { e, k },
            2 if int_ok => ValueEncoding::IntDelta { e, k },
            2 if k & STEP_FLAG != 0
                && (MIN_INT_BITS..=MAX_INT_BITS).contains(&(k & !STEP_FLAG)) =>
            {
                ValueEncoding::IntStep {
                    e,
                    k: k & !STEP_FLAG,
                }
            }
            3 if (1..=64).contains(&(k & 0x7f)) => ValueEncoding::IntPacked {
                e,
                w: k & 0x7f,
                delta: k & 0x80 != 0,
            },
            3 if k & 0x7f == 0 => ValueEncoding::IntRanged {
                e,
                delta: k & 0x80 != 0,
            },
            _ => return None,
        };
        Some(Self { time, value })
    }

    fn read(data: &[u8]) -> Option<Self> {
        match data {
            [c, _, b, k, ..] => Self::from_bytes(*b, *k, u16::from(*c) << 8 & REGULAR_FLAG != 0),
            _ => None,
        }
    }

    fn exponent(self) -> Option<i8> {
        match self.value {
            ValueEncoding::Xor | ValueEncoding::BitsRanged { .. } | ValueEncoding::Const => None,
            ValueEncoding::IntDod { e, .. }
            | ValueEncoding::IntDelta { e, .. }
            | ValueEncoding::IntStep { e, .. }
            | ValueEncoding::IntPacked { e, .. }
            | ValueEncoding::IntRanged { e, .. } => Some(e),
        }
    }

    fn with_exponent(self, e: i8) -> Self {
        let value = match self.value {
            ValueEncoding::Xor => ValueEncoding::Xor,
            ValueEncoding::BitsRanged { delta } => ValueEncoding::BitsRanged { delta },
            ValueEncoding::Const => ValueEncoding::Const,
            ValueEncoding::IntDod { k, .. } => ValueEncoding::IntDod { e, k },
            ValueEncoding::IntDelta { k, .. } => ValueEncoding::IntDelta { e, k },
            ValueEncoding::IntStep { k, .. } => ValueEncoding::IntStep { e, k },
            ValueEncoding::IntPacked { w, delta, .. } => ValueEncoding::IntPacked { e, w, delta },
            ValueEncoding::IntRanged { delta, .. } => ValueEncoding::IntRanged { e, delta },
        };
        Self { value, ..self }
    }
}

/// The header's 5-bit exponent field: `e` itself for `0..=18` (the only
/// values older writers used), `18 - e` (19..=31) for negative `e`.
fn exponent_field(e: i8) -> u8 {
    if e >= 0 {
        e.unsigned_abs()
    } else {
        MAX_EXPONENT.unsigned_abs() + e.unsigned_abs()
    }
}

/// Inverse of [`exponent_field`] for any 5-bit field.
fn field_exponent(field: u8) -> i8 {
    let f = (field & 0x1f) as i8;
    if f <= MAX_EXPONENT {
        f
    } else {
        MAX_EXPONENT - f
    }
}

/// The value an integer `m` stands for at exponent `e`: `m / 10^e`, or
/// `m * 10^-e` for negative `e`. Both the f64 division and multiplication
/// by an exact power of ten are correctly rounded, so the result is a
/// pure function of `(m, e)`; the encoder checks it against the bits it
/// stores, the decoder computes exactly this.
#[inline(always)]
fn unscale(m: i64, e: i8) -> f64 {
    let x = m as f64;
    match e {
        // integers (most counters) skip the division: x / 1.0 is x
        0 => x,
        1.. => x / POW10[e.unsigned_abs() as usize],
        _ => x * POW10[e.unsigned_abs() as usize],
    }
}

/// `v` as an integer scaled by 10^e, when [`unscale`] gives back exactly
/// the same bits. Division by an exact power of ten is correctly rounded,
/// so a value parsed from a decimal string with at most `e` decimals (what
/// exporters emit) always qualifies; -0.0, NaN and infinities never do.
fn scaled(v: f64, e: i8) -> Option<i64> {
    let p = POW10[e.unsigned_abs() as usize];
    let x = if e >= 0 { v * p } else { v / p }.round();
    // also refuses NaN, whose comparisons are all false
    if x.is_nan() || x.abs() > INT_LIMIT {
        return None;
    }
    let m = x as i64;
    (unscale(m, e).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest exponent that represents `v` exactly, if any does: the
/// fewest decimals, or for integers the most trailing zeros dropped.
fn min_exponent(v: f64) -> Option<i8> {
    let Some(m) = scaled(v, 0) else {
        return (1..=MAX_EXPONENT).find(|&e| scaled(v, e).is_some());
    };
    if m == 0 {
        return Some(MIN_EXPONENT);
    }
    // an integer: its trailing decimal zeros give the candidate, checked
    // bit for bit like any other (huge doubles may not divide back)
    let mut z = 0i8;
    let mut q = m;
    while z < -MIN_EXPONENT && q % 10 == 0 {
        q /= 10;
        z += 1;
    }
    (-z..=0).find(|&e| scaled(v, e).is_some())
}

/// The first-bucket width that encodes these integers' residuals (the
/// chunk's values scaled, raw ones left out) in the fewest bits, computed
/// from the residuals rather than by encoding once per candidate.
fn best_int_bits(ms: &[i64], mode: IntMode) -> u8 {
    let mut residuals: Vec<i64> = Vec::with_capacity(ms.len());
    let (mut m0, mut d0) = (0i64, 0i64);
    for &m in ms {
        let delta = m - m0;
        let dod = delta - d0;
        m0 = m;
        d0 = delta;
        match mode {
            IntMode::Dod if dod != 0 => residuals.push(dod),
            IntMode::Delta if dod != 0 => residuals.push(delta),
            IntMode::Step if delta != 0 => residuals.push(delta),
            _ => {}
        }
    }
    let cost = |k: u8| -> u64 {
        let b = i_buckets(k);
        residuals
            .iter()
            .map(|&r| {
                b.iter()
                    .find(|&&(_, _, bits)| fits_signed(r, bits))
                    .map_or(u64::from(I_WIDE.1) + 64, |&(_, plen, bits)| {
                        u64::from(plen + bits)
                    })
            })
            .sum()
    };
    INT_BITS_CANDIDATES
        .iter()
        .copied()
        .min_by_key(|&k| cost(k))
        .unwrap_or(DEFAULT_INT_BITS)
}

fn fits_signed(v: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&v)
}

/// The escape pattern of a `w`-bit packed field: all ones.
fn low_mask(w: u32) -> u64 {
    if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Bits of a length-prefixed integer: 7 bits of length, then the zigzag
/// form without its leading zeros.
fn long_bits(x: i64) -> u64 {
    7 + u64::from(64 - zigzag(x).leading_zeros())
}

/// The `(bits, base, w)` that pack these samples' integers (or deltas) in
/// about the fewest value bits (escapes estimated, raw values left out):
/// the range between two order statistics near the ends, so a counter
/// reset or the first delta becomes one escape instead of widening every
/// sample.
fn best_packing(ms: &[i64], by_delta: bool) -> (u64, i64, u8) {
    let mut xs: Vec<i64> = Vec::with_capacity(ms.len());
    let mut prev = 0i64;
    for &m in ms {
        xs.push(if by_delta { m - prev } else { m });
        prev = m;
    }
    xs.sort_unstable();
    let n = xs.len();
    let (Some(&first), Some(&last)) = (xs.first(), xs.last()) else {
        return (0, 0, 1);
    };
    let escape = 1 + long_bits(first).max(long_bits(last));
    let mut best = (u64::MAX, 0i64, 1u8);
    for lo in 0..n.min(3) {
        for hi in 0..(n - lo).min(3) {
            let base = xs[lo];
            // values up to base + span - 1 must stay below the escape
            let span = xs[n - 1 - hi].abs_diff(base).saturating_add(1);
            let w = (64 - span.leading_zeros()).clamp(1, 64);
            let top = i128::from(base) + i128::from(low_mask(w)) - 1;
            let inside =
                xs.partition_point(|&x| i128::from(x) <= top) - xs.partition_point(|&x| x < base);
            let escapes = (n - inside) as u64;
            let cost = n as u64 * u64::from(w) + escapes * escape + long_bits(base);
            if cost < best.0 {
                best = (cost, base, w as u8);
            }
        }
    }
    best
}

/// The truncated binary code for `n` (2..=2^62) symbols: `k` bits for
/// the first `u` symbols, `k + 1` bits (the symbol plus `u`) for the rest.
#[inline(always)]
fn truncated_code(n: u64) -> (u32, u64) {
    let k = 63 - n.leading_zeros();
    (k, (2u64 << k) - n)
}

/// Bits of symbol `sym` in the truncated binary code for `n` symbols.
fn truncated_bits(sym: u64, n: u64) -> u64 {
    let (k, u) = truncated_code(n);
    u64::from(k) + u64::from(sym >= u)
}

/// The `(bits, centre, n, unit)` of the ranged encoding for these
/// integers (scaled values, or bit patterns) or their deltas, estimated
/// like [`best_packing`]: the median as centre, and the symbol count that
/// leaves the fewest bits with a few outliers escaped.
fn best_ranged(ms: &[i64], by_delta: bool) -> (u64, i64, u64, u32) {
    let mut xs: Vec<i64> = Vec::with_capacity(ms.len());
    let mut prev = 0i64;
    for &m in ms {
        xs.push(if by_delta { m.wrapping_sub(prev) } else { m });
        prev = m;
    }
    if xs.is_empty() {
        return (u64::MAX, 0, 2, 1);
    }
    let mut sorted = xs.clone();
    sorted.sort_unstable();
    let c = sorted[sorted.len() / 2];
    let g = common_unit(&xs, c);
    let gi = i64::from(g);
    // distances that are not whole units escape, like outliers
    let mut syms: Vec<u64> = xs
        .iter()
        .map(|&x| {
            let d = x.wrapping_sub(c);
            if d % gi == 0 {
                zigzag(d / gi)
            } else {
                u64::MAX
            }
        })
        .collect();
    syms.sort_unstable();
    let escape = 1 + xs.iter().map(|&x| long_bits(x)).max().unwrap_or(64);
    let mut best = (u64::MAX, c, 2u64, g);
    for trim in 0..syms.len().min(5) {
        let top = syms[syms.len() - 1 - trim];
        if top >= MAX_RANGED_SYMBOLS - 1 {
            continue;
        }
        let n = top + 2;
        let kept: u64 = syms[..syms.len() - trim]
            .iter()
            .map(|&s| truncated_bits(s, n))
            .sum();
        let cost = kept
            + trim as u64 * (truncated_bits(n - 1, n) + escape)
            + long_bits(c)
            + long_bits(n as i64)
            + long_bits(i64::from(g));
        if cost < best.0 {
            best = (cost, c, n, g);
        }
    }
    best
}

/// The greatest common divisor of the distances of `xs` from `c`, leaving
/// out the largest tenth (a chunk's first delta, a counter reset) and up to
/// two later distances that would lower it (an odd value), which all
/// escape; 1 if there is none.
fn common_unit(xs: &[i64], c: i64) -> u32 {
    let mut mags: Vec<u64> = xs
        .iter()
        .map(|&x| x.wrapping_sub(c).unsigned_abs())
        .collect();
    mags.sort_unstable();
    let Some(&cutoff) = mags.get(mags.len() * 9 / 10).or(mags.last()) else {
        return 1;
    };
    let (mut g, mut odd, mut seen) = (0u64, 0, 0);
    for &x in xs {
        let d = x.wrapping_sub(c).unsigned_abs();
        if d == 0 || d > cutoff {
            continue;
        }
        let lower = gcd(g, d);
        if seen >= 4 && lower < g && odd < 2 {
            odd += 1;
        } else {
            g = lower;
            seen += 1;
        }
    }
    u32::try_from(g).ok().filter(|&g| g > 0).unwrap_or(1)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// An immutable chunk: header plus bit stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    data: Box<[u8]>,
    min_t: i64,
    max_t: i64,
}

impl Chunk {
    /// Wraps encoded bytes, e.g. read from a block, checking that they
    /// decode completely. Returns `None` for truncated, empty or malformed
    /// data.
    pub fn from_bytes(data: Box<[u8]>) -> Option<Self> {
        let mut min_t = i64::MAX;
        let mut max_t = i64::MIN;
        let it = ChunkIter::new(&data);
        let n = it.remaining;
        let ok = it.decode_fast(|t, _| {
            min_t = min_t.min(t);
            max_t = max_t.max(t);
            true
        });
        (ok && n > 0).then_some(Self { data, min_t, max_t })
    }

    /// Decodes encoded bytes straight from storage, appending the samples
    /// in `[mint, maxt]` to `out`, with the checks of
    /// [`Chunk::from_bytes`] in the same pass: returns false, leaving `out`
    /// as it was, for data that would not make a chunk.
    pub fn decode_checked(data: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> bool {
        let it = ChunkIter::new(data);
        if it.remaining == 0 {
            return false;
        }
        let before = out.len();
        out.reserve(it.remaining);
        let ok = it.decode_fast(|t, v| {
            if mint <= t && t <= maxt {
                out.push(Sample::new(t, f64::from_bits(v)));
            }
            true
        });
        if !ok {
            out.truncate(before);
        }
        ok
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn len(&self) -> usize {
        read_count(&self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    pub fn encoding(&self) -> Option<Encoding> {
        Encoding::read(&self.data)
    }

    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.data)
    }

    /// Appends the samples in `[mint, maxt]` to `out`, stopping at the first
    /// one past `maxt` (samples are stored sorted).
    pub fn samples_into(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        self.iter().samples_into(mint, maxt, out);
    }
}

fn read_count(data: &[u8]) -> usize {
    match data {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b]) & !REGULAR_FLAG),
        _ => 0,
    }
}

/// Prediction state shared by the encoder and the decoder, so both sides
/// evolve it identically.
#[derive(Debug, Clone, Copy)]
struct State {
    enc: Encoding,
    t: i64,
    /// Previous interval (delta of delta) or base interval (base mode).
    t_delta: i64,
    /// Base mode: where the grid puts the previous sample.
    anchor: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
    m: i64,
    m_delta: i64,
    /// Packed encoding: the offset of every stored integer.
    base: i64,
    /// Ranged encoding: the unit of its symbols (a common divisor of the
    /// integers' distances from the centre; 1 when there is none). Fits
    /// in the padding after the small fields, so costs the open chunk of
    /// a series nothing.
    unit: u32,
}

impl State {
    fn new(enc: Encoding) -> Self {
        Self {
            enc,
            t: 0,
            t_delta: 0,
            anchor: 0,
            v_bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
            m: 0,
            m_delta: 0,
            base: 0,
            unit: 1,
        }
    }

    /// The predicted next timestamp; the stream stores `t - predict()`.
    fn predict(&self) -> i64 {
        match self.enc.time {
            TimeEncoding::DeltaOfDelta | TimeEncoding::Regular => self.t.wrapping_add(self.t_delta),
            TimeEncoding::Base => self.anchor.wrapping_add(self.t_delta),
        }
    }

    /// Updates the prediction state after timestamp `t` with residual `r`.
    fn advance_t(&mut self, t: i64, r: i64) {
        let delta = t.wrapping_sub(self.t);
        match self.enc.time {
            TimeEncoding::DeltaOfDelta => self.t_delta = delta,
            // the interval is read once, with the second timestamp
            TimeEncoding::Regular => {}
            TimeEncoding::Base => {
                if fits_signed(r, T_SMALL_BITS) {
                    // jitter: the ideal grid continues, so the next
                    // residual is measured against it, not against this
                    // sample's jitter
                    self.anchor = self.anchor.wrapping_add(self.t_delta);
                } else {
                    self.t_delta = nice_interval(delta);
                    self.anchor = t;
                }
            }
        }
        self.t = t;
    }
}

/// Scrape intervals are whole seconds; snapping a jittered first interval
/// to one keeps that jitter out of every later prediction. Only a
/// predictor, so any rule is lossless as long as both sides apply it.
fn nice_interval(d: i64) -> i64 {
    let r = d.saturating_add(500).div_euclid(1000).saturating_mul(1000);
    if r != 0 && d.abs_diff(r) <= 100 { r } else { d }
}

/// The open chunk of a series. Small on purpose: one lives per active
/// series.
#[derive(Debug, Clone)]
pub struct ChunkAppender {
    buf: Vec<u8>,
    /// Unused low bits in the last byte of `buf`.
    free: u8,
    count: u16,
    min_t: i64,
    max_t: i64,
    st: State,
}

impl Default for ChunkAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkAppender {
    /// An appender with the default encoding (base timestamps, integer
    /// deltas with the exponent the first value needs).
    pub fn new() -> Self {
        Self::with_encoding(Encoding::default())
    }

    /// An appender using `enc`; for integer encodings the exponent is
    /// raised at the first sample if that sample needs more decimals, and
    /// the encoding falls back to XOR if it is not a short decimal at all.
    pub fn with_encoding(enc: Encoding) -> Self {
        Self::with_encoding_and_capacity(enc, 0)
    }

    /// Like [`ChunkAppender::with_encoding`], reserving `bytes` up front.
    /// A series' previous chunk size predicts the next one well, and
    /// reserving it avoids the doubling slack of a growing buffer in every
    /// open chunk.
    pub fn with_encoding_and_capacity(mut enc: Encoding, bytes: usize) -> Self {
        if enc.time == TimeEncoding::Regular {
            enc.time = TimeEncoding::Base;
        }
        // a chunk still open takes any value: unchanged ones cost a bit
        if enc.value == ValueEncoding::Const {
            enc.value = ValueEncoding::IntStep {
                e: 0,
                k: DEFAULT_INT_BITS,
            };
        }
        Self::exactly(enc, bytes)
    }

    /// An appender in exactly `enc`, including [`TimeEncoding::Regular`]:
    /// the caller appends only evenly spaced timestamps then.
    fn exactly(enc: Encoding, bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.extend_from_slice(&[0; HEADER_LEN]);
        buf[2..4].copy_from_slice(&enc.to_bytes());
        Self {
            buf,
            free: 0,
            count: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
            st: State::new(enc),
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        usize::from(self.count) >= MAX_SAMPLES
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    pub fn encoding(&self) -> Encoding {
        self.st.enc
    }

    /// The last appended timestamp and value bits.
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.count > 0).then_some((self.st.t, self.st.v_bits))
    }

    /// Encoded bytes so far (a valid chunk at every point).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Heap bytes held, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.buf)
    }

    /// Appends one sample. Timestamps need not increase (residuals are
    /// signed), but callers keep them sorted so iteration is sorted.
    /// Returns false, appending nothing, when the chunk is full (or, in
    /// the constant encoding, when `v` differs from the chunk's value).
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.is_full()
            || self.st.enc.value == ValueEncoding::Const
                && self.count > 0
                && v.to_bits() != self.st.v_bits
        {
            return false;
        }
        if self.count == 0 {
            if let Some(e) = self.st.enc.exponent() {
                self.st.enc = match min_exponent(v) {
                    Some(need) => self.st.enc.with_exponent(e.max(need)),
                    None => Encoding {
                        value: ValueEncoding::Xor,
                        ..self.st.enc
                    },
                };
                self.buf[2..4].copy_from_slice(&self.st.enc.to_bytes());
            }
            self.put(t as u64, 64);
            self.st.t = t;
            self.st.anchor = t;
        } else if self.st.enc.time == TimeEncoding::Regular {
            if self.count == 1 {
                let d = t.wrapping_sub(self.st.t);
                self.put_long(d);
                self.st.t_delta = d;
            }
            self.st.t = t;
        } else {
            let r = t.wrapping_sub(self.st.predict());
            self.put_t(r);
            self.st.advance_t(t, r);
        }
        self.put_value(v);
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        self.count += 1;
        self.buf[..2].copy_from_slice(&self.st.enc.count_word(self.count));
        true
    }

    /// Freezes the chunk as encoded.
    pub fn finish(self) -> Chunk {
        Chunk {
            data: self.buf.into_boxed_slice(),
            min_t: self.min_t,
            max_t: self.max_t,
        }
    }

    /// Freezes the chunk in whichever encoding is smallest for its data,
    /// re-encoding it with the candidates (each timestamp encoding; XOR and
    /// both integer encodings at the exponent the chunk's values need).
    /// Returns the chunk and its encoding, which the series then uses for
    /// its next chunk. Costs a few encodes per closed chunk, i.e. per
    /// 120 samples.
    pub fn finish_best(self) -> (Chunk, Encoding) {
        let samples: Vec<Sample> = self.iter().collect();
        let e = samples
            .iter()
            .filter_map(|s| min_exponent(s.v))
            .max()
            .unwrap_or(0);
        // the values as integers at that exponent, scaled once for every
        // estimate below (values that do not scale are left out: raw)
        let ms: Vec<i64> = samples.iter().filter_map(|s| scaled(s.v, e)).collect();
        let encode = |enc: Encoding, base: i64| {
            let mut a = ChunkAppender::exactly(enc, 0);
            a.st.base = base;
            for s in &samples {
                a.append(s.t, s.v);
            }
            a
        };
        let mut best = self;
        let try_enc = |best: &mut ChunkAppender, enc: Encoding, base: i64| {
            if enc != best.st.enc || base != best.st.base {
                let cand = encode(enc, base);
                if cand.buf.len() < best.buf.len() {
                    *best = cand;
                }
            }
        };
        // evenly spaced timestamps cost nothing after the second one
        let regular = match samples.as_slice() {
            [a, b, ..] => {
                let d = b.t.wrapping_sub(a.t);
                d != 0 && samples.windows(2).all(|w| w[1].t.wrapping_sub(w[0].t) == d)
            }
            _ => false,
        };
        let times: &[TimeEncoding] = if regular {
            &[TimeEncoding::Regular]
        } else {
            &[TimeEncoding::Base, TimeEncoding::DeltaOfDelta]
        };
        // timestamps and values take separate bits, so pick each in turn
        for &time in times {
            let enc = Encoding {
                time,
                ..best.st.enc
            };
            try_enc(&mut best, enc, 0);
        }
        for value in [
            ValueEncoding::IntDelta {
                e,
                k: best_int_bits(&ms, IntMode::Delta),
            },
            ValueEncoding::IntStep {
                e,
                k: best_int_bits(&ms, IntMode::Step),
            },
            ValueEncoding::IntDod {
                e,
                k: best_int_bits(&ms, IntMode::Dod),
            },
            ValueEncoding::Xor,
        ] {
            let enc = Encoding {
                value,
                ..best.st.enc
            };
            try_enc(&mut best, enc, 0);
        }
        // a packing fits one chunk's range and regular timestamps one
        // chunk's intervals; the next open chunk, appended before its data
        // is known, keeps the best prefix encoding and base timestamps
        let chosen = best.st.enc;
        let next = Encoding {
            time: match chosen.time {
                TimeEncoding::Regular => TimeEncoding::Base,
                t => t,
            },
            ..chosen
        };
        // The packed and ranged forms cost the same but for the values'
        // bits, which are known without encoding: only the cheapest
        // estimate is encoded. Tried after XOR won too: page-sized gauges
        // that XOR beats as deltas often pack well in whole pages, and
        // values no decimal fits may range well as bit patterns.
        let mut cands: Vec<(u64, ValueEncoding, i64, u64, u32)> = Vec::with_capacity(6);
        // values that do not scale are stored raw: 64 bits and an escape
        let raw = (samples.len() - ms.len()) as u64;
        let raw_bits = raw * 72;
        // values no decimal fits may range well as bit patterns
        let patterns: Vec<i64> = if chosen.value == ValueEncoding::Xor {
            samples.iter().map(|s| s.v.to_bits() as i64).collect()
        } else {
            Vec::new()
        };
        for delta in [false, true] {
            if !ms.is_empty() {
                let (bits, base, w) = best_packing(&ms, delta);
                let value = ValueEncoding::IntPacked { e, w, delta };
                cands.push((bits.saturating_add(raw_bits), value, base, 0, 1));
                let (bits, c, n, g) = best_ranged(&ms, delta);
                let value = ValueEncoding::IntRanged { e, delta };
                cands.push((bits.saturating_add(raw_bits), value, c, n, g));
            }
            if !patterns.is_empty() {
                let (bits, c, n, g) = best_ranged(&patterns, delta);
                cands.push((bits, ValueEncoding::BitsRanged { delta }, c, n, g));
            }
        }
        if let Some(&(_, value, base, n, g)) = cands.iter().min_by_key(|c| c.0) {
            let enc = Encoding { value, ..chosen };
            if enc != best.st.enc {
                let mut a = ChunkAppender::exactly(enc, 0);
                a.st.base = base;
                a.st.m_delta = n as i64;
                a.st.unit = g;
                for s in &samples {
                    a.append(s.t, s.v);
                }
                if a.buf.len() < best.buf.len() {
                    best = a;
                }
            }
        }
        // one value throughout: stored once
        if let [first, rest @ ..] = samples.as_slice()
            && rest.iter().all(|s| s.v.to_bits() == first.v.to_bits())
        {
            let enc = Encoding {
                value: ValueEncoding::Const,
                ..best.st.enc
            };
            let cand = encode(enc, 0);
            if cand.buf.len() < best.buf.len() {
                best = cand;
            }
        }
        (best.finish(), next)
    }

    fn put_t(&mut self, r: i64) {
        if r == 0 {
            self.put(0, 1);
            return;
        }
        for (prefix, plen, bits) in T_BUCKETS {
            if fits_signed(r, bits) {
                self.put(prefix, plen);
                self.put(r as u64, bits);
                return;
            }
        }
        self.put(T_WIDE.0, T_WIDE.1);
        self.put(r as u64, 64);
    }

    fn put_value(&mut self, v: f64) {
        let bits = v.to_bits();
        let (e, k, mode) = match self.st.enc.value {
            ValueEncoding::Xor => {
                self.put_xor(bits);
                self.st.v_bits = bits;
                if self.count == 0 {
                    // the first value's XOR against zero spans the whole
                    // word; reusing that window would waste bits on every
                    // later value
                    self.st.leading = NO_WINDOW;
                }
                return;
            }
            ValueEncoding::IntDod { e, k } => (e, k, IntMode::Dod),
            ValueEncoding::IntDelta { e, k } => (e, k, IntMode::Delta),
            ValueEncoding::IntStep { e, k } => (e, k, IntMode::Step),
            ValueEncoding::IntPacked { e, w, delta } => {
                self.put_packed(bits, e, u32::from(w), delta);
                return;
            }
            ValueEncoding::IntRanged { e, delta } => {
                self.put_ranged(bits, Some(e), delta);
                return;
            }
            ValueEncoding::BitsRanged { delta } => {
                self.put_ranged(bits, None, delta);
                return;
            }
            ValueEncoding::Const => {
                if self.count == 0 {
                    self.put(bits, 64);
                }
                self.st.v_bits = bits;
                return;
            }
        };
        self.st.v_bits = bits;
        let Some(m) = scaled(v, e) else {
            self.put(I_RAW.0, I_RAW.1);
            self.put(bits, 64);
            return;
        };
        let delta = m - self.st.m;
        let dod = delta - self.st.m_delta;
        self.st.m = m;
        self.st.m_delta = delta;
        let (one_bit, r) = match mode {
            IntMode::Dod => (dod == 0, dod),
            IntMode::Delta => (dod == 0, delta),
            IntMode::Step => (delta == 0, delta),
        };
        if one_bit {
            self.put(0, 1);
            return;
        }
        for (prefix, plen, bits) in i_buckets(k) {
            if fits_signed(r, bits) {
                self.put(prefix, plen);
                self.put(r as u64, bits);
                return;
            }
        }
        self.put(I_WIDE.0, I_WIDE.1);
        self.put(r as u64, 64);
    }

    fn put_packed(&mut self, bits: u64, e: i8, w: u32, by_delta: bool) {
        let base = self.st.base;
        self.st.v_bits = bits;
        if self.count == 0 {
            self.put_long(base);
        }
        let esc = low_mask(w);
        let Some(m) = scaled(f64::from_bits(bits), e) else {
            self.put(esc, w);
            self.put(0, 1);
            self.put(bits, 64);
            return;
        };
        let x = if by_delta { m - self.st.m } else { m };
        self.st.m = m;
        let r = x.wrapping_sub(base) as u64;
        if r < esc {
            self.put(r, w);
        } else {
            self.put(esc, w);
            self.put(1, 1);
            self.put_long(x);
        }
    }

    /// The ranged encoding; `st.base` is the centre, `st.m_delta` the
    /// symbol count (set by [`ChunkAppender::finish_best`]).
    /// `e` is `None` for [`ValueEncoding::BitsRanged`]: the integer is the
    /// value's bit pattern, which always exists.
    fn put_ranged(&mut self, bits: u64, e: Option<i8>, by_delta: bool) {
        let n = (self.st.m_delta as u64).clamp(2, MAX_RANGED_SYMBOLS);
        let g = i64::from(self.st.unit.max(1));
        self.st.v_bits = bits;
        if self.count == 0 {
            self.put_long(self.st.base);
            self.put_long(n as i64);
            self.put_long(g);
            self.st.m_delta = n as i64;
        }
        let (k, u) = truncated_code(n);
        let put_sym = |a: &mut Self, sym: u64| {
            if sym < u {
                a.put(sym, k);
            } else {
                a.put(sym + u, k + 1);
            }
        };
        let m = match e {
            Some(e) => scaled(f64::from_bits(bits), e),
            None => Some(bits as i64),
        };
        let Some(m) = m else {
            put_sym(self, n - 1);
            self.put(0, 1);
            self.put(bits, 64);
            return;
        };
        let x = if by_delta {
            m.wrapping_sub(self.st.m)
        } else {
            m
        };
        self.st.m = m;
        let d = x.wrapping_sub(self.st.base);
        let sym = if d % g == 0 { zigzag(d / g) } else { u64::MAX };
        if sym < n - 1 {
            put_sym(self, sym);
        } else {
            put_sym(self, n - 1);
            self.put(1, 1);
            self.put_long(x);
        }
    }

    fn put_long(&mut self, x: i64) {
        let z = zigzag(x);
        let n = 64 - z.leading_zeros();
        self.put(u64::from(n), 7);
        self.put(z, n);
    }

    fn put_xor(&mut self, bits: u64) {
        let x = bits ^ self.st.v_bits;
        if x == 0 {
            self.put(0, 1);
            return;
        }
        self.put(1, 1);
        // 5 bits hold the leading count, so cap it at 31
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        let new_sig = 64 - u32::from(leading) - u32::from(trailing);
        // reuse the previous window when the value fits in it and a new
        // window (11 bits of header) would not be cheaper
        if self.st.leading != NO_WINDOW
            && leading >= self.st.leading
            && trailing >= self.st.trailing
            && 64 - u32::from(self.st.leading) - u32::from(self.st.trailing) <= new_sig + 11
        {
            self.put(0, 1);
            let sig = 64 - u32::from(self.st.leading) - u32::from(self.st.trailing);
            self.put(x >> self.st.trailing, sig);
            return;
        }
        self.st.leading = leading;
        self.st.trailing = trailing;
        let sig = new_sig;
        self.put(1, 1);
        self.put(u64::from(leading), 5);
        // sig is 1..=64; 64 is written as 0 in six bits
        self.put(u64::from(sig) & 0x3f, 6);
        self.put(x >> trailing, sig);
    }

    /// Writes the low `n` bits of `v`, most significant first.
    fn put(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(u32::from(self.free));
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            let free = u32::from(self.free) - take;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << free;
            }
            self.free = free as u8;
            n -= take;
        }
    }
}

/// Decodes a chunk's samples in stored order. Stops early (rather than
/// panicking) on truncated or malformed data; [`Chunk::from_bytes`] uses
/// that to validate.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: usize,
    first: bool,
    st: State,
}

impl<'a> ChunkIter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let enc = Encoding::read(data);
        Self {
            data,
            pos: HEADER_LEN * 8,
            // an unknown encoding decodes as nothing
            remaining: if enc.is_some() { read_count(data) } else { 0 },
            first: true,
            st: State::new(enc.unwrap_or_default()),
        }
    }

    /// The 64 bits from the read position on, most significant first; bits
    /// past the end of the data read as zero. At least 57 of them are the
    /// stream's (callers check the length first).
    #[inline(always)]
    fn peek(&self) -> u64 {
        let byte = self.pos / 8;
        let mut w = [0u8; 8];
        match self.data.get(byte..byte + 8) {
            Some(b) => w.copy_from_slice(b),
            None => {
                let tail = self.data.get(byte..).unwrap_or_default();
                w[..tail.len()].copy_from_slice(tail);
            }
        }
        u64::from_be_bytes(w) << (self.pos % 8)
    }

    #[inline(always)]
    fn get(&mut self, n: u32) -> Option<u64> {
        let len = n as usize;
        if self.pos + len > self.data.len() * 8 {
            return None;
        }
        let out = match n {
            0 => 0,
            1..=56 => self.peek() >> (64 - n),
            65.. => return None,
            _ => {
                // one peek holds only 57 sure bits: take the top 32 first
                let hi = self.peek() >> 32;
                self.pos += 32;
                let lo = self.peek() >> (96 - n);
                self.pos -= 32;
                (hi << (n - 32)) | lo
            }
        };
        self.pos += len;
        Some(out)
    }

    /// Bits left to read.
    #[inline(always)]
    fn avail(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Consumes `n` bits already read from a peek, if the data has them
    /// (`avail` as returned by [`ChunkIter::avail`] before the peek).
    #[inline(always)]
    fn skip(&mut self, n: usize, avail: usize) -> Option<()> {
        if n > avail {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// Decodes one sample, dispatching on the value encoding; the loops
    /// over whole chunks dispatch once instead ([`ChunkIter::decode_as`]).
    #[inline(always)]
    fn decode_next(&mut self) -> Option<Sample> {
        match self.st.enc.value {
            ValueEncoding::Xor => self.decode_as::<V_XOR>(),
            ValueEncoding::Const => self.decode_as::<V_CONST>(),
            ValueEncoding::IntPacked { .. } => self.decode_as::<V_PACKED>(),
            ValueEncoding::IntRanged { .. } | ValueEncoding::BitsRanged { .. } => {
                self.decode_as::<V_RANGED>()
            }
            _ => self.decode_as::<V_INT>(),
        }
    }

    // inlined into the decoding loops: a call per field costs as much
    // as the decoding. `V` fixes the value encoding's family at compile
    // time, so the XOR loop carries no integer code and the other way
    // round.
    #[inline(always)]
    fn decode_as<const V: u8>(&mut self) -> Option<Sample> {
        let first = self.first;
        if first {
            self.first = false;
            self.st.t = self.get(64)? as i64;
            self.st.anchor = self.st.t;
            match self.st.enc.value {
                // the packing's base follows the first timestamp
                ValueEncoding::IntPacked { .. } => self.st.base = self.get_long()?,
                // the centre, the symbol count and the unit follow it
                ValueEncoding::IntRanged { .. } | ValueEncoding::BitsRanged { .. } => {
                    self.st.base = self.get_long()?;
                    let n = self.get_long()?;
                    if !(2..=MAX_RANGED_SYMBOLS as i64).contains(&n) {
                        return None;
                    }
                    self.st.m_delta = n;
                    self.st.unit = u32::try_from(self.get_long()?).ok().filter(|&g| g > 0)?;
                }
                _ => {}
            }
        } else if let TimeEncoding::Regular = self.st.enc.time {
            if self.st.t_delta == 0 {
                // the second timestamp: the interval, which is never zero
                let d = self.get_long()?;
                if d == 0 {
                    return None;
                }
                self.st.t_delta = d;
            }
            self.st.t = self.st.t.wrapping_add(self.st.t_delta);
        } else {
            // prefix and payload of the small buckets come from one peek
            let avail = self.avail();
            let w = self.peek();
            let r = match w.leading_ones().min(4) {
                0 => {
                    self.skip(1, avail)?;
                    0
                }
                n @ 1..=3 => {
                    let bits = T_BUCKETS[n as usize - 1].2;
                    self.skip((n + 1 + bits) as usize, avail)?;
                    sign_extend((w << (n + 1)) >> (64 - bits), bits)
                }
                _ => {
                    self.skip(4, avail)?;
                    self.get(64)? as i64
                }
            };
            let t = self.st.predict().wrapping_add(r);
            self.st.advance_t(t, r);
        }
        let v_bits = match self.st.enc.value {
            _ if V == V_XOR && first => {
                // first value: see the encoder for why its window is dropped
                let b = self.xor_value()?;
                self.st.leading = NO_WINDOW;
                b
            }
            _ if V == V_XOR => self.xor_value()?,
            ValueEncoding::IntDod { e, k } if V == V_INT => self.int_value(e, k, IntMode::Dod)?,
            ValueEncoding::IntDelta { e, k } if V == V_INT => {
                self.int_value(e, k, IntMode::Delta)?
            }
            ValueEncoding::IntStep { e, k } if V == V_INT => self.int_value(e, k, IntMode::Step)?,
            ValueEncoding::IntPacked { e, w, delta } if V == V_PACKED => {
                self.packed_value(e, u32::from(w), delta)?
            }
            ValueEncoding::IntRanged { e, delta } if V == V_RANGED => {
                self.ranged_value(Some(e), delta)?
            }
            ValueEncoding::BitsRanged { delta } if V == V_RANGED => {
                self.ranged_value(None, delta)?
            }
            ValueEncoding::Const if V == V_CONST && first => self.get(64)?,
            ValueEncoding::Const if V == V_CONST => self.st.v_bits,
            // callers pass the family of the header's encoding
            _ => return None,
        };
        self.st.v_bits = v_bits;
        Some(Sample::new(self.st.t, f64::from_bits(v_bits)))
    }

    // inlined into the decoding loops: a call per field costs as much
    // as the decoding
    #[inline(always)]
    fn int_value(&mut self, e: i8, k: u8, mode: IntMode) -> Option<u64> {
        let avail = self.avail();
        let w = self.peek();
        let r = match w.leading_ones().min(5) {
            0 => {
                self.skip(1, avail)?;
                None
            }
            n @ 1..=3 => {
                let bits = i_buckets(k)[n as usize - 1].2;
                let prefix = n + 1;
                if prefix + bits <= 57 {
                    self.skip((prefix + bits) as usize, avail)?;
                    Some(sign_extend((w << prefix) >> (64 - bits), bits))
                } else {
                    self.skip(prefix as usize, avail)?;
                    Some(sign_extend(self.get(bits)?, bits))
                }
            }
            4 => {
                self.skip(5, avail)?;
                Some(self.get(64)? as i64)
            }
            _ => {
                self.skip(5, avail)?;
                return self.get(64);
            }
        };
        let delta = match (r, mode) {
            (None, IntMode::Step) => 0,
            (None, _) => self.st.m_delta,
            (Some(r), IntMode::Dod) => self.st.m_delta.wrapping_add(r),
            (Some(r), _) => r,
        };
        self.st.m = self.st.m.wrapping_add(delta);
        self.st.m_delta = delta;
        Some(unscale(self.st.m, e).to_bits())
    }

    #[inline(always)]
    fn packed_value(&mut self, e: i8, w: u32, by_delta: bool) -> Option<u64> {
        let r = self.get(w)?;
        let x = (r != low_mask(w)).then(|| self.st.base.wrapping_add(r as i64));
        self.packed_tail(x, Some(e), by_delta)
    }

    /// The end of a packed or ranged value: `x` is the integer (or delta)
    /// its field stood for, `None` for the escape, which is followed by
    /// one bit: 0 for raw value bits (the integer state is unchanged), 1
    /// for a long.
    #[inline(always)]
    fn packed_tail(&mut self, x: Option<i64>, e: Option<i8>, by_delta: bool) -> Option<u64> {
        let x = match x {
            Some(x) => x,
            None if self.get(1)? == 0 => return self.get(64),
            None => self.get_long()?,
        };
        self.st.m = if by_delta {
            self.st.m.wrapping_add(x)
        } else {
            x
        };
        Some(match e {
            Some(e) => unscale(self.st.m, e).to_bits(),
            // bit patterns: the integer is the value
            None => self.st.m as u64,
        })
    }

    /// A ranged value; `e` is `None` for bit patterns.
    #[inline(always)]
    fn ranged_value(&mut self, e: Option<i8>, by_delta: bool) -> Option<u64> {
        // the symbol count lives where the other integer modes keep their
        // delta, which this one has no use for
        let n = self.st.m_delta as u64;
        let (k, u) = truncated_code(n);
        let v = self.get(k)?;
        let sym = if v < u {
            v
        } else {
            ((v << 1) | self.get(1)?) - u
        };
        let g = i64::from(self.st.unit);
        let x = (sym < n - 1).then(|| self.st.base.wrapping_add(unzigzag(sym).wrapping_mul(g)));
        self.packed_tail(x, e, by_delta)
    }

    // rare (the first sample and escapes): kept out of the decoding loops
    #[inline(never)]
    fn get_long(&mut self) -> Option<i64> {
        let n = self.get(7)? as u32;
        if n > 64 {
            return None;
        }
        Some(unzigzag(self.get(n)?))
    }

    // inlined into the decoding loops: a call per field costs as much
    // as the decoding
    #[inline(always)]
    fn xor_value(&mut self) -> Option<u64> {
        // the control bits (1, 2 or 13 of them) come from one peek
        let avail = self.avail();
        let w = self.peek();
        if w >> 63 == 0 {
            if avail < 1 {
                return None;
            }
            self.pos += 1;
            return Some(self.st.v_bits);
        }
        if (w >> 62) & 1 == 1 {
            if avail < 13 {
                return None;
            }
            self.st.leading = ((w >> 57) & 0x1f) as u8;
            let sig = match (w >> 51) & 0x3f {
                0 => 64,
                s => s as u8,
            };
            self.st.trailing = 64u8.checked_sub(self.st.leading + sig)?;
            self.pos += 13;
        } else if avail < 2 || self.st.leading == NO_WINDOW {
            return None;
        } else {
            self.pos += 2;
        }
        let sig = 64 - u32::from(self.st.leading) - u32::from(self.st.trailing);
        let x = self.get(sig)? << self.st.trailing;
        Some(self.st.v_bits ^ x)
    }
}

impl ChunkIter<'_> {
    /// Decodes the rest of the chunk into `out`, keeping samples in
    /// `[mint, maxt]` and stopping at the first one past `maxt`; for sorted
    /// chunks (all but out-of-order ones, which callers filter themselves).
    pub fn samples_into(self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        out.reserve(self.remaining);
        self.decode_fast(|t, v| {
            if t > maxt {
                return false;
            }
            if t >= mint {
                out.push(Sample::new(t, f64::from_bits(v)));
            }
            true
        });
    }

    /// Decodes the rest of the chunk, passing each sample's timestamp and
    /// value bits to `sink` until it returns false. Returns false when the
    /// data is truncated or malformed: every sample passed before is one
    /// [`ChunkIter::next`] returns too, and the failing one is not passed.
    ///
    /// The same decoding as [`ChunkIter::decode_as`], restructured for
    /// speed: the first samples (headers in the stream) go through that
    /// one, the rest through [`decode_loop`], which keeps the state in
    /// locals, usually reads a whole sample from one 8-byte load, lets
    /// reads past the end yield zeros and checks the position against the
    /// end once per sample instead.
    #[inline(always)]
    fn decode_fast(self, sink: impl FnMut(i64, u64) -> bool) -> bool {
        match self.st.enc.value {
            ValueEncoding::Xor => self.decode_fast_as::<V_XOR>(sink),
            ValueEncoding::Const => self.decode_fast_as::<V_CONST>(sink),
            ValueEncoding::IntPacked { .. } => self.decode_fast_as::<V_PACKED>(sink),
            ValueEncoding::IntRanged { .. } | ValueEncoding::BitsRanged { .. } => {
                self.decode_fast_as::<V_RANGED>(sink)
            }
            _ => self.decode_fast_as::<V_INT>(sink),
        }
    }

    #[inline(always)]
    fn decode_fast_as<const V: u8>(mut self, mut sink: impl FnMut(i64, u64) -> bool) -> bool {
        // the first sample carries the stream's headers, and the second
        // of a regular chunk its interval
        while self.remaining > 0
            && (self.first || (self.st.enc.time == TimeEncoding::Regular && self.st.t_delta == 0))
        {
            let Some(s) = self.decode_as::<V>() else {
                return false;
            };
            self.remaining -= 1;
            if !sink(s.t, s.v.to_bits()) {
                return true;
            }
        }
        if self.remaining == 0 {
            return true;
        }
        match (self.st.enc.value, V) {
            (ValueEncoding::IntDod { .. }, V_INT) => self.decode_loop_t::<V_INT_DOD>(sink),
            (ValueEncoding::IntDelta { .. }, V_INT) => self.decode_loop_t::<V_INT_DELTA>(sink),
            (ValueEncoding::IntStep { .. }, V_INT) => self.decode_loop_t::<V_INT_STEP>(sink),
            (_, V_INT) => false,
            _ => self.decode_loop_t::<V>(sink),
        }
    }

    #[inline(always)]
    fn decode_loop_t<const V: u8>(self, sink: impl FnMut(i64, u64) -> bool) -> bool {
        match self.st.enc.time {
            TimeEncoding::DeltaOfDelta => decode_loop::<T_DOD, V>(self, sink),
            TimeEncoding::Base => decode_loop::<T_BASE, V>(self, sink),
            TimeEncoding::Regular => decode_loop::<T_REG, V>(self, sink),
        }
    }
}

/// The integer families of [`decode_loop`], by mode.
const V_INT_DOD: u8 = 4;
const V_INT_DELTA: u8 = 5;
const V_INT_STEP: u8 = 6;

/// Time encodings for [`decode_loop`].
const T_DOD: u8 = 0;
const T_BASE: u8 = 1;
const T_REG: u8 = 2;

/// Bits of a timestamp residual's code (prefix and payload) by the number
/// `n` of leading ones of its prefix, 0..=3: byte `n` of this word.
const T_CODE_LEN: u64 = pack4([1, 2 + 5, 3 + 14, 4 + 20]);
/// `64 - payload bits` for the same codes (code `0` has no payload; its
/// shift only has to be in range).
const T_PAYLOAD_SHIFT: u64 = pack4([63, 64 - 5, 64 - 14, 64 - 20]);

/// Four small numbers as the bytes of a word, for lookups that stay in a
/// register instead of loading from a table.
const fn pack4(x: [u32; 4]) -> u64 {
    (x[0] as u64) | (x[1] as u64) << 8 | (x[2] as u64) << 16 | (x[3] as u64) << 24
}

/// Byte `i` of a [`pack4`] word.
#[inline(always)]
fn unpack4(w: u64, i: u32) -> u32 {
    ((w >> (i * 8)) & 0xff) as u32
}

/// Bits a peeked word holds for the value code after a timestamp code of
/// the small buckets: 57 sure bits less the 24 of the largest.
const AFTER_T: u32 = 57 - 24;

/// A bit position in a chunk's stream for the decoding loops. Reads past
/// the end yield zeros instead of failing: the loops check the position
/// against the end once per sample (positions only grow, so any read
/// past the end leaves the position past it).
#[derive(Clone, Copy)]
struct BitPos<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitPos<'_> {
    /// 64 bits from the position on, most significant first; at least 57
    /// of them are the stream's, the low `pos % 8` are zero.
    #[inline(always)]
    fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let raw = match self.data.get(byte..).and_then(<[u8]>::first_chunk::<8>) {
            Some(b) => u64::from_be_bytes(*b),
            None => tail_word(self.data, byte),
        };
        raw << (self.pos & 7)
    }

    /// Exactly the 64 bits from the position on.
    #[inline(always)]
    fn peek64(&self) -> u64 {
        let next = self.data.get((self.pos >> 3) + 8).copied().unwrap_or(0);
        self.peek() | ((u64::from(next) << (self.pos & 7)) >> 8)
    }

    #[inline(always)]
    fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// The next `n` bits, `n` in 1..=64.
    #[inline(always)]
    fn get(&mut self, n: u32) -> u64 {
        let w = if n <= 57 { self.peek() } else { self.peek64() };
        self.pos += n as usize;
        w >> (64 - n)
    }

    /// A length-prefixed integer (see [`ChunkIter::get_long`]); `None`
    /// for a length over 64.
    #[inline(never)]
    fn get_long(&mut self) -> Option<i64> {
        let n = self.get(7) as u32;
        match n {
            0 => Some(0),
            1..=64 => Some(unzigzag(self.get(n))),
            _ => None,
        }
    }

    /// The escape of a packed or ranged value: 64 raw value bits (`Err`,
    /// the integer state unchanged) or a long (`Ok`); `None` if malformed.
    #[inline(never)]
    fn escape(&mut self) -> Option<Result<i64, u64>> {
        if self.get(1) == 0 {
            Some(Err(self.get(64)))
        } else {
            self.get_long().map(Ok)
        }
    }
}

/// The 8 bytes from `byte` on, zero past the end of `data`.
#[cold]
#[inline(never)]
fn tail_word(data: &[u8], byte: usize) -> u64 {
    let mut w = [0u8; 8];
    let tail = data.get(byte..).unwrap_or_default();
    let n = tail.len().min(8);
    w[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(w)
}

/// The hot loop of [`ChunkIter::decode_fast`], for the samples after the
/// first (and after a regular chunk's second): `T` is the time encoding,
/// `V` the value family. Decodes exactly as [`ChunkIter::decode_as`].
///
/// One 8-byte load usually serves a whole sample: the timestamp code is
/// read from it, and the value code from the rest when the chunk's
/// longest (non-escape) value code fits in what is left.
#[inline(always)]
fn decode_loop<const T: u8, const V: u8>(
    it: ChunkIter<'_>,
    mut sink: impl FnMut(i64, u64) -> bool,
) -> bool {
    let st = it.st;
    let mut b = BitPos {
        data: it.data,
        pos: it.pos,
    };
    let end = it.data.len() * 8;
    let (mut t, mut d, mut anchor) = (st.t, st.t_delta, st.anchor);
    let mut v = st.v_bits;
    let (mut lead, mut trail) = (u32::from(st.leading), u32::from(st.trailing));
    let (mut m, mut md) = (st.m, st.m_delta);
    let base = st.base;
    let unit = i64::from(st.unit);
    // the value encoding's parameters, fixed for the chunk
    let (e, k, w, by_delta) = match st.enc.value {
        ValueEncoding::Xor | ValueEncoding::Const => (None, 0, 0, false),
        ValueEncoding::IntDod { e, k }
        | ValueEncoding::IntDelta { e, k }
        | ValueEncoding::IntStep { e, k } => (Some(e), u32::from(k), 0, false),
        ValueEncoding::IntPacked { e, w, delta } => (Some(e), 0, u32::from(w), delta),
        ValueEncoding::IntRanged { e, delta } => (Some(e), 0, 0, delta),
        ValueEncoding::BitsRanged { delta } => (None, 0, 0, delta),
    };
    let e = e.unwrap_or(0);
    let bit_patterns = matches!(st.enc.value, ValueEncoding::BitsRanged { .. });
    // integer buckets: code lengths and payload shifts by leading ones
    let i_len = pack4([1, 2 + k, 3 + k + 6, 4 + k + 14]);
    let i_shift = pack4([63, 64 - k, 64 - k - 6, 64 - k - 14]);
    // packed: the escape pattern
    let esc = low_mask(w);
    // ranged: the truncated code (the symbol count lives in `m_delta`)
    let n_sym = md as u64;
    let (rk, ru) = if V == V_RANGED {
        truncated_code(n_sym)
    } else {
        (1, 0)
    };
    // the longest value code but escapes; longer than what a peek holds
    // after a timestamp code, the value needs a load of its own
    let v_max = match V {
        V_CONST => 0,
        V_XOR => 13,
        V_PACKED => w,
        V_RANGED => rk + 1,
        _ => 4 + k + 14,
    };
    // longer than any peek, the exact 64-bit load
    let v_wide = v_max > 57;
    for _ in 0..it.remaining {
        // the timestamp, leaving in `y` the bits from the value code on,
        // `avail` of them sure
        let (mut y, avail) = if T == T_REG {
            t = t.wrapping_add(d);
            (b.peek(), 57)
        } else {
            let x = b.peek();
            let n = x.leading_ones();
            let (r, y) = if n < 4 {
                let len = unpack4(T_CODE_LEN, n);
                b.skip(len);
                // code `0` has no payload: masked, without a branch
                let p = ((x << (n + 1)) as i64) >> unpack4(T_PAYLOAD_SHIFT, n);
                (p & -i64::from(n != 0), (x << len, 57 - len))
            } else {
                b.skip(4);
                let r = b.get(64) as i64;
                (r, (b.peek(), 57))
            };
            if T == T_DOD {
                d = d.wrapping_add(r);
                t = t.wrapping_add(d);
            } else {
                let next = anchor.wrapping_add(d).wrapping_add(r);
                if fits_signed(r, T_SMALL_BITS) {
                    anchor = anchor.wrapping_add(d);
                } else {
                    d = nice_interval(next.wrapping_sub(t));
                    anchor = next;
                }
                t = next;
            }
            y
        };
        if v_max > AFTER_T && v_max > avail {
            y = if v_wide { b.peek64() } else { b.peek() };
        }
        if V == V_CONST {
            // no value bits: the first value's, kept in `v`
        } else if V == V_XOR {
            // control bits `0`, `10` or `11` with a window: selects rather
            // than branches, as repeats and changes mix unpredictably
            let changed = (y >> 63) as u32;
            let fresh = changed & (y >> 62) as u32;
            let new_lead = ((y >> 57) & 0x1f) as u32;
            // 6 bits of significant bits, 0 meaning 64
            let new_sig = (((y >> 51).wrapping_sub(1) & 0x3f) + 1) as u32;
            let bad_window = (fresh != 0) & (new_lead + new_sig > 64);
            let no_window = (changed != 0) & (fresh == 0) & (lead == u32::from(NO_WINDOW));
            if bad_window | no_window {
                return false;
            }
            if fresh != 0 {
                lead = new_lead;
                trail = 64 - new_lead - new_sig;
            }
            b.skip(1 + changed + 11 * fresh);
            // the XOR's significant bits, none for a repeat
            let sig = if changed != 0 { 64 - lead - trail } else { 0 };
            let x = b.peek64().checked_shr(64 - sig).unwrap_or(0);
            b.skip(sig);
            v ^= x << trail;
        } else if V >= V_INT_DOD {
            let n = y.leading_ones();
            if n < 4 {
                b.skip(unpack4(i_len, n));
                // the payload, or 0 for code `0`; masks rather than
                // branches, as codes mix unpredictably
                let some = -i64::from(n != 0);
                let p = (((y << (n + 1)) as i64) >> unpack4(i_shift, n)) & some;
                let delta = match V {
                    V_INT_DOD => md.wrapping_add(p),
                    V_INT_DELTA => p | (md & !some),
                    _ => p,
                };
                m = m.wrapping_add(delta);
                md = delta;
                v = unscale(m, e).to_bits();
            } else {
                b.skip(5);
                let p = b.get(64);
                if n == 4 {
                    let delta = if V == V_INT_DOD {
                        md.wrapping_add(p as i64)
                    } else {
                        p as i64
                    };
                    m = m.wrapping_add(delta);
                    md = delta;
                    v = unscale(m, e).to_bits();
                } else {
                    // raw value bits; the integer state stays
                    v = p;
                }
            }
        } else {
            let x = if V == V_PACKED {
                let r = y >> (64 - w);
                b.skip(w);
                (r != esc).then_some(base.wrapping_add(r as i64))
            } else {
                let c = y >> (64 - rk);
                let long = c >= ru;
                let sym = if long { (y >> (63 - rk)) - ru } else { c };
                b.skip(rk + u32::from(long));
                (sym < n_sym - 1).then(|| base.wrapping_add(unzigzag(sym).wrapping_mul(unit)))
            };
            let x = match x {
                Some(x) => Some(x),
                None => match b.escape() {
                    Some(Ok(x)) => Some(x),
                    Some(Err(raw)) => {
                        v = raw;
                        None
                    }
                    None => return false,
                },
            };
            if let Some(x) = x {
                m = if by_delta { m.wrapping_add(x) } else { x };
                v = if bit_patterns {
                    m as u64
                } else {
                    unscale(m, e).to_bits()
                };
            }
        }
        if b.pos > end {
            return false;
        }
        if !sink(t, v) {
            return true;
        }
    }
    true
}

impl Iterator for ChunkIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.remaining == 0 {
            return None;
        }
        match self.decode_next() {
            Some(s) => {
                self.remaining -= 1;
                Some(s)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use pharos_model::STALE_NAN;

    fn all_encodings() -> Vec<Encoding> {
        let mut v = Vec::new();
        for time in [
            TimeEncoding::Base,
            TimeEncoding::DeltaOfDelta,
            TimeEncoding::Regular,
        ] {
            for value in [
                ValueEncoding::Xor,
                ValueEncoding::IntDod { e: 0, k: 7 },
                ValueEncoding::IntDelta {
                    e: 0,
                    k: MIN_INT_BITS,
                },
                ValueEncoding::IntDelta { e: 3, k: 12 },
                ValueEncoding::IntStep { e: 1, k: 6 },
                ValueEncoding::IntStep {
                    e: -2,
                    k: MAX_INT_BITS,
                },
                ValueEncoding::IntDod {
                    e: MAX_EXPONENT,
                    k: MAX_INT_BITS,
                },
                ValueEncoding::IntDelta {
                    e: MIN_EXPONENT,
                    k: 10,
                },
                ValueEncoding::IntDod { e: -3, k: 5 },
                ValueEncoding::IntPacked {
                    e: 0,
                    w: 5,
                    delta: true,
                },
                ValueEncoding::IntPacked {
                    e: 2,
                    w: 12,
                    delta: false,
                },
                ValueEncoding::IntPacked {
                    e: -2,
                    w: 64,
                    delta: false,
                },
                ValueEncoding::IntRanged { e: 0, delta: true },
                ValueEncoding::IntRanged { e: 2, delta: false },
                ValueEncoding::IntRanged {
                    e: -2,
                    delta: false,
                },
                ValueEncoding::BitsRanged { delta: true },
                ValueEncoding::BitsRanged { delta: false },
                ValueEncoding::Const,
            ] {
                v.push(Encoding { time, value });
            }
        }
        v
    }

    fn bits(it: impl Iterator<Item = Sample>) -> Vec<(i64, u64)> {
        it.map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// Encodes `samples` in every encoding (and the best one) and checks
    /// each decodes to exactly the input.
    fn roundtrip(samples: &[(i64, f64)]) -> Chunk {
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        let mut last = None;
        let regular = samples.len() >= 2 && {
            let d = samples[1].0.wrapping_sub(samples[0].0);
            d != 0 && samples.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) == d)
        };
        let constant = samples
            .iter()
            .all(|s| s.1.to_bits() == samples[0].1.to_bits());
        for enc in all_encodings() {
            if enc.time == TimeEncoding::Regular && !regular
                || enc.value == ValueEncoding::Const && !constant
            {
                continue;
            }
            let mut a = ChunkAppender::exactly(enc, 0);
            if let ValueEncoding::IntPacked { w, .. } = enc.value {
                // packings that fit the data badly, so escapes are used
                a.st.base = match w {
                    5 => -3,
                    12 => 100,
                    _ => i64::MIN,
                };
            }
            if let ValueEncoding::BitsRanged { delta } = enc.value {
                // a centre and count that fit nothing, and ones that fit
                // some small bit-pattern deltas
                (a.st.base, a.st.m_delta, a.st.unit) = if delta {
                    (0, 1 << 20, 1)
                } else {
                    (i64::MIN, 3, u32::MAX)
                };
            }
            if let ValueEncoding::IntRanged { e, .. } = enc.value {
                // the same for the ranged form: centre and symbol count
                (a.st.base, a.st.m_delta, a.st.unit) = match e {
                    0 => (-3, 5, 1),
                    2 => (100, 1000, 7),
                    _ => (i64::MIN, MAX_RANGED_SYMBOLS as i64, u32::MAX),
                };
            }
            for &(t, v) in samples {
                assert!(a.append(t, v));
            }
            assert_eq!(bits(a.iter()), want, "{enc:?}");
            let (best, _) = a.clone().finish_best();
            assert_eq!(bits(best.iter()), want, "best from {enc:?}");
            assert!(best.bytes().len() <= a.bytes().len());
            let c = a.finish();
            assert_eq!(c.len(), samples.len());
            let reparsed = Chunk::from_bytes(c.bytes().into()).unwrap();
            assert_eq!(reparsed, c);
            let mut out = vec![Sample::new(0, 0.0)];
            assert!(Chunk::decode_checked(
                c.bytes(),
                i64::MIN,
                i64::MAX,
                &mut out
            ));
            assert_eq!(
                bits(out.into_iter().skip(1)),
                want,
                "decode_checked {enc:?}"
            );
            last = Some(c);
        }
        last.unwrap()
    }

    #[test]
    fn constant_chunks_store_their_value_once() {
        // regular: the header, the first time, the interval and the value
        let regular: Vec<(i64, f64)> = (0..480).map(|i| (i * 15_000, 1.0)).collect();
        let c = roundtrip(&regular);
        let mut a = ChunkAppender::new();
        for &(t, v) in &regular {
            a.append(t, v);
        }
        let (best, _) = a.finish_best();
        assert_eq!(
            best.encoding(),
            Some(Encoding {
                time: TimeEncoding::Regular,
                value: ValueEncoding::Const
            })
        );
        assert!(best.bytes().len() <= 24, "{} bytes", best.bytes().len());
        assert_eq!(bits(best.iter()), bits(c.iter()));
        // jittered times keep their codes; NaN and -0.0 are values too
        for v in [f64::NAN, -0.0, f64::from_bits(STALE_NAN), 1e300] {
            let jittered: Vec<(i64, f64)> = (0..200)
                .map(|i| (i * 15_000 + (i * 7919) % 23, v))
                .collect();
            roundtrip(&jittered);
            let mut a = ChunkAppender::new();
            for &(t, v) in &jittered {
                a.append(t, v);
            }
            let (best, _) = a.finish_best();
            assert_eq!(best.encoding().map(|e| e.value), Some(ValueEncoding::Const));
        }
        // a constant chunk refuses another value, appending nothing
        let enc = Encoding {
            time: TimeEncoding::Base,
            value: ValueEncoding::Const,
        };
        let mut a = ChunkAppender::exactly(enc, 0);
        assert!(a.append(0, 2.5) && a.append(15_000, 2.5));
        assert!(!a.append(30_000, 2.5000000000000004));
        assert!(!a.append(30_000, f64::NAN));
        assert_eq!(
            bits(a.iter()),
            vec![(0, 2.5f64.to_bits()), (15_000, 2.5f64.to_bits())]
        );
        // an open chunk never starts constant
        let open = ChunkAppender::with_encoding(enc);
        assert_ne!(open.encoding().value, ValueEncoding::Const);
    }

    #[test]
    fn special_values_round_trip_bit_exact() {
        let specials = [
            f64::from_bits(STALE_NAN),
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::from_bits(0xfff0_0000_0000_0001),
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 3.0,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            1e-300,
            0.1 + 0.2,
            1.0,
            -1.0,
        ];
        for start in [0.0, 0.5, 42.0, f64::NAN] {
            let mut s = vec![(1000, start)];
            for (i, v) in specials.iter().enumerate() {
                s.push((1000 + 15_000 * (i as i64 + 1), *v));
                s.push((1000 + 15_000 * (i as i64 + 1) + 7, 3.25));
            }
            roundtrip(&s);
        }
        for v in specials {
            roundtrip(&[(0, v), (1, v), (2, 7.0)]);
        }
    }

    #[test]
    fn decimal_scaling_is_exact_or_refused() {
        assert_eq!(scaled(45.5, 1), Some(455));
        assert_eq!(scaled(45.5, 0), None);
        assert_eq!(scaled(0.123456, 6), Some(123_456));
        assert_eq!(min_exponent(12345.67), Some(2));
        assert_eq!(min_exponent(-0.0), None);
        assert_eq!(min_exponent(f64::from_bits(STALE_NAN)), None);
        // 17 significant digits need a mantissa beyond 2^53
        assert_eq!(min_exponent(0.1 + 0.2), None);
        assert_eq!(min_exponent(1e300), None);
        // every representable value divides back to the same bits
        let mut rng = Rng::new(17);
        for _ in 0..20_000 {
            let v = f64::from_bits(rng.next_u64());
            let d = (rng.below(1 << 40) as f64) / POW10[rng.below(8) as usize];
            for x in [v, d, -d] {
                if let Some(e) = min_exponent(x) {
                    let m = scaled(x, e).unwrap();
                    assert_eq!(unscale(m, e).to_bits(), x.to_bits());
                }
            }
        }
    }

    #[test]
    fn trailing_zeros_scale_down_exactly_or_are_refused() {
        assert_eq!(min_exponent(1_234_560_000.0), Some(-4));
        assert_eq!(scaled(1_234_560_000.0, -4), Some(123_456));
        assert_eq!(scaled(1_234_560_001.0, -4), None);
        assert_eq!(min_exponent(-7e12), Some(-12));
        assert_eq!(min_exponent(0.0), Some(MIN_EXPONENT));
        assert_eq!(min_exponent(-0.0), None);
        // 2^60 is an integer but no power of ten divides it
        assert_eq!(min_exponent(2f64.powi(60)), None);
        // 1e23 is not exactly 10^23; 1e22 * 10 rounds to the same double
        // only if the check passes, and then it is lossless by construction
        for v in [1e22, 1e23, 1e30, 9.999e15, 123e13, f64::MAX] {
            if let Some(e) = min_exponent(v) {
                assert_eq!(unscale(scaled(v, e).unwrap(), e).to_bits(), v.to_bits());
            }
        }
        let mut rng = Rng::new(29);
        for _ in 0..20_000 {
            let z = rng.below(14) as i32;
            let m = rng.below(1 << 30) as f64;
            for x in [
                m * 10f64.powi(z),
                -m * 10f64.powi(z),
                m * 10f64.powi(z) + 1.0,
            ] {
                match min_exponent(x) {
                    Some(e) => {
                        assert!(e <= 0, "{x} {e}");
                        assert_eq!(unscale(scaled(x, e).unwrap(), e).to_bits(), x.to_bits());
                        if x != 0.0 && z > 0 && x == m * 10f64.powi(z) && m % 10.0 != 0.0 {
                            // all of the power's zeros are dropped
                            assert!(e <= -(z as i8), "{x} {e}");
                        }
                    }
                    None => assert!(x.abs() > INT_LIMIT, "{x} must scale"),
                }
            }
        }
    }

    #[test]
    fn exponent_field_round_trips_and_keeps_old_values() {
        for e in MIN_EXPONENT..=MAX_EXPONENT {
            let f = exponent_field(e);
            assert!(f < 32);
            assert_eq!(field_exponent(f), e);
        }
        // the non-negative exponents keep the field values of format 1
        for e in 0..=MAX_EXPONENT {
            assert_eq!(exponent_field(e), e.unsigned_abs());
        }
        let enc = Encoding {
            time: TimeEncoding::Base,
            value: ValueEncoding::IntDelta { e: -4, k: 20 },
        };
        let [b, k] = enc.to_bytes();
        assert_eq!(b, 0x80 | 0x40 | 22);
        assert_eq!(Encoding::from_bytes(b, k, false), Some(enc));
    }

    #[test]
    fn chunk_written_before_negative_exponents_still_decodes() {
        // base timestamps, integer deltas, e = 1, k = 4: samples (1000, 0.5)
        // and (16000, 0.7), bytes laid out by hand from FORMAT.md: t0 in 64
        // bits; `10 0101` (m 5); `1110` + 20 bits 15000; `10 0010` (delta 2)
        let bytes: Vec<u8> = vec![
            0, 2, 0xc1, 4, 0, 0, 0, 0, 0, 0, 3, 232, 151, 128, 234, 98, 32,
        ];
        let mut a = ChunkAppender::with_encoding(Encoding {
            time: TimeEncoding::Base,
            value: ValueEncoding::IntDelta { e: 1, k: 4 },
        });
        a.append(1000, 0.5);
        a.append(16_000, 0.7);
        assert_eq!(a.bytes(), &bytes[..]);
        let c = Chunk::from_bytes(bytes.into()).unwrap();
        assert_eq!(
            bits(c.iter()),
            vec![(1000, 0.5f64.to_bits()), (16_000, 0.7f64.to_bits())]
        );
    }

    #[test]
    fn gauges_with_trailing_zeros_store_the_short_integer() {
        let mut rng = Rng::new(5);
        let mut v = 0.0;
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                if i % 4 == 0 {
                    v = (100_000 + rng.below(900_000)) as f64 * 1e4;
                }
                (i * 15_000, v)
            })
            .collect();
        roundtrip(&s);
        let (c, next) = closed(&s);
        assert_eq!(
            bits(c.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        for enc in [c.encoding(), Some(next)] {
            match enc.map(|e| e.value) {
                Some(
                    ValueEncoding::IntDelta { e, .. }
                    | ValueEncoding::IntStep { e, .. }
                    | ValueEncoding::IntDod { e, .. }
                    | ValueEncoding::IntPacked { e, .. },
                ) => assert_eq!(e, -4),
                other => panic!("expected an integer encoding, got {other:?}"),
            }
        }
        let at_zero = encoded_len(
            Encoding {
                time: TimeEncoding::Base,
                value: ValueEncoding::IntDelta { e: 0, k: 24 },
            },
            &s,
        );
        assert!(
            c.bytes().len() * 10 < at_zero * 8,
            "{} vs {at_zero}",
            c.bytes().len()
        );
    }

    #[test]
    fn packed_counters_cost_their_range_and_survive_resets() {
        let mut rng = Rng::new(8);
        let mut m = 1_000_000_000u64;
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                // a counter reset halfway, and one stale marker
                m = if i == 60 {
                    17
                } else {
                    m + 150_000 + rng.below(150_000)
                };
                let v = if i == 90 {
                    f64::from_bits(STALE_NAN)
                } else {
                    m as f64
                };
                (i * 15_000, v)
            })
            .collect();
        roundtrip(&s);
        let mut a = ChunkAppender::new();
        for &(t, v) in &s {
            a.append(t, v);
        }
        let prefix = a.bytes().len();
        let (c, next) = a.finish_best();
        assert_eq!(
            bits(c.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(
                    ValueEncoding::IntPacked {
                        w: 18,
                        delta: true,
                        ..
                    } | ValueEncoding::IntRanged { delta: true, .. }
                )
            ),
            "{:?}",
            c.encoding()
        );
        assert!(!matches!(next.value, ValueEncoding::IntPacked { .. }));
        // 18 bits a value, 1 a timestamp, plus the header, the first sample,
        // the reset and the stale marker
        assert!(c.bytes().len() * 8 < 120 * 19 + 400, "{}", c.bytes().len());
        assert!(c.bytes().len() < prefix, "{} vs {prefix}", c.bytes().len());
    }

    #[test]
    fn every_bit_survives_mixed_adversarial_streams() {
        let tricky = [
            -0.0,
            0.0,
            f64::from_bits(STALE_NAN),
            f64::from_bits(0x7ff4_0000_0000_0001),
            f64::from_bits(0xfff8_0000_0000_0000),
            f64::from_bits(1),
            f64::from_bits(0x000f_ffff_ffff_ffff),
            0.1 + 0.2,
            0.3,
            1e300,
            -1e300,
            1e22,
            1e23,
            123_456e4,
            123_456e4 + 1.0,
            1.000_000_000_000_000_2,
            4.35,
            // the neighbours of a short decimal are not short decimals
            f64::from_bits(4.35f64.to_bits() - 1),
            f64::from_bits(4.35f64.to_bits() + 1),
            f64::from_bits(1_234_560_000f64.to_bits() + 1),
            f64::INFINITY,
            f64::NEG_INFINITY,
            9_007_199_254_740_993.0,
        ];
        let mut rng = Rng::new(41);
        for round in 0..300 {
            let n = 1 + rng.below(200) as usize;
            let scale = 10f64.powi(rng.below(20) as i32 - 8);
            let s: Vec<(i64, f64)> = (0..n)
                .map(|i| {
                    let v = match rng.below(4) {
                        0 => tricky[rng.below(tricky.len() as u64) as usize],
                        1 => f64::from_bits(rng.next_u64()),
                        _ => (rng.below(1 << 20) as f64) * scale,
                    };
                    (i as i64 * 15_000 + round, v)
                })
                .collect();
            roundtrip(&s);
        }
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        roundtrip(&[
            (i64::MIN, 1.0),
            (i64::MAX, 2.0),
            (0, 3.0),
            (-1, 4.0),
            (i64::MIN + 1, 5.0),
            (8191, 1.0),
            (8191 + 8192, 1.0),
            (8191 + 8192 + 31, 1.0),
            (8191 + 8192 + 31 + 40, 1.0),
        ]);
    }

    #[test]
    fn randomized_round_trip() {
        let mut rng = Rng::new(7);
        for _ in 0..300 {
            let n = 1 + rng.below(200) as usize;
            let mut t = rng.next_u64() as i64 >> rng.below(40);
            let mut v = 0.0f64;
            let mut s = Vec::with_capacity(n);
            for _ in 0..n {
                t = t.wrapping_add(match rng.below(5) {
                    0 => 15_000,
                    1 => 15_000 + rng.below(21) as i64 - 10,
                    2 => 15_000 + rng.below(2001) as i64 - 1000,
                    3 => rng.below(1 << 22) as i64,
                    _ => rng.next_u64() as i64,
                });
                v = match rng.below(8) {
                    0 => f64::from_bits(rng.next_u64()),
                    1 => v + rng.below(10) as f64,
                    2 => v,
                    3 => (rng.below(1_000_000) as f64) / 1000.0,
                    4 => -(rng.below(1 << 60) as f64),
                    5 => (rng.next_u64() as i64 >> rng.below(64)) as f64,
                    6 => ((v * 100.0).round() + rng.below(500) as f64) / 100.0,
                    _ => f64::from_bits(STALE_NAN),
                };
                s.push((t, v));
            }
            roundtrip(&s);
        }
    }

    #[test]
    fn range_reads_keep_exactly_the_samples_in_range() {
        let mut rng = Rng::new(11);
        let mut t = 1_700_000_000_000i64;
        let mut a = ChunkAppender::new();
        let mut all = Vec::new();
        for i in 0..120 {
            t += 15_000 + rng.below(3) as i64 - 1;
            let v = (i * 3) as f64 + if i % 7 == 0 { 0.25 } else { 0.0 };
            assert!(a.append(t, v));
            all.push(Sample::new(t, v));
        }
        let (c, _) = a.clone().finish_best();
        for _ in 0..200 {
            let lo = all[rng.below(120) as usize].t - rng.below(2) as i64;
            let hi = lo + rng.below(1_000_000) as i64;
            let want: Vec<Sample> = all
                .iter()
                .copied()
                .filter(|s| s.t >= lo && s.t <= hi)
                .collect();
            let mut got = Vec::new();
            c.samples_into(lo, hi, &mut got);
            assert_eq!(got, want, "closed chunk {lo}..{hi}");
            let mut got = Vec::new();
            a.iter().samples_into(lo, hi, &mut got);
            assert_eq!(got, want, "open chunk {lo}..{hi}");
            let mut got = Vec::new();
            assert!(Chunk::decode_checked(c.bytes(), lo, hi, &mut got));
            assert_eq!(got, want, "checked {lo}..{hi}");
        }
    }

    #[test]
    fn truncated_or_garbage_bytes_are_rejected_not_panicking() {
        let c = roundtrip(&[(1, 1.5), (2, 2.5), (3, 99.25)]);
        for cut in 0..c.bytes().len() {
            assert!(Chunk::from_bytes(c.bytes()[..cut].into()).is_none());
        }
        let keep = vec![Sample::new(7, 7.0)];
        for cut in 0..c.bytes().len() {
            let mut out = keep.clone();
            assert!(!Chunk::decode_checked(&c.bytes()[..cut], 0, 10, &mut out));
            assert_eq!(out, keep);
        }
        let mut bad = c.bytes().to_vec();
        bad[2] = 0x7f;
        for k in [65, 0xc1, 0xff] {
            // packed widths are 1..=64 (0 is the ranged form)
            bad[3] = k;
            assert!(!Chunk::decode_checked(&bad, 0, 10, &mut Vec::new()));
            assert!(Chunk::from_bytes(bad.clone().into()).is_none());
        }
        bad[2] = 0x00;
        bad[3] = 2; // XOR has no bucket width (1 marks bit patterns)
        assert!(Chunk::from_bytes(bad.into()).is_none());
        // a ranged chunk needs at least two symbols and a unit of at least
        // one: centre 0, then n and g
        for (n, g, ok) in [
            (1i64, 1i64, false),
            (2, 0, false),
            (2, 1, true),
            (2, 3, true),
        ] {
            let mut w = BitWriter::default();
            w.put(5, 64);
            w.put(0, 7);
            for x in [n, g] {
                let z = zigzag(x);
                w.put(u64::from(64 - z.leading_zeros()), 7);
                w.put(z, 64 - z.leading_zeros());
            }
            w.put(0, 1); // symbol 0 (n = 2: one bit per symbol)
            let mut ranged = vec![0, 1, 0x60, 0];
            ranged.extend(w.bytes);
            let got = Chunk::from_bytes(ranged.into());
            assert_eq!(got.is_some(), ok, "n = {n}, g = {g}");
            if let Some(c) = got {
                assert_eq!(bits(c.iter()), vec![(5, 0f64.to_bits())]);
            }
        }
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let len = rng.below(40) as usize;
            let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = Chunk::from_bytes(b.into());
        }
    }

    fn encoded_len(enc: Encoding, samples: &[(i64, f64)]) -> usize {
        let mut a = ChunkAppender::exactly(enc, 0);
        for &(t, v) in samples {
            a.append(t, v);
        }
        a.bytes().len()
    }

    #[test]
    fn regular_counter_costs_about_two_bits_per_sample() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 1_000_000.0 + 3.0 * i as f64))
            .collect();
        let (c, _) = {
            let mut a = ChunkAppender::new();
            for &(t, v) in &s {
                a.append(t, v);
            }
            a.finish_best()
        };
        // header, raw first timestamp, first value, one interval, then
        // one bit each for time and value
        assert!(c.bytes().len() <= 3 + 8 + 5 + 4 + 30, "{}", c.bytes().len());
        assert_eq!((c.min_t(), c.len()), (1_700_000_000_000, 120));
    }

    #[test]
    fn evenly_spaced_timestamps_cost_no_bits_after_the_interval() {
        // a constant gauge over 480 scrapes: the value repeats at one bit a
        // sample, the timestamps cost nothing but the first and the interval
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42.0))
            .collect();
        let c = roundtrip(&s);
        let (best, next) = closed(&s);
        assert_eq!(best.encoding().map(|e| e.time), Some(TimeEncoding::Regular));
        assert_eq!(best.bytes()[0] & 0x80, 0x80, "flag in the count word");
        assert_eq!(
            (best.len(), best.min_t(), best.max_t()),
            (480, s[0].0, s[479].0)
        );
        // header 4, first timestamp 8, interval 7+16 bits, 480 value bits
        assert!(
            best.bytes().len() <= 4 + 8 + 3 + 60 + 3,
            "{}",
            best.bytes().len()
        );
        // the next open chunk cannot promise even intervals
        assert_eq!(next.time, TimeEncoding::Base);
        assert_ne!(c.encoding().map(|e| e.time), None);
        let a = ChunkAppender::with_encoding(Encoding {
            time: TimeEncoding::Regular,
            value: ValueEncoding::Xor,
        });
        assert_eq!(a.encoding().time, TimeEncoding::Base);
    }

    #[test]
    fn one_uneven_interval_keeps_per_sample_timestamps() {
        let mut s: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000, i as f64)).collect();
        s[50].0 += 1;
        roundtrip(&s);
        let (best, _) = closed(&s);
        assert_ne!(best.encoding().map(|e| e.time), Some(TimeEncoding::Regular));
        assert_eq!(
            bits(best.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        // negative and wrapping intervals are just intervals
        roundtrip(&[(i64::MAX - 1, 1.0), (i64::MIN, 2.0), (i64::MIN + 1, 3.0)]);
        roundtrip(&[(30, 1.0), (20, 2.0), (10, 3.0)]);
    }

    #[test]
    fn regular_chunk_laid_out_by_hand_decodes_and_a_zero_interval_is_refused() {
        // FORMAT.md: count word 0x8003 (regular, 3 samples), encoding byte
        // 0x40 (integer deltas, e = 0), k = 4; t0 = 1000 in 64 bits; value
        // `10 0101` (5); interval as a long: n = 6 (7 bits) and zigzag(30)
        // = 60 in 6 bits; value `0` (delta 5 again); value `0`.
        // the interval's long is given as (bit length, zigzag bits)
        let laid_out = |interval: (u64, u64)| {
            let mut w = BitWriter::default();
            w.put(1000, 64);
            w.put(0b10_0101, 6);
            w.put(interval.0, 7);
            w.put(interval.1, interval.0 as u32);
            w.put(0, 1);
            w.put(0, 1);
            let mut bytes = vec![0x80, 3, 0x40, 4];
            bytes.extend(w.bytes);
            bytes
        };
        let mut bytes = laid_out((6, 60));
        let c = Chunk::from_bytes(bytes.clone().into()).expect("valid");
        assert_eq!(
            bits(c.iter()),
            vec![
                (1000, 5f64.to_bits()),
                (1030, 10f64.to_bits()),
                (1060, 15f64.to_bits())
            ]
        );
        // the same with a zero interval: n = 0 is zigzag(0)
        assert!(Chunk::from_bytes(laid_out((0, 0)).into()).is_none());
        // a regular chunk may not also set the base-interval bit
        bytes[2] |= 0x80;
        assert!(Chunk::from_bytes(bytes.into()).is_none());
    }

    #[test]
    fn held_gauges_pay_one_bit_per_repeat() {
        // a temperature with one decimal, read every other scrape
        let mut rng = Rng::new(21);
        let mut v = 0.0;
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i: i64| {
                if i % 2 == 0 {
                    v = (300 + rng.below(400)) as f64 / 10.0;
                }
                (i * 15_000, v)
            })
            .collect();
        roundtrip(&s);
        let (c, next) = closed(&s);
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(ValueEncoding::IntStep { e: 1, .. })
            ),
            "{:?}",
            c.encoding()
        );
        assert_eq!(next.value, c.encoding().map(|e| e.value).unwrap());
        let delta = encoded_len(
            Encoding {
                time: TimeEncoding::Regular,
                value: ValueEncoding::IntDelta {
                    e: 1,
                    k: best_int_bits(
                        &s.iter()
                            .filter_map(|&(_, v)| scaled(v, 1))
                            .collect::<Vec<_>>(),
                        IntMode::Delta,
                    ),
                },
            },
            &s,
        );
        // a change costs a prefix and its delta, a repeat one bit
        assert!(
            c.bytes().len() * 8 < 240 * 13 + 240 + 200,
            "{}",
            c.bytes().len()
        );
        assert!(
            c.bytes().len() * 10 < delta * 8,
            "{} vs {delta}",
            c.bytes().len()
        );
        // byte 3 carries the step flag above k
        let Some(ValueEncoding::IntStep { k, .. }) = c.encoding().map(|e| e.value) else {
            unreachable!()
        };
        assert_eq!(c.bytes()[3], 0x80 | k);
    }

    #[test]
    fn truncated_codes_are_complete_and_prefix_free() {
        for n in (2..=300u64).chain([1 << 20, (1 << 20) + 1, MAX_RANGED_SYMBOLS]) {
            let (k, u) = truncated_code(n);
            assert!(1 << k <= n && n < 2 << k, "{n}");
            // Kraft: short codes for u symbols, long ones for n - u, and
            // together they use every k+1-bit pattern exactly once
            assert_eq!(2 * u + (n - u), 2 << k, "{n}");
            if n <= 300 {
                let mut seen = std::collections::HashSet::new();
                for sym in 0..n {
                    let len = truncated_bits(sym, n);
                    let code = if sym < u { sym << 1 } else { sym + u };
                    // as a k+1-bit prefix: short codes cover two patterns
                    assert!(seen.insert(code >> (k + 1 - len as u32) << (k + 1 - len as u32)));
                    assert!(len == u64::from(k) || len == u64::from(k) + 1);
                }
            }
        }
    }

    #[test]
    fn ranged_values_cost_the_log_of_their_range() {
        // a gauge with four significant digits drawn anew each scrape (9000
        // values: 13.1 bits of information, 14 in a packing)
        let mut rng = Rng::new(5);
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| (i * 15_000, (1000 + rng.below(9000)) as f64 / 1e7))
            .collect();
        roundtrip(&s);
        let (c, next) = closed(&s);
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(ValueEncoding::IntRanged { e: 7, delta: false })
            ),
            "{:?}",
            c.encoding()
        );
        assert!(!matches!(next.value, ValueEncoding::IntRanged { .. }));
        assert!(
            c.bytes().len() * 8 < 480 * 1320 / 100 + 200,
            "{}",
            c.bytes().len()
        );
        let packed = {
            let mut a = ChunkAppender::exactly(
                Encoding {
                    time: TimeEncoding::Regular,
                    value: ValueEncoding::IntPacked {
                        e: 7,
                        w: 14,
                        delta: false,
                    },
                },
                0,
            );
            a.st.base = 1000;
            for &(t, v) in &s {
                a.append(t, v);
            }
            a.bytes().len()
        };
        assert!(
            c.bytes().len() * 100 < packed * 96,
            "{} vs {packed}",
            c.bytes().len()
        );
        // byte 3: width 0 marks the ranged form
        assert_eq!(c.bytes()[3], 0);
    }

    #[test]
    fn ranged_values_in_whole_pages_are_counted_in_pages() {
        // free memory in bytes: moves by whole 4096-byte pages, with a
        // staleness marker and one odd value that must escape
        let mut rng = Rng::new(17);
        let mut v: i64 = 8_000_000_000;
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| {
                v += (rng.below(2000) as i64 - 1000) * 4096;
                let x = match i {
                    100 => f64::from_bits(STALE_NAN),
                    200 => (v + 1) as f64,
                    _ => v as f64,
                };
                (i * 15_000, x)
            })
            .collect();
        roundtrip(&s);
        let (c, _) = closed(&s);
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(ValueEncoding::IntRanged { delta: true, .. })
            ),
            "{:?}",
            c.encoding()
        );
        assert_eq!(
            bits(c.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        // deltas span 2000 pages: about 11 bits each, not 23
        assert!(c.bytes().len() * 8 < 480 * 12 + 400, "{}", c.bytes().len());
    }

    #[test]
    fn values_no_decimal_fits_range_as_bit_patterns() {
        // a clock in seconds with sub-microsecond jitter, as
        // node_time_seconds: 17 significant digits, no decimal exponent
        // fits (m would pass 2^53), XOR spends ~35 bits a value
        let mut rng = Rng::new(29);
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| {
                let jitter = rng.below(1_000_000) as f64 * 1e-12;
                let v = (1_732_423_445.0 + i as f64 * 15.0 + jitter) * (1.0 + 1e-9 / 3.0);
                (i * 15_000, v)
            })
            .collect();
        assert!(
            s.iter()
                .filter(|&&(_, v)| min_exponent(v).is_none())
                .count()
                > 300
        );
        roundtrip(&s);
        let xor = encoded_len(
            Encoding {
                time: TimeEncoding::Regular,
                value: ValueEncoding::Xor,
            },
            &s,
        );
        let (c, next) = closed(&s);
        assert_eq!(
            c.encoding().map(|e| e.value),
            Some(ValueEncoding::BitsRanged { delta: true })
        );
        assert_eq!(next.value, ValueEncoding::Xor);
        assert_eq!(
            bits(c.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        assert!(
            c.bytes().len() * 2 < xor,
            "{} vs XOR {xor}",
            c.bytes().len()
        );
        // byte 3: 1 with the delta flag, in the XOR family
        assert_eq!((c.bytes()[2] & 0x7f, c.bytes()[3]), (0, 0x81));
        // crossing a binade (2^31 here) escapes once and goes on exactly
        let t: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 1000, 2_147_483_600.0 + i as f64 + 0.123_456_789))
            .collect();
        roundtrip(&t);
    }

    /// `s` appended to a new open chunk and closed in its best encoding,
    /// checked to read back bit for bit.
    fn closed(s: &[(i64, f64)]) -> (Chunk, Encoding) {
        let mut a = ChunkAppender::new();
        for &(t, v) in s {
            assert!(a.append(t, v));
        }
        let (c, next) = a.finish_best();
        assert_eq!(
            bits(c.iter()),
            bits(s.iter().map(|&(t, v)| Sample::new(t, v)))
        );
        (c, next)
    }

    /// Bits laid out by hand, most significant first, for format tests.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn put(&mut self, v: u64, n: u32) {
            for i in (0..n).rev() {
                if self.used.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((v >> i) & 1) as u8;
                if let Some(last) = self.bytes.last_mut() {
                    *last |= bit << (7 - self.used % 8);
                }
                self.used += 1;
            }
        }
    }

    #[test]
    fn base_time_encoding_halves_jitter_cost() {
        let mut rng = Rng::new(9);
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000 + rng.below(11) as i64 - 5, 1.0))
            .collect();
        let base = encoded_len(
            Encoding {
                time: TimeEncoding::Base,
                value: ValueEncoding::Xor,
            },
            &s,
        );
        let dod = encoded_len(
            Encoding {
                time: TimeEncoding::DeltaOfDelta,
                value: ValueEncoding::Xor,
            },
            &s,
        );
        assert!(base < dod, "base {base} dod {dod}");
        // a change of interval resets the base
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                (
                    if i < 60 {
                        i * 15_000
                    } else {
                        900_000 + (i - 60) * 30_000
                    },
                    1.0,
                )
            })
            .collect();
        assert!(
            encoded_len(
                Encoding {
                    time: TimeEncoding::Base,
                    value: ValueEncoding::Xor
                },
                &s
            ) < 3 + 8 + 3 + 4 + 4 + 35
        );
    }

    #[test]
    fn decimal_gauges_beat_xor_and_finish_best_picks_the_winner() {
        let mut rng = Rng::new(5);
        // a temperature with one decimal, wandering
        let mut v = 45.5f64;
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v = ((v * 10.0).round() + rng.below(7) as f64 - 3.0) / 10.0;
                (i * 15_000, v)
            })
            .collect();
        let xor = encoded_len(
            Encoding {
                time: TimeEncoding::Base,
                value: ValueEncoding::Xor,
            },
            &s,
        );
        let int = encoded_len(Encoding::default(), &s);
        assert!(int * 2 < xor, "int {int} xor {xor}");
        let mut a = ChunkAppender::with_encoding(Encoding {
            time: TimeEncoding::DeltaOfDelta,
            value: ValueEncoding::Xor,
        });
        for &(t, v) in &s {
            a.append(t, v);
        }
        let (c, enc) = a.finish_best();
        assert!(
            matches!(enc.value, ValueEncoding::IntDelta { e: 1, .. }),
            "{enc:?}"
        );
        // the chunk itself packs its deltas (-3..=3) in 3 bits each; the
        // series goes on with the best prefix encoding
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(ValueEncoding::IntPacked {
                    e: 1,
                    w: 3,
                    delta: true,
                    ..
                })
            ),
            "{:?}",
            c.encoding()
        );
        assert!(c.bytes().len() <= int);
    }

    #[test]
    fn bucket_width_follows_the_data() {
        let mut rng = Rng::new(21);
        for (range, lo, hi) in [(4u64, 2u8, 5u8), (3000, 10, 14), (200_000, 14, 20)] {
            let mut v = 1000.0;
            let mut a = ChunkAppender::new();
            for i in 0..120 {
                v += rng.below(range) as f64;
                a.append(i * 15_000, v);
            }
            let default_len = a.bytes().len();
            let (c, enc) = a.finish_best();
            let (ValueEncoding::IntDelta { k, .. } | ValueEncoding::IntDod { k, .. }) = enc.value
            else {
                panic!("{enc:?}");
            };
            assert!((lo..=hi).contains(&k), "range {range}: k {k}");
            assert!(c.bytes().len() <= default_len);
        }
        // widths outside the allowed range are malformed
        let mut a = ChunkAppender::new();
        a.append(1, 1.0);
        a.append(2, 5.0);
        let mut b = a.bytes().to_vec();
        b[3] = 0;
        assert!(Chunk::from_bytes(b.clone().into()).is_none());
        b[3] = MAX_INT_BITS + 1;
        assert!(Chunk::from_bytes(b.into()).is_none());
    }

    #[test]
    fn page_sized_gauges_stay_xor_while_open_and_close_in_whole_pages() {
        let mut rng = Rng::new(11);
        let mut v: i64 = 8_123_456_512;
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v += (rng.below(64) as i64 - 32) * 4096;
                (i * 15_000, v as f64)
            })
            .collect();
        let xor = encoded_len(
            Encoding {
                time: TimeEncoding::Regular,
                value: ValueEncoding::Xor,
            },
            &s,
        );
        let (c, enc) = closed(&s);
        // among the encodings an open chunk can use, XOR wins...
        assert_eq!(enc.value, ValueEncoding::Xor);
        // ...but the closed chunk counts deltas in pages: 6 bits each
        assert!(
            matches!(
                c.encoding().map(|e| e.value),
                Some(ValueEncoding::IntRanged { delta: true, .. })
            ),
            "{:?}",
            c.encoding()
        );
        assert!(
            c.bytes().len() * 8 < 120 * 7 + 200,
            "{} vs XOR {xor}",
            c.bytes().len()
        );
    }

    #[test]
    fn raw_escapes_keep_integer_mode_going() {
        // a counter with a staleness marker in the middle
        let mut s: Vec<(i64, f64)> = (0..60).map(|i| (i * 1000, i as f64)).collect();
        s.push((60_000, f64::from_bits(STALE_NAN)));
        s.extend((61..120).map(|i| (i * 1000, i as f64)));
        let mut a = ChunkAppender::new();
        for &(t, v) in &s {
            a.append(t, v);
        }
        assert!(matches!(
            a.encoding().value,
            ValueEncoding::IntDelta { e: 0, .. }
        ));
        assert!(a.bytes().len() < 60, "{}", a.bytes().len());
        roundtrip(&s);
    }

    #[test]
    fn full_chunk_refuses_appends() {
        let mut a = ChunkAppender::new();
        for i in 0..MAX_SAMPLES {
            assert!(a.append(i as i64, 1.0));
        }
        assert!(!a.append(1 << 40, 1.0));
        assert_eq!(a.iter().count(), MAX_SAMPLES);
    }

    /// What [`Chunk::decode_checked`] must return, from the plain
    /// [`ChunkIter::next`] decoder: every sample, or `None`.
    fn reference_checked(data: &[u8], mint: i64, maxt: i64) -> Option<Vec<(i64, u64)>> {
        let mut it = ChunkIter::new(data);
        let n = it.remaining;
        let all: Vec<Sample> = it.by_ref().collect();
        (n > 0 && all.len() == n)
            .then(|| bits(all.into_iter().filter(|s| mint <= s.t && s.t <= maxt)))
    }

    /// What [`ChunkIter::samples_into`] must append, from
    /// [`ChunkIter::next`].
    fn reference_into(it: ChunkIter<'_>, mint: i64, maxt: i64) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        for s in it {
            if s.t > maxt {
                break;
            }
            if s.t >= mint {
                out.push((s.t, s.v.to_bits()));
            }
        }
        out
    }

    /// Checks both fast decoders against the reference on `data`, over a
    /// few ranges and, for `samples_into`, from a few starting points.
    fn decodes_like_reference(data: &[u8], rng: &mut Rng) {
        let it = ChunkIter::new(data);
        let ts: Vec<i64> = it.clone().map(|s| s.t).collect();
        let pick = |rng: &mut Rng| match ts.as_slice() {
            [] => rng.next_u64() as i64,
            ts => ts[rng.below(ts.len() as u64) as usize] + rng.below(3) as i64 - 1,
        };
        let mut ranges = vec![(i64::MIN, i64::MAX)];
        for _ in 0..2 {
            let (a, b) = (pick(rng), pick(rng));
            ranges.push((a.min(b), a.max(b)));
        }
        let sentinel = Sample::new(-7, f64::from_bits(0x7ff0_0000_0000_0abc));
        let whole = reference_checked(data, i64::MIN, i64::MAX);
        let parsed = Chunk::from_bytes(data.into());
        assert_eq!(parsed.is_some(), whole.is_some(), "{data:02x?}");
        if let (Some(c), Some(w)) = (parsed, whole) {
            let ts = w.iter().map(|s| s.0);
            assert_eq!(
                (c.min_t(), c.max_t()),
                (ts.clone().min().unwrap(), ts.max().unwrap())
            );
        }
        for (mint, maxt) in ranges {
            let mut out = vec![sentinel];
            let ok = Chunk::decode_checked(data, mint, maxt, &mut out);
            match reference_checked(data, mint, maxt) {
                Some(want) => {
                    assert!(ok, "{data:02x?}");
                    assert_eq!(bits(out.iter().copied().skip(1)), want, "{data:02x?}");
                }
                None => {
                    assert!(!ok, "{data:02x?}");
                    assert_eq!(bits(out.into_iter()), bits([sentinel].into_iter()));
                }
            }
            for skip in [0, 1, 2, 3, rng.below(20) as usize] {
                let mut it = ChunkIter::new(data);
                for _ in 0..skip {
                    it.next();
                }
                let want = reference_into(it.clone(), mint, maxt);
                let mut got = vec![sentinel];
                it.samples_into(mint, maxt, &mut got);
                assert_eq!(got.first().map(|s| s.t), Some(sentinel.t));
                assert_eq!(bits(got.into_iter().skip(1)), want, "{skip} {data:02x?}");
            }
        }
    }

    /// Random samples of many shapes: regular, jittered and wild
    /// timestamps; counters, decimals, pages, held values, floats, NaNs
    /// and the staleness marker, huge integers.
    fn random_series(rng: &mut Rng) -> Vec<(i64, f64)> {
        let n = 1 + rng.below(300) as usize;
        let mut t = match rng.below(4) {
            0 => rng.next_u64() as i64,
            _ => 1_700_000_000_000 + rng.below(1 << 30) as i64,
        };
        let time_kind = rng.below(5);
        let value_kind = rng.below(10);
        let specials = rng.below(4) == 0;
        let mut v = 0.0f64;
        let mut m = rng.below(1 << 20) as i64;
        let mut s = Vec::with_capacity(n);
        for _ in 0..n {
            t = t.wrapping_add(match time_kind {
                0 => 15_000,
                1 => 15_000 + rng.below(11) as i64 - 5,
                2 if rng.below(50) == 0 => {
                    let shift = rng.below(64);
                    rng.next_u64() as i64 >> shift
                }
                2 => 15_000 + rng.below(3) as i64 - 1,
                3 => {
                    let bits = rng.below(40);
                    1000 + rng.below(1 << bits) as i64
                }
                _ => {
                    let shift = rng.below(64);
                    rng.next_u64() as i64 >> shift
                }
            });
            v = match value_kind {
                0 => v + rng.below(20) as f64,
                1 => v + 15.0,
                2 => {
                    m += 90 + rng.below(30) as i64;
                    m as f64 / 100.0
                }
                3 => {
                    m += rng.below(9) as i64 - 4;
                    (m * 4096) as f64
                }
                4 if rng.below(4) == 0 => {
                    let shift = rng.below(64);
                    (rng.next_u64() as i64 >> shift) as f64
                }
                4 => v,
                5 => f64::from_bits(rng.next_u64()),
                6 => v + 0.001 * rng.below(1000) as f64,
                7 if rng.below(3) == 0 => v,
                7 => (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
                8 => {
                    let shift = rng.below(64);
                    -((rng.next_u64() >> shift) as f64)
                }
                _ => (rng.below(1_000_000) as f64) * 1e6,
            };
            if specials && rng.below(10) == 0 {
                v = [
                    f64::from_bits(STALE_NAN),
                    f64::NAN,
                    -0.0,
                    f64::INFINITY,
                    1e300,
                ][rng.below(5) as usize];
            }
            s.push((t, v));
        }
        s
    }

    #[test]
    fn fast_decoders_match_the_reference_bit_for_bit() {
        let mut rng = Rng::new(2024);
        for round in 0..60 {
            let samples = random_series(&mut rng);
            let regular = samples.len() >= 2 && {
                let d = samples[1].0.wrapping_sub(samples[0].0);
                d != 0 && samples.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) == d)
            };
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            for enc in all_encodings() {
                if enc.time == TimeEncoding::Regular && !regular {
                    continue;
                }
                let mut a = ChunkAppender::exactly(enc, 0);
                // random packings and ranges, so escapes come up
                a.st.base = match rng.below(3) {
                    0 => 0,
                    1 => rng.below(100) as i64 - 50,
                    _ => rng.next_u64() as i64,
                };
                a.st.m_delta = match rng.below(3) {
                    0 => 2 + rng.below(5) as i64,
                    1 => 2 + rng.below(1 << 20) as i64,
                    _ => (2 + rng.below(MAX_RANGED_SYMBOLS - 2)) as i64,
                };
                a.st.unit = [1, 1, 7, 4096, u32::MAX][rng.below(5) as usize];
                for &(t, v) in &samples {
                    // a constant chunk holds the samples up to the first
                    // other value
                    if !a.append(t, v) {
                        assert_eq!(enc.value, ValueEncoding::Const);
                        break;
                    }
                }
                chunks.push(a.bytes().to_vec());
                if round % 10 == 0 {
                    chunks.push(a.finish_best().0.bytes().to_vec());
                }
            }
            let mut a = ChunkAppender::new();
            for &(t, v) in &samples {
                assert!(a.append(t, v));
            }
            chunks.push(a.finish_best().0.bytes().to_vec());
            for c in chunks {
                decodes_like_reference(&c, &mut rng);
                // truncated anywhere, or ending on a partial sample
                for _ in 0..3 {
                    let cut = rng.below(c.len() as u64 + 1) as usize;
                    decodes_like_reference(&c[..cut], &mut rng);
                }
                let mut long = c.clone();
                long.extend([0xff; 9]);
                decodes_like_reference(&long, &mut rng);
                // corrupted bits and bytes, headers included
                for _ in 0..4 {
                    let mut bad = c.clone();
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(bad.len() as u64) as usize;
                        if rng.below(2) == 0 {
                            bad[i] ^= 1 << rng.below(8);
                        } else {
                            bad[i] = rng.next_u64() as u8;
                        }
                    }
                    decodes_like_reference(&bad, &mut rng);
                }
            }
        }
        // short garbage of every kind
        for _ in 0..3000 {
            let len = rng.below(48) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if len > 2 {
                b[0] &= 0x80;
                b[1] %= 8;
            }
            decodes_like_reference(&b, &mut rng);
        }
    }
}
