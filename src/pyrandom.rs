//! A bit-exact port of CPython's `random.Random` (the Mersenne Twister core of
//! `Modules/_randommodule.c` plus the pure-Python helpers of `Lib/random.py`).
//!
//! Why it exists: lm-evaluation-harness picks few-shot examples with
//! `rnd = random.Random(1234)` (seeded once per task) followed by
//! `rnd.sample(train_docs, k)` for every test document, in document order.
//! To reproduce its prompts byte for byte we must draw *exactly* the same
//! indices, which means replicating not only MT19937 but also CPython's
//! seeding (`init_by_array` over the seed's 32-bit words), `getrandbits`,
//! the rejection sampler `_randbelow`, and `sample`'s choice between its
//! "pool" and "set" algorithms (the two consume the stream differently).
//!
//! Only what lm-eval needs (and a few cheap extras) is here: integer seeds,
//! `random()`, `getrandbits(k <= 64)`, `randbelow`, `sample` over `range(n)`,
//! `shuffle` and `choice`. String/bytes seeding and the distribution helpers
//! (`gauss`, `choices`, ...) are not ported.
//!
//! Compatibility: the algorithms were written from the published MT19937
//! description and the documented behaviour of `Lib/random.py`; the test
//! vectors below were produced by real CPython. `sample`, `shuffle` and
//! `_randbelow` draw identically on CPython 3.6 through 3.13 (checked with
//! every pyenv interpreter from 3.6.15 to 3.13.0: all use
//! `k = n.bit_length()` then reject `r >= n`). Python 2.7 differs (its
//! `sample` used `int(random() * n)`), so it is out of scope.

use std::collections::HashSet;
use std::fmt;

/// Number of 32-bit words in the MT19937 state.
const N: usize = 624;
/// MT19937 "middle word" offset used by the twist.
const M: usize = 397;
/// Twist matrix constant (the last row of the MT19937 companion matrix).
const MATRIX_A: u32 = 0x9908_b0df;
/// Most significant bit of a state word.
const UPPER_MASK: u32 = 0x8000_0000;
/// The 31 low bits of a state word.
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`, restricted to integer seeds.
///
/// Two instances built from the same seed produce the same stream as two
/// `random.Random(seed)` objects in CPython, call for call.
#[derive(Clone)]
pub struct PyRandom {
    /// The 624-word Mersenne Twister state.
    mt: [u32; N],
    /// Next word of `mt` to temper and hand out; `N` means "twist first".
    index: usize,
}

impl fmt::Debug for PyRandom {
    // The 624-word state is noise in logs; the position is what helps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Returned by [`PyRandom::try_sample`] when `k > n`; the counterpart of
/// Python's `ValueError("Sample larger than population or is negative")`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample larger than population: k = {k} > n = {n}")]
pub struct SampleError {
    /// Requested sample size.
    pub k: usize,
    /// Population size.
    pub n: usize,
}

impl PyRandom {
    /// Equivalent of `random.Random(seed)` for a non-negative integer seed.
    ///
    /// CPython seeds with the absolute value of the integer, split into 32-bit
    /// words least significant first (zero becomes the single word `[0]`), so
    /// `Random(-5)` equals `Random(5)`; callers with a negative seed can pass
    /// `seed.unsigned_abs()`.
    pub fn new(seed: u64) -> Self {
        // Truncation is the point: low word, then high word.
        Self::from_bigint_words(&[seed as u32, (seed >> 32) as u32])
    }

    /// Equivalent of `random.Random(seed)` for an arbitrarily large seed given
    /// as the 32-bit words of its absolute value, least significant first.
    ///
    /// High zero words are ignored (CPython sizes the key by the number's bit
    /// length), and an empty or all-zero slice means seed 0.
    pub fn from_bigint_words(words: &[u32]) -> Self {
        let used = words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        let key: &[u32] = if used == 0 { &[0] } else { &words[..used] };
        let mut rng = PyRandom {
            mt: [0; N],
            index: N,
        };
        rng.init_by_array(key);
        rng
    }

    /// MT19937's single-word initialiser (Knuth's multiplicative LCG fill).
    fn init_genrand(&mut self, seed: u32) {
        self.mt[0] = seed;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    /// MT19937's array initialiser, which CPython uses for every int seed
    /// (even ones that fit in a single word).
    fn init_by_array(&mut self, key: &[u32]) {
        debug_assert!(!key.is_empty());
        self.init_genrand(19_650_218);
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            // `j as u32` wraps exactly like the C cast for absurdly long keys.
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        // Guarantees a non-zero state whatever the key was.
        self.mt[0] = UPPER_MASK;
        self.index = N;
    }

    /// Regenerates all N words. Walking `kk` upwards with wrap-around indices
    /// is the same recurrence as the reference's three split loops: entries
    /// at `kk + M` and `kk + 1` past the end are read after being refreshed.
    fn twist(&mut self) {
        for kk in 0..N {
            let y = (self.mt[kk] & UPPER_MASK) | (self.mt[(kk + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.mt[kk] = self.mt[(kk + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// Next raw 32-bit output of the generator (CPython's `genrand_uint32`,
    /// i.e. what `getrandbits(32)` returns).
    pub fn genrand_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        // Tempering.
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random.random()`: a float in `[0, 1)` with 53 random bits, built from
    /// two words (27 high bits of the first, 26 of the second).
    pub fn random(&mut self) -> f64 {
        let a = self.genrand_u32() >> 5;
        let b = self.genrand_u32() >> 6;
        // 2^26 and 2^53; both steps are exact in f64.
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.getrandbits(k)` for `k <= 64`.
    ///
    /// CPython consumes `ceil(k / 32)` words, filling the result least
    /// significant word first; only the last (most significant) word is
    /// truncated, by keeping its *top* bits. `k == 0` returns 0 without
    /// consuming anything (CPython 3.9+).
    ///
    /// # Panics
    /// If `k > 64`; nothing in this crate needs wider draws.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(
            k <= 64,
            "getrandbits: k = {k} exceeds the supported 64 bits"
        );
        if k <= 32 {
            if k == 0 {
                return 0;
            }
            return u64::from(self.genrand_u32() >> (32 - k));
        }
        let low = u64::from(self.genrand_u32());
        let high = u64::from(self.genrand_u32() >> (64 - k));
        (high << 32) | low
    }

    /// CPython's `Random._randbelow` (`_randbelow_with_getrandbits`): a
    /// uniform integer in `[0, n)` by drawing `n.bit_length()` bits and
    /// rejecting values `>= n`.
    ///
    /// Note the bit count is that of `n`, not `n - 1`, so a power of two
    /// wastes about half its draws; that is what CPython does, and matching
    /// the number of words consumed is what keeps later draws in sync.
    ///
    /// # Panics
    /// If `n == 0` (CPython 3.10+ would loop forever; the range is empty).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow: empty range [0, 0)");
        let k = u64::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// The indices `random.sample(range(n), k)` returns — equivalently, the
    /// positions `random.sample(seq, k)` picks from any `seq` of length `n`,
    /// in selection order.
    ///
    /// # Panics
    /// If `k > n` (Python raises `ValueError`); see [`PyRandom::try_sample`].
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        match self.try_sample(n, k) {
            Ok(v) => v,
            Err(e) => panic!("PyRandom::sample: {e}"),
        }
    }

    /// Like [`PyRandom::sample`] but returns an error instead of panicking
    /// when `k > n`. On error no randomness is consumed, as in CPython.
    pub fn try_sample(&mut self, n: usize, k: usize) -> Result<Vec<usize>, SampleError> {
        if k > n {
            return Err(SampleError { k, n });
        }
        let mut result = Vec::with_capacity(k);
        if sample_uses_pool(n, k) {
            // Partial Fisher–Yates without the swap: the chosen slot is
            // refilled from the shrinking tail, so pool[..n - i] always holds
            // the not-yet-selected items.
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            // Rejection: redraw over the full range until unseen. Each redraw
            // consumes words, so this branch must be replicated exactly too.
            let mut selected = HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while !selected.insert(j) {
                    j = self.randbelow(n as u64) as usize;
                }
                result.push(j);
            }
        }
        Ok(result)
    }

    /// `random.shuffle(x)`: in-place Fisher–Yates from the back, drawing
    /// `randbelow(i + 1)` for `i = len - 1, ..., 1`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow((i + 1) as u64) as usize;
            x.swap(i, j);
        }
    }

    /// `random.choice(seq)`: one element, or `None` where Python raises
    /// `IndexError` (empty sequence; nothing is consumed then).
    pub fn choice<'a, T>(&mut self, seq: &'a [T]) -> Option<&'a T> {
        if seq.is_empty() {
            return None;
        }
        let i = self.randbelow(seq.len() as u64) as usize;
        seq.get(i)
    }
}

/// `sample`'s branch choice: an `n`-long list ("pool") when it is smaller than
/// a `k`-element set, else the set. Mirrors
/// `setsize = 21; if k > 5: setsize += 4 ** ceil(log(k * 3, 4)); n <= setsize`
/// including the float arithmetic, since `math.log(x, base)` is
/// `log(x) / log(base)` in C doubles and the ceiling depends on its rounding.
fn sample_uses_pool(n: usize, k: usize) -> bool {
    let mut setsize: u128 = 21;
    if k > 5 {
        // Python's int -> float conversion rounds to nearest, like `as f64`.
        let x = (k as u128 * 3) as f64;
        let exponent = (x.ln() / 4f64.ln()).ceil();
        // k <= usize::MAX bounds the exponent by 33, so this never saturates
        // in practice; saturating keeps the comparison correct regardless.
        let table = 4u128
            .checked_pow(exponent as u32)
            .unwrap_or(u128::MAX - setsize);
        setsize += table;
    }
    n as u128 <= setsize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    // Every expected value below was printed by CPython 3.11.7 (`python3`);
    // the lm-eval-critical ones (sample/shuffle/big seeds) were also checked
    // identical on 3.6.15, 3.7.16, 3.8.18, 3.9.18, 3.10.13, 3.12.1, 3.13.0.

    #[test]
    fn random_first_three_exact_bits() {
        // import random,struct; r=random.Random(1234)
        // [hex(struct.unpack('<Q',struct.pack('<d',r.random()))[0]) for _ in range(3)]
        // -> 0.9664535356921388, 0.4407325991753527, 0.007491470058587191
        let mut r = PyRandom::new(1234);
        let got: Vec<u64> = (0..3).map(|_| r.random().to_bits()).collect();
        assert_eq!(
            got,
            [0x3feeed2ff71cd77d, 0x3fdc34f680ef4f52, 0x3f7eaf602e68d680]
        );
    }

    #[test]
    fn genrand_u32_stream() {
        // r=random.Random(1234); [r.getrandbits(32) for _ in range(5)]
        let mut r = PyRandom::new(1234);
        let got: Vec<u32> = (0..5).map(|_| r.genrand_u32()).collect();
        assert_eq!(
            got,
            [4150886329, 3342196574, 1892932127, 501869158, 32175636]
        );
    }

    /// Draws getrandbits(32), (64), (7), (33), (1) in that order.
    fn bits_sequence(mut r: PyRandom) -> [u64; 5] {
        [
            r.getrandbits(32),
            r.getrandbits(64),
            r.getrandbits(7),
            r.getrandbits(33),
            r.getrandbits(1),
        ]
    }

    #[test]
    fn getrandbits_for_various_seeds() {
        // for s in (0,42,1234,2**40+5,2**70+3,2**32): r=random.Random(s);
        //   print(s, r.getrandbits(32), r.getrandbits(64), r.getrandbits(7),
        //         r.getrandbits(33), r.getrandbits(1))
        let cases: [(u64, [u64; 5]); 5] = [
            (0, [3626764237, 13981790821421117374, 113, 1806341205, 0]),
            (42, [2746317213, 461366972257415551, 94, 1181241943, 0]),
            (1234, [4150886329, 8130081582354915166, 14, 32175636, 1]),
            (
                (1 << 40) + 5,
                [2166296868, 4954877310874744636, 84, 3976222944, 1],
            ),
            // 2**32: key is [0, 1], two words though the low one is zero.
            (1 << 32, [485306839, 7707582035546573756, 119, 71624475, 1]),
        ];
        for (seed, want) in cases {
            assert_eq!(bits_sequence(PyRandom::new(seed)), want, "seed {seed}");
        }
    }

    #[test]
    fn seed_above_u64_via_words() {
        // Same one-liner as above with s = 2**70 + 3 = words [3, 0, 64].
        let r = PyRandom::from_bigint_words(&[3, 0, 64]);
        assert_eq!(
            bits_sequence(r),
            [701776502, 18400176429095641773, 94, 5347373786, 0]
        );
    }

    #[test]
    fn bigint_words_normalisation() {
        // High zero words do not change the key; empty means 0.
        let mut a = PyRandom::from_bigint_words(&[5, 0, 0]);
        let mut b = PyRandom::new(5);
        assert_eq!(a.genrand_u32(), b.genrand_u32());
        let mut z = PyRandom::from_bigint_words(&[]);
        let mut z0 = PyRandom::new(0);
        assert_eq!(z.genrand_u32(), z0.genrand_u32());
    }

    #[test]
    fn randbelow_matches_randrange() {
        // r=random.Random(1234); [r.randrange(7473) for _ in range(10)]
        let mut r = PyRandom::new(1234);
        let got: Vec<u64> = (0..10).map(|_| r.randbelow(7473)).collect();
        assert_eq!(got, [6374, 3610, 957, 61, 742, 7462, 6610, 4769, 286, 5501]);
    }

    #[test]
    fn lm_eval_style_consecutive_samples() {
        // r=random.Random(1234); [r.sample(range(7473),5) for _ in range(3)]
        let mut r = PyRandom::new(1234);
        assert_eq!(r.sample(7473, 5), [6374, 3610, 957, 61, 742]);
        assert_eq!(r.sample(7473, 5), [7462, 6610, 4769, 286, 5501]);
        assert_eq!(r.sample(7473, 5), [5677, 687, 806, 6279, 2905]);
    }

    #[test]
    fn sample_pool_branch() {
        // random.Random(1234).sample(range(10),5)
        assert_eq!(PyRandom::new(1234).sample(10, 5), [7, 1, 0, 9, 4]);
        // random.Random(1234).sample(range(8),8)
        assert_eq!(PyRandom::new(1234).sample(8, 8), [7, 0, 6, 5, 4, 2, 3, 1]);
    }

    #[test]
    fn sample_set_branch() {
        // random.Random(1234).sample(range(100000),8)
        assert_eq!(
            PyRandom::new(1234).sample(100_000, 8),
            [57767, 15315, 981, 11880, 76313, 4577, 88023, 90844]
        );
    }

    #[test]
    fn sample_zero_consumes_nothing() {
        // r=random.Random(1234); r.sample(range(5),0), r.getrandbits(32)
        // -> [] 4150886329
        let mut r = PyRandom::new(1234);
        assert!(r.sample(5, 0).is_empty());
        assert!(r.sample(0, 0).is_empty());
        assert_eq!(r.genrand_u32(), 4150886329);
    }

    #[test]
    fn sample_too_large_is_an_error() {
        let mut r = PyRandom::new(1);
        assert_eq!(r.try_sample(3, 4), Err(SampleError { k: 4, n: 3 }));
        // Nothing consumed: stream still equals a fresh generator's.
        assert_eq!(r.genrand_u32(), PyRandom::new(1).genrand_u32());
    }

    #[test]
    #[should_panic(expected = "sample larger than population")]
    fn sample_too_large_panics() {
        PyRandom::new(1).sample(2, 3);
    }

    #[test]
    fn shuffle_seed_42() {
        // r=random.Random(42); x=list(range(10)); r.shuffle(x); x
        let mut x: Vec<u32> = (0..10).collect();
        PyRandom::new(42).shuffle(&mut x);
        assert_eq!(x, [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);
    }

    #[test]
    fn choice_empty_is_none() {
        let empty: [u8; 0] = [];
        assert_eq!(PyRandom::new(0).choice(&empty), None);
    }

    #[test]
    fn pool_threshold() {
        // k <= 5: setsize 21. k = 6: 21 + 4**ceil(log(18, 4)) = 21 + 64 = 85.
        assert!(sample_uses_pool(21, 5));
        assert!(!sample_uses_pool(22, 5));
        assert!(sample_uses_pool(85, 6));
        assert!(!sample_uses_pool(86, 6));
        // Huge k must not overflow.
        assert!(sample_uses_pool(usize::MAX, usize::MAX / 3));
    }

    /// splitmix64, only to spread the differential cases around.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    const PY_SCRIPT: &str = r#"
import random, struct, sys
for line in sys.stdin:
    seed, n, k = map(int, line.split())
    r = random.Random(seed)
    a = r.sample(range(n), k)
    b = r.sample(range(n), k)
    f = struct.unpack('<Q', struct.pack('<d', r.random()))[0]
    print(','.join(map(str, a)) + '|' + ','.join(map(str, b)) + '|' + str(f))
"#;

    /// Differential test against the local CPython: 200 (seed, n, k) cases
    /// spanning both `sample` branches, each drawing two samples and then a
    /// `random()` so any divergence in words consumed shows up.
    #[test]
    fn matches_local_cpython() {
        let mut state = 0x5eed_u64;
        let mut cases = Vec::new();
        for i in 0..200 {
            let seed = match i % 4 {
                0 => splitmix(&mut state) % 10_000,
                1 => splitmix(&mut state) % (1 << 32),
                _ => splitmix(&mut state),
            };
            let n = match i % 5 {
                0 => 1 + splitmix(&mut state) % 30,
                1 => 1 + splitmix(&mut state) % 400,
                2 => 1 + splitmix(&mut state) % 10_000,
                3 => 1 + splitmix(&mut state) % 10_000_000,
                _ => 1u64 << (splitmix(&mut state) % 20), // powers of two
            } as usize;
            let k = match i % 3 {
                0 => n.min(1 + (splitmix(&mut state) % 8) as usize),
                1 => (splitmix(&mut state) % (n.min(60) as u64 + 1)) as usize,
                _ => n.min(200),
            };
            cases.push((seed, n, k));
        }

        let child = Command::new("python3")
            .arg("-c")
            .arg(PY_SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "pyrandom::matches_local_cpython skipped: cannot run python3 ({e})"
                );
                return;
            }
        };
        let input: String = cases
            .iter()
            .map(|(s, n, k)| format!("{s} {n} {k}\n"))
            .collect();
        // Drop stdin after writing so Python sees EOF.
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("write to python3");
        let out = child.wait_with_output().expect("python3 output");
        assert!(out.status.success(), "python3 failed: {:?}", out.status);
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), cases.len());

        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        for ((seed, n, k), want) in cases.iter().zip(lines) {
            let mut r = PyRandom::new(*seed);
            let a = r.sample(*n, *k);
            let b = r.sample(*n, *k);
            let f = r.random().to_bits();
            let got = format!("{}|{}|{}", join(&a), join(&b), f);
            assert_eq!(got, want, "seed={seed} n={n} k={k}");
        }
    }
}
