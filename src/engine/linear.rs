//! The engine's matrix products: `y = x · Wᵀ` for one weight matrix `W`
//! (`[n, k]`, one row per output feature) and the rows `x` (`[m, k]`) of one
//! forward step.
//!
//! Dense weights (F32, F16 and BF16, from GGUF or safetensors) are kept in
//! the type the file stores them in. A decode step is bound by reading the
//! weights from memory, so an F16 or BF16 matrix expanded to f32 would cost
//! twice the bytes per token (and twice the memory): instead the kernel here
//! converts eight elements at a time in registers (F16C `vcvtph2ps`, or a
//! 16-bit shift for BF16) and multiplies them with every input row while
//! they are loaded, so each weight is read once per step whatever the batch.
//! Output features are split across threads (rayon), each thread taking a
//! contiguous block of weight rows.
//!
//! Many rows at once (a prefill) turn the product compute-bound; there a
//! blocked matrix product (`gemm`, the crate candle itself uses) does better,
//! fed with the weights expanded to f32 a few megabytes at a time.
//!
//! GGUF's quantised types (Q8_0, Q4_K, Q6_K, …) stay in their blocks and run
//! through candle's quantised kernels ([`Matrix::Quant`]).

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};
use half::{bf16, f16};
use rayon::prelude::*;

/// From this many rows in one call the dense path switches from the
/// streaming kernel to `gemm` (the kernel reads each weight once, but its
/// arithmetic is not blocked for caches; `gemm`'s is).
const GEMM_ROWS: usize = 16;

/// From this many rows in one call quantised matrices are expanded to f32
/// for the call: candle's quantised kernels do not reuse the weights across
/// that many rows as well as a blocked f32 product does (measured on a
/// Qwen2.5-0.5B-shaped Q8_0 file, 512-token prefill: 15.3 s quantised,
/// 6.4 s expanded; at 8 rows the expansion costs more than it saves).
const DEQUANTIZE_ROWS: usize = 128;

/// How many f32 elements of a dense matrix the `gemm` path expands at a
/// time (16 MB): bounded scratch memory even for a 150k-row output matrix.
const EXPAND_ELEMS: usize = 4 << 20;

/// How a dense matrix stores its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseType {
    /// IEEE f32.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16 (the top 16 bits of an f32).
    Bf16,
}

/// A dense matrix's elements, in the file's type.
#[derive(Debug, Clone)]
enum Elems {
    F32(Vec<f32>),
    /// F16 or BF16 bits.
    Half(Vec<u16>, DenseType),
}

/// A dense `[n, k]` matrix, row-major.
#[derive(Debug, Clone)]
pub struct Dense {
    elems: Elems,
    n: usize,
    k: usize,
}

impl Dense {
    /// An f32 matrix; `data.len()` must be `n * k`.
    pub fn f32(data: Vec<f32>, n: usize, k: usize) -> Self {
        debug_assert_eq!(data.len(), n * k);
        Self {
            elems: Elems::F32(data),
            n,
            k,
        }
    }

    /// An F16 or BF16 matrix from its bits; `bits.len()` must be `n * k`.
    pub fn half(bits: Vec<u16>, ty: DenseType, n: usize, k: usize) -> Self {
        debug_assert_eq!(bits.len(), n * k);
        debug_assert_ne!(ty, DenseType::F32);
        Self {
            elems: Elems::Half(bits, ty),
            n,
            k,
        }
    }

    /// Decodes little-endian element bytes of type `ty` (`n * k` elements).
    pub fn from_le_bytes(bytes: &[u8], ty: DenseType, n: usize, k: usize) -> Option<Self> {
        let width = if ty == DenseType::F32 { 4 } else { 2 };
        if bytes.len() != n.checked_mul(k)?.checked_mul(width)? {
            return None;
        }
        Some(match ty {
            DenseType::F32 => Self::f32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                n,
                k,
            ),
            _ => Self::half(
                bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect(),
                ty,
                n,
                k,
            ),
        })
    }

    /// The element type.
    pub fn dense_type(&self) -> DenseType {
        match &self.elems {
            Elems::F32(_) => DenseType::F32,
            Elems::Half(_, t) => *t,
        }
    }

    /// `[n, k]`.
    pub fn dims(&self) -> [usize; 2] {
        [self.n, self.k]
    }

    /// Every element as f32, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n * self.k];
        self.expand_rows(0, &mut out);
        out
    }

    /// Writes rows `first..first + out.len() / k` as f32 into `out`.
    fn expand_rows(&self, first: usize, out: &mut [f32]) {
        let start = first * self.k;
        let span = start..start + out.len();
        match &self.elems {
            Elems::F32(v) => out.copy_from_slice(&v[span]),
            Elems::Half(v, DenseType::F16) => {
                for (o, &b) in out.iter_mut().zip(&v[span]) {
                    *o = f16::from_bits(b).to_f32();
                }
            }
            Elems::Half(v, _) => {
                for (o, &b) in out.iter_mut().zip(&v[span]) {
                    *o = bf16::from_bits(b).to_f32();
                }
            }
        }
    }

    /// `x · Wᵀ` for `m` rows of `x` (`[m, k]`), as `[m, n]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        debug_assert_eq!(x.len(), m * self.k);
        if m >= GEMM_ROWS {
            self.matmul_gemm(x, m)
        } else {
            self.matmul_stream(x, m)
        }
    }

    /// The streaming kernel: each thread takes a block of weight rows and
    /// multiplies every row of `x` with each weight row while it is loaded.
    fn matmul_stream(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        // Enough blocks for rayon to balance two to a few dozen threads,
        // each a multiple of 8 rows (the widest tile).
        let threads = rayon::current_num_threads().max(1);
        let block = n.div_ceil(threads * 8).next_multiple_of(8).max(8);
        // Transposed output `[n, m]`: each block writes a contiguous span.
        let mut yt = vec![0f32; n * m];
        let simd = simd_available();
        yt.par_chunks_mut(block * m)
            .enumerate()
            .for_each(|(b, out)| {
                let j0 = b * block;
                let rows = out.len() / m;
                if simd {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `simd_available` checked avx2, fma and f16c;
                    // the ranges are within `x` and the matrix.
                    unsafe {
                        x86::block(&self.elems, k, j0, rows, x, m, out)
                    }
                } else {
                    self.block_scalar(j0, rows, x, m, out);
                }
            });
        transpose(&yt, n, m)
    }

    /// The streaming kernel without SIMD.
    fn block_scalar(&self, j0: usize, rows: usize, x: &[f32], m: usize, out: &mut [f32]) {
        let k = self.k;
        let mut w = vec![0f32; k];
        for j in 0..rows {
            self.expand_rows(j0 + j, &mut w);
            for r in 0..m {
                out[j * m + r] = dot(&w, &x[r * k..(r + 1) * k]);
            }
        }
    }

    /// The blocked path: rows of the weights expanded to f32 a slice at a
    /// time, each slice multiplied by `gemm` into its columns of `y`.
    fn matmul_gemm(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let mut y = vec![0f32; m * n];
        let chunk = (EXPAND_ELEMS / k.max(1)).clamp(1, n.max(1));
        let mut scratch = Vec::new();
        let mut j0 = 0;
        while j0 < n {
            let rows = chunk.min(n - j0);
            let w: &[f32] = match &self.elems {
                Elems::F32(v) => &v[j0 * k..(j0 + rows) * k],
                Elems::Half(..) => {
                    scratch.resize(rows * k, 0.0);
                    scratch
                        .par_chunks_mut(k * 64)
                        .enumerate()
                        .for_each(|(i, o)| self.expand_rows(j0 + i * 64, o));
                    &scratch
                }
            };
            // SAFETY: dst is `y[.., j0..j0 + rows]` with row stride n, lhs is
            // `x` (`[m, k]`), rhs is `wᵀ` (`[k, rows]`: element (i, j) at
            // w[j * k + i]); every index stays inside the three buffers.
            unsafe {
                gemm::gemm(
                    m,
                    rows,
                    k,
                    y.as_mut_ptr().add(j0),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    w.as_ptr(),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                );
            }
            j0 += rows;
        }
        y
    }
}

/// A weight matrix: dense in the file's type, or quantised blocks.
#[derive(Debug)]
pub enum Matrix {
    /// F32, F16 or BF16.
    Dense(Dense),
    /// GGUF quantised blocks, run through candle.
    Quant(QMatMul),
}

impl Matrix {
    /// `x · Wᵀ` for `m` rows of `x` (`[m, k]`), as `[m, n]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> candle_core::Result<Vec<f32>> {
        match self {
            Matrix::Dense(d) => Ok(d.matmul(x, m)),
            Matrix::Quant(q) => {
                let k = x.len() / m.max(1);
                let xt = Tensor::from_slice(x, (m, k), &Device::Cpu)?;
                let y = match q {
                    QMatMul::QTensor(qt) if m >= DEQUANTIZE_ROWS => {
                        xt.matmul(&qt.dequantize(&Device::Cpu)?.t()?)?
                    }
                    q => q.forward(&xt)?,
                };
                y.flatten_all()?.to_vec1::<f32>()
            }
        }
    }

    /// Rows `ids` of the matrix (an embedding lookup), as `[ids, k]`.
    pub fn rows(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        match self {
            Matrix::Dense(d) => {
                let mut out = vec![0f32; ids.len() * d.k];
                for (o, &id) in out.chunks_exact_mut(d.k.max(1)).zip(ids) {
                    d.expand_rows(id as usize, o);
                }
                Ok(out)
            }
            Matrix::Quant(q) => {
                let t = Tensor::from_slice(ids, ids.len(), &Device::Cpu)?;
                q.embedding(&t)?.flatten_all()?.to_vec1::<f32>()
            }
        }
    }
}

/// `[n, m]` → `[m, n]`.
fn transpose(yt: &[f32], n: usize, m: usize) -> Vec<f32> {
    if m == 1 {
        return yt.to_vec();
    }
    let mut y = vec![0f32; n * m];
    for (j, row) in yt.chunks_exact(m).enumerate() {
        for (r, &v) in row.iter().enumerate() {
            y[r * n + j] = v;
        }
    }
    y
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Whether the SIMD kernel can run here (checked once).
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2/FMA/F16C tiles: `MR` input rows times `NR` weight rows, eight
    //! elements of k per step, all accumulators in registers.

    use super::{DenseType, Elems};
    use std::arch::x86_64::*;

    const F32: u8 = 0;
    const F16: u8 = 1;
    const BF16: u8 = 2;

    /// Eight elements from `p` (element index `i`) as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8<const T: u8>(p: *const u8, i: usize) -> __m256 {
        // SAFETY (all arms): the caller keeps i + 8 within the buffer.
        unsafe {
            match T {
                F32 => _mm256_loadu_ps((p as *const f32).add(i)),
                F16 => _mm256_cvtph_ps(_mm_loadu_si128((p as *const u16).add(i) as *const __m128i)),
                _ => {
                    let h = _mm_loadu_si128((p as *const u16).add(i) as *const __m128i);
                    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
                }
            }
        }
    }

    /// One element at index `i` as f32.
    #[inline]
    unsafe fn load1<const T: u8>(p: *const u8, i: usize) -> f32 {
        // SAFETY: the caller keeps i within the buffer.
        unsafe {
            match T {
                F32 => *(p as *const f32).add(i),
                F16 => half::f16::from_bits(*(p as *const u16).add(i)).to_f32(),
                _ => half::bf16::from_bits(*(p as *const u16).add(i)).to_f32(),
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// `out[(j - j0) * m + r] = dot(w[j], x[r])` for `MR` rows from `r0` and
    /// `NR` weight rows from `j`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const T: u8, const MR: usize, const NR: usize>(
        w: *const u8,
        k: usize,
        j: usize,
        j0: usize,
        x: &[f32],
        r0: usize,
        m: usize,
        out: &mut [f32],
    ) {
        let mut acc = [[_mm256_setzero_ps(); NR]; MR];
        let k8 = k / 8 * 8;
        let xp = x.as_ptr();
        let mut i = 0;
        while i < k8 {
            let mut wv = [_mm256_setzero_ps(); NR];
            for (c, v) in wv.iter_mut().enumerate() {
                // SAFETY: row j + c < n and i + 8 <= k.
                *v = unsafe { load8::<T>(w, (j + c) * k + i) };
            }
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: row r0 + r < m and i + 8 <= k.
                let xv = unsafe { _mm256_loadu_ps(xp.add((r0 + r) * k + i)) };
                for c in 0..NR {
                    a[c] = _mm256_fmadd_ps(wv[c], xv, a[c]);
                }
            }
            i += 8;
        }
        for (r, a) in acc.iter().enumerate() {
            for c in 0..NR {
                let mut s = hsum(a[c]);
                for t in k8..k {
                    // SAFETY: t < k, rows in range as above.
                    s += unsafe { load1::<T>(w, (j + c) * k + t) } * x[(r0 + r) * k + t];
                }
                out[(j + c - j0) * m + r0 + r] = s;
            }
        }
    }

    /// Weight rows `j0..j0 + rows` against every row of `x`, for the
    /// element type `T` and `MR` input rows at a time.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_tiles<const T: u8, const MR: usize, const NR: usize>(
        w: *const u8,
        k: usize,
        j0: usize,
        rows: usize,
        x: &[f32],
        r0: usize,
        m: usize,
        out: &mut [f32],
    ) {
        let mut j = j0;
        // SAFETY (both loops): j + NR <= j0 + rows <= n, r0 + MR <= m.
        while j + NR <= j0 + rows {
            unsafe { tile::<T, MR, NR>(w, k, j, j0, x, r0, m, out) };
            j += NR;
        }
        while j < j0 + rows {
            unsafe { tile::<T, MR, 1>(w, k, j, j0, x, r0, m, out) };
            j += 1;
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_typed<const T: u8>(
        w: *const u8,
        k: usize,
        j0: usize,
        rows: usize,
        x: &[f32],
        m: usize,
        out: &mut [f32],
    ) {
        let mut r0 = 0;
        // SAFETY: each call covers rows r0..r0 + MR < m (see rows_tiles).
        unsafe {
            while r0 + 4 <= m {
                rows_tiles::<T, 4, 3>(w, k, j0, rows, x, r0, m, out);
                r0 += 4;
            }
            match m - r0 {
                3 => rows_tiles::<T, 3, 4>(w, k, j0, rows, x, r0, m, out),
                2 => rows_tiles::<T, 2, 4>(w, k, j0, rows, x, r0, m, out),
                1 => rows_tiles::<T, 1, 8>(w, k, j0, rows, x, r0, m, out),
                _ => {}
            }
        }
    }

    /// Weight rows `j0..j0 + rows` of `elems` (`[n, k]`) against the `m`
    /// rows of `x`, into `out` (`[rows, m]`).
    ///
    /// # Safety
    /// The CPU has avx2, fma and f16c; `j0 + rows <= n`, `x.len() == m * k`,
    /// `out.len() == rows * m`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn block(
        elems: &Elems,
        k: usize,
        j0: usize,
        rows: usize,
        x: &[f32],
        m: usize,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match elems {
                Elems::F32(v) => block_typed::<F32>(v.as_ptr() as _, k, j0, rows, x, m, out),
                Elems::Half(v, DenseType::F16) => {
                    block_typed::<F16>(v.as_ptr() as _, k, j0, rows, x, m, out)
                }
                Elems::Half(v, _) => block_typed::<BF16>(v.as_ptr() as _, k, j0, rows, x, m, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The reference: f32 arithmetic on the expanded matrix, row by row.
    fn reference(w: &Dense, x: &[f32], m: usize) -> Vec<f32> {
        let full = w.to_f32();
        let (n, k) = (w.n, w.k);
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for j in 0..n {
                y[r * n + j] = dot(&full[j * k..(j + 1) * k], &x[r * k..(r + 1) * k]);
            }
        }
        y
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let tol = 1e-4 * (1.0 + x.abs().max(y.abs()));
            assert!((x - y).abs() <= tol, "{what}: element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn every_type_and_row_count_equals_the_f32_reference() {
        // k with a tail past the 8-wide steps; n not a multiple of any tile.
        for (n, k) in [(37, 29), (130, 64), (9, 8)] {
            let base = values(n * k, 7);
            let mats = [
                Dense::f32(base.clone(), n, k),
                Dense::half(
                    base.iter().map(|&v| f16::from_f32(v).to_bits()).collect(),
                    DenseType::F16,
                    n,
                    k,
                ),
                Dense::half(
                    base.iter().map(|&v| bf16::from_f32(v).to_bits()).collect(),
                    DenseType::Bf16,
                    n,
                    k,
                ),
            ];
            for w in &mats {
                for m in [1, 2, 3, 4, 5, 7, 8, 15, 16, 40] {
                    let x = values(m * k, m as u64);
                    let what = format!("{:?} n={n} k={k} m={m}", w.dense_type());
                    close(&w.matmul(&x, m), &reference(w, &x, m), &what);
                    close(&w.matmul_stream(&x, m), &reference(w, &x, m), &what);
                    if m > 1 {
                        close(&w.matmul_gemm(&x, m), &reference(w, &x, m), &what);
                    }
                }
            }
        }
    }

    #[test]
    fn the_scalar_path_equals_the_simd_path() {
        let (n, k, m) = (19, 45, 3);
        let w = Dense::half(
            values(n * k, 3)
                .iter()
                .map(|&v| f16::from_f32(v).to_bits())
                .collect(),
            DenseType::F16,
            n,
            k,
        );
        let x = values(m * k, 4);
        let mut yt = vec![0f32; n * m];
        w.block_scalar(0, n, &x, m, &mut yt);
        close(&transpose(&yt, n, m), &reference(&w, &x, m), "scalar");
    }

    #[test]
    fn embedding_rows_are_the_matrix_rows() {
        let (n, k) = (5, 12);
        let base = values(n * k, 9);
        let w = Dense::half(
            base.iter().map(|&v| bf16::from_f32(v).to_bits()).collect(),
            DenseType::Bf16,
            n,
            k,
        );
        let full = w.to_f32();
        let got = Matrix::Dense(w).rows(&[4, 0, 4]).expect("rows");
        assert_eq!(&got[..k], &full[4 * k..]);
        assert_eq!(&got[k..2 * k], &full[..k]);
        assert_eq!(&got[2 * k..], &full[4 * k..]);
    }

    #[test]
    fn le_bytes_of_the_wrong_length_are_refused() {
        assert!(Dense::from_le_bytes(&[0; 6], DenseType::F16, 2, 2).is_none());
        let d = Dense::from_le_bytes(&[0, 0x3c, 0, 0xc0], DenseType::F16, 1, 2).expect("2 halves");
        assert_eq!(d.to_f32(), vec![1.0, -2.0]);
    }
}
