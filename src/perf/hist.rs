//! Bounded-memory distributions for long perf runs.
//!
//! A level can see millions of requests and, through ITL, hundreds of
//! millions of samples. [`Accumulator`] keeps a metric's samples exactly
//! while there are at most [`EXACT_LIMIT`] of them, so short runs report the
//! same numbers as numpy (see [`super::stats`]). Past that it folds them into
//! a [`LogHistogram`] and keeps only the count, an exact running mean and
//! variance (Welford), the exact minimum and maximum, and the histogram; the
//! percentiles then come from the histogram, within [`RELATIVE_ERROR`] of
//! the exact ones, and the summary says so (`binned`).
//!
//! Why not the `hdrhistogram` crate: it records integers, while our samples
//! are fractional milliseconds spanning nine decades (a split ITL gap of a
//! few nanoseconds to a timeout of hours), and its serialised form is an
//! opaque blob; the CDFs of the reports need plain bucket points. Bucketing
//! on the bits of an `f64` gives the same log-linear layout in a few lines.

use super::stats::Distribution;

/// Samples kept exactly per metric before switching to the histogram
/// (2 MiB of `f64`s: ITL stays exact for about 2,000 responses of 128
/// tokens).
pub const EXACT_LIMIT: usize = 1 << 18;

/// Mantissa bits that select a sub-bucket within a power of two.
const SUB_BITS: u32 = 10;
/// Sub-buckets per power of two.
const SUB: usize = 1 << SUB_BITS;
/// Powers of two an `f64` exponent can take (biased, normal numbers).
const BINADES: usize = 2048;

/// Largest relative error of a percentile read from the histogram: each
/// order statistic is read as its bucket's midpoint, so it is off by at
/// most half a bucket, and a bucket spans 2⁻¹⁰ of its lower bound.
pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

/// A log-linear histogram of non-negative samples: 1024 equal buckets per
/// power of two, allocated per power of two on first use, so memory follows
/// the range of the data (8 KiB per power of two touched), never its count.
/// Zero (and anything below the smallest normal `f64`) has its own bucket.
#[derive(Debug, Clone, Default)]
pub struct LogHistogram {
    /// Buckets by binade (biased exponent); `None` until a sample lands in it.
    blocks: Vec<Option<Box<[u64; SUB]>>>,
    zeros: u64,
    count: u64,
}

impl LogHistogram {
    /// Count one sample. Negative samples count as zero; non-finite ones are
    /// ignored (callers drop them first).
    pub fn record(&mut self, x: f64) {
        self.record_n(x, 1);
    }

    /// Count `c` samples of value `x`.
    pub fn record_n(&mut self, x: f64, c: u64) {
        if !x.is_finite() || c == 0 {
            return;
        }
        self.count += c;
        if x < f64::MIN_POSITIVE {
            self.zeros += c;
            return;
        }
        let bits = x.to_bits();
        let exp = (bits >> 52) as usize & (BINADES - 1);
        let sub = (bits >> (52 - SUB_BITS)) as usize & (SUB - 1);
        if self.blocks.is_empty() {
            self.blocks.resize_with(BINADES, || None);
        }
        let block = self.blocks[exp].get_or_insert_with(|| Box::new([0; SUB]));
        block[sub] += c;
    }

    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Buckets in value order: `(lower bound, upper bound, count)`, the zero
    /// bucket as `(0, 0, n)`; empty buckets left out.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, f64, u64)> + '_ {
        let zeros = (self.zeros > 0).then_some((0.0, 0.0, self.zeros));
        let rest = self.blocks.iter().enumerate().flat_map(|(exp, b)| {
            b.iter().flat_map(move |block| {
                block
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(move |(sub, &c)| {
                        let key = ((exp as u64) << SUB_BITS) | sub as u64;
                        let lo = f64::from_bits(key << (52 - SUB_BITS));
                        let hi = f64::from_bits((key + 1) << (52 - SUB_BITS));
                        (lo, hi, c)
                    })
            })
        });
        zeros.into_iter().chain(rest)
    }

    /// The `k`-th smallest sample (0-based), estimated as the midpoint of
    /// its bucket (within half a bucket of the truth). When every sample is
    /// an integer and the bucket is narrower than 1, the bucket holds one
    /// integer, its lower bound: that is exact.
    fn order_statistic(&self, k: u64, integral: bool) -> f64 {
        let mut seen = 0u64;
        for (lo, hi, c) in self.buckets() {
            if k < seen + c {
                return if integral && hi - lo <= 1.0 {
                    lo
                } else {
                    lo + (hi - lo) / 2.0
                };
            }
            seen += c;
        }
        0.0
    }
}

/// One metric's samples: exact while few, then binned (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// Samples while there are at most [`EXACT_LIMIT`]; `None` once binned.
    exact: Option<Vec<f64>>,
    hist: LogHistogram,
    binned: bool,
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    /// Some sample was not an integer.
    fractional: bool,
}

impl Accumulator {
    /// Add one sample; non-finite samples are dropped (one NaN would poison
    /// every statistic, and they can only come from a bug upstream).
    pub fn push(&mut self, x: f64) {
        self.push_n(x, 1);
    }

    /// Add `c` copies of `x` at once (O(1) in `c` once binned: a server's
    /// token count decides `c`, so it must not decide the time either).
    pub fn push_n(&mut self, x: f64, c: u64) {
        if !x.is_finite() || c == 0 {
            return;
        }
        // Welford's update merged over c equal samples (Chan et al.):
        // exact enough for any count, no cancellation.
        let n0 = self.n as f64;
        self.n += c;
        let n = self.n as f64;
        let d = x - self.mean;
        self.mean += d * (c as f64 / n);
        self.m2 += d * d * n0 * c as f64 / n;
        if self.n == c {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.fractional |= x.fract() != 0.0;
        if self.binned {
            self.hist.record_n(x, c);
            return;
        }
        let exact = self.exact.get_or_insert_with(Vec::new);
        if (exact.len() as u64).saturating_add(c) <= EXACT_LIMIT as u64 {
            exact.extend(std::iter::repeat_n(x, c as usize));
        } else {
            for &v in exact.iter() {
                self.hist.record(v);
            }
            self.hist.record_n(x, c);
            self.exact = None;
            self.binned = true;
        }
    }

    /// Samples added.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no sample was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether the percentiles come from the histogram.
    pub fn is_binned(&self) -> bool {
        self.binned
    }

    /// The summary: exact (numpy's) while the samples were kept, else from
    /// the histogram with the exact count, mean, std, min and max.
    pub fn summary(&mut self) -> Distribution {
        if let Some(exact) = self.exact.as_mut() {
            return Distribution::from(exact);
        }
        if self.n == 0 {
            return Distribution::default();
        }
        let p = |p: f64| self.percentile(p);
        Distribution {
            n: self.n,
            mean: self.mean,
            std: (self.m2 / self.n as f64).max(0.0).sqrt(),
            min: self.min,
            max: self.max,
            p50: p(50.0),
            p90: p(90.0),
            p95: p(95.0),
            p99: p(99.0),
            p999: p(99.9),
            binned: true,
        }
    }

    /// The `p`-th percentile by numpy's linear rule over the estimated
    /// order statistics, clamped to the exact minimum and maximum. Only for
    /// binned samples ([`Accumulator::summary`] answers exact ones).
    fn percentile(&self, p: f64) -> f64 {
        let n = self.hist.count();
        if n == 0 {
            return 0.0;
        }
        let rank = p.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
        let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
        let at = |k: u64| {
            self.hist
                .order_statistic(k, !self.fractional)
                .clamp(self.min, self.max)
        };
        let a = at(lo);
        if hi == lo {
            return a;
        }
        a + (at(hi) - a) * (rank - lo as f64)
    }

    /// At most `max_points` points `(value, fraction of samples ≤ value)` of
    /// the empirical CDF, ending at `(max, 1)`. Exact samples give the same
    /// points as [`crate::report::svg::cdf_points`]; binned ones give bucket
    /// upper bounds (clamped to the maximum), merged down to `max_points`.
    pub fn cdf(&self, max_points: usize) -> Vec<(f64, f64)> {
        if let Some(exact) = &self.exact {
            return crate::report::svg::cdf_points(exact, max_points);
        }
        let n = self.hist.count();
        if n == 0 {
            return vec![];
        }
        let step = (n / max_points.max(1) as u64).max(1);
        let mut out = Vec::new();
        let (mut seen, mut next) = (0u64, step);
        for (_, hi, c) in self.hist.buckets() {
            seen += c;
            if seen >= next || seen == n {
                let x = hi.min(self.max).max(self.min);
                out.push((x, seen as f64 / n as f64));
                next = (seen / step + 1) * step;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::stats::percentile;

    /// numpy's linear percentile of `v`.
    fn exact(v: &[f64], p: f64) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        percentile(&s, p)
    }

    fn spread(n: usize) -> Vec<f64> {
        // Deterministic, skewed, over several decades (a latency-like shape).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                0.05 + 3.0 * (-u.max(1e-12).ln()).powf(2.0)
            })
            .collect()
    }

    #[test]
    fn few_samples_are_summarised_exactly() {
        let v = spread(1000);
        let mut a = Accumulator::default();
        v.iter().for_each(|&x| a.push(x));
        let d = a.summary();
        assert!(!d.binned);
        assert_eq!(d, Distribution::from(&mut v.clone()));
    }

    #[test]
    fn many_samples_stay_within_the_relative_error() {
        let v = spread(EXACT_LIMIT + EXACT_LIMIT / 2);
        let mut a = Accumulator::default();
        v.iter().for_each(|&x| a.push(x));
        let d = a.summary();
        assert!(d.binned && a.is_binned());
        assert_eq!(d.n, v.len() as u64);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((d.mean - mean).abs() < 1e-9 * mean, "{} vs {mean}", d.mean);
        let sorted_max = v.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(d.max, sorted_max);
        for (p, got) in [(50.0, d.p50), (90.0, d.p90), (99.0, d.p99), (99.9, d.p999)] {
            let want = exact(&v, p);
            assert!(
                (got - want).abs() <= RELATIVE_ERROR * want,
                "p{p}: {got} vs {want}"
            );
        }
    }

    /// Review finding: samples spread over a bucket were read anywhere in
    /// it (up to a whole bucket off); the midpoint is within half.
    #[test]
    fn binned_percentiles_stay_within_documented_error() {
        let mut v = vec![1.0; EXACT_LIMIT];
        v.extend(std::iter::repeat_n(1.0009, EXACT_LIMIT / 8));
        let mut a = Accumulator::default();
        v.iter().for_each(|&x| a.push(x));
        let d = a.summary();
        assert!(d.binned);
        for (p, got) in [
            (50.0, d.p50),
            (90.0, d.p90),
            (95.0, d.p95),
            (99.0, d.p99),
            (99.9, d.p999),
        ] {
            let want = exact(&v, p);
            assert!(
                (got - want).abs() <= RELATIVE_ERROR * want,
                "p{p}: {got} vs {want}"
            );
        }
    }

    /// Review finding: a server's token count decides how many ITL samples
    /// a response adds; adding them must not take time in proportion.
    #[test]
    fn absurd_usage_count_does_not_stall_statistics() {
        let mut a = Accumulator::default();
        a.push(3.0);
        a.push_n(0.0, 1_000_000_000_000_000);
        a.push_n(2.0, 10);
        let d = a.summary();
        assert_eq!(d.n, 1_000_000_000_000_011);
        assert!(d.binned);
        assert_eq!((d.min, d.max, d.p50), (0.0, 3.0, 0.0));
        assert!(d.mean > 0.0 && d.mean < 1e-12, "{}", d.mean);
    }

    /// Integer metrics (output tokens, tokens per chunk) keep integer
    /// percentiles when binned, where a bucket holds one integer.
    #[test]
    fn binned_integers_stay_integers() {
        let mut a = Accumulator::default();
        for i in 0..(EXACT_LIMIT as u64 * 2) {
            a.push((100 + i % 57) as f64);
        }
        let d = a.summary();
        assert!(d.binned);
        for p in [d.p50, d.p90, d.p95, d.p99, d.p999] {
            assert_eq!(p.fract(), 0.0, "{p}");
        }
        let mut v: Vec<f64> = (0..(EXACT_LIMIT as u64 * 2))
            .map(|i| (100 + i % 57) as f64)
            .collect();
        assert_eq!(d.p50, Distribution::from(&mut v).p50);
    }

    /// The merged Welford update gives the two-pass mean and std.
    #[test]
    fn repeated_samples_give_the_plain_moments() {
        let mut a = Accumulator::default();
        let mut b = Accumulator::default();
        for (x, c) in [(1.5, 3u64), (0.25, 7), (9.0, 1), (2.0, 5)] {
            a.push_n(x, c);
            for _ in 0..c {
                b.push(x);
            }
        }
        let (da, db) = (a.summary(), b.summary());
        assert_eq!(da, db);
        assert!((a.mean - da.mean).abs() < 1e-12);
        assert!(((a.m2 / a.n as f64).sqrt() - da.std).abs() < 1e-12);
    }

    #[test]
    fn histogram_memory_follows_the_range_not_the_count() {
        let mut h = LogHistogram::default();
        for i in 0..1_000_000u64 {
            h.record(1.0 + (i % 1000) as f64 / 1000.0); // one binade
        }
        assert_eq!(h.blocks.iter().filter(|b| b.is_some()).count(), 1);
        assert_eq!(h.count(), 1_000_000);
    }

    #[test]
    fn zeros_and_negatives_fall_in_the_zero_bucket() {
        let mut a = Accumulator::default();
        for i in 0..(EXACT_LIMIT + 10) {
            a.push(if i % 2 == 0 { 0.0 } else { 2.0 });
        }
        let d = a.summary();
        assert_eq!(d.min, 0.0);
        assert_eq!(d.p50, 1.0); // between the two halves, as numpy
        assert_eq!(d.p90, 2.0);
        let cdf = a.cdf(10);
        assert_eq!(cdf.last(), Some(&(2.0, 1.0)));
        assert!(cdf.iter().all(|&(x, _)| x == 0.0 || x == 2.0));
    }

    #[test]
    fn binned_cdf_is_monotone_and_bounded() {
        let v = spread(EXACT_LIMIT * 2);
        let mut a = Accumulator::default();
        v.iter().for_each(|&x| a.push(x));
        let cdf = a.cdf(200);
        assert!(cdf.len() <= 201 && cdf.len() > 100, "{}", cdf.len());
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(cdf.last().map(|p| p.1), Some(1.0));
        // Each point's fraction is the exact share of samples at or below
        // its value (a bucket's upper bound has every sample of the buckets
        // before it below it).
        for &(x, f) in &cdf {
            let share = v.iter().filter(|&&s| s <= x).count() as f64 / v.len() as f64;
            assert!((share - f).abs() < 1e-4, "at {x}: {share} vs {f}");
        }
    }
}
