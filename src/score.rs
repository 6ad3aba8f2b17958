//! Verdict aggregation: accuracy, standard error and confidence intervals.
//!
//! Owns the statistics that turn per-item verdicts into the numbers in the
//! reports. The formulas follow lm-evaluation-harness where it has one (stderr
//! is the sample standard deviation with n-1, over sqrt(n)) so our figures
//! can be compared with theirs; the Wilson interval is added because it stays
//! sensible at small n and at accuracies near 0 or 1.

use serde::{Deserialize, Serialize};

/// Accuracy over `n` binary verdicts with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccuracyStats {
    /// Items counted.
    pub n: u64,
    /// Items judged correct.
    pub correct: u64,
    /// `correct / n` (0 when n = 0).
    pub accuracy: f64,
    /// Sample std (n-1) over sqrt(n), as lm-eval; 0 when n < 2.
    pub stderr: f64,
    /// Lower bound of the Wilson 95% interval.
    pub ci_low: f64,
    /// Upper bound of the Wilson 95% interval.
    pub ci_high: f64,
}

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

impl AccuracyStats {
    /// Statistics for `correct` successes out of `n`.
    pub fn new(correct: u64, n: u64) -> Self {
        if n == 0 {
            return Self {
                n,
                correct,
                accuracy: 0.0,
                stderr: 0.0,
                ci_low: 0.0,
                ci_high: 0.0,
            };
        }
        let nf = n as f64;
        let p = correct as f64 / nf;
        // For 0/1 data the sample variance with Bessel's correction is
        // p(1-p) n/(n-1); divided by n this gives p(1-p)/(n-1).
        let stderr = if n > 1 {
            (p * (1.0 - p) / (nf - 1.0)).sqrt()
        } else {
            0.0
        };
        let (ci_low, ci_high) = wilson(p, nf, Z95);
        Self {
            n,
            correct,
            accuracy: p,
            stderr,
            ci_low,
            ci_high,
        }
    }
}

impl AccuracyStats {
    /// Statistics for per-item scores in [0, 1] (TruthfulQA's `mc2`):
    /// the mean, lm-eval's stderr (sample std with n-1, over sqrt(n)), the
    /// Wilson interval of the mean, and `correct` the rounded sum.
    pub fn from_scores(scores: &[f64]) -> Self {
        let n = scores.len() as u64;
        if n == 0 {
            return Self::new(0, 0);
        }
        let nf = n as f64;
        let mean = scores.iter().sum::<f64>() / nf;
        let stderr = if n > 1 {
            let var = scores.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
            (var / nf).sqrt()
        } else {
            0.0
        };
        let (ci_low, ci_high) = wilson(mean, nf, Z95);
        Self {
            n,
            correct: (mean * nf).round() as u64,
            accuracy: mean,
            stderr,
            ci_low,
            ci_high,
        }
    }
}

/// lm-eval's stderr of a group's size-weighted mean
/// (`lm_eval/api/metrics.py` `pooled_sample_stderr`): the pooled sample
/// variance `sum((n_i - 1) * se_i^2 * n_i) / (sum(n_i) - k)` over the `k`
/// subtasks, over `sum(n_i)`, square-rooted. `(stderr, n)` per subtask.
pub fn pooled_sample_stderr(parts: &[(f64, u64)]) -> f64 {
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    let k = parts.len() as u64;
    if total <= k {
        return 0.0;
    }
    let var = parts
        .iter()
        .map(|(se, n)| {
            let n = *n as f64;
            (n - 1.0) * se * se * n
        })
        .sum::<f64>()
        / (total - k) as f64;
    (var / total as f64).sqrt()
}

/// A group of subtasks as lm-eval aggregates it with `weight_by_size: True`
/// (`lm_eval/api/group.py` `Group.aggregate`, 0.4.13): the accuracy is the
/// size-weighted mean of the subtasks' (`aggregate_subtask_metrics`), the
/// stderr [`pooled_sample_stderr`] of their stderrs; `n` and `correct` are
/// summed and the interval is Wilson's around the mean. lm-eval takes the
/// leaf tasks of a group however deeply nested (`get_all_tasks`), so
/// `parts` are always subtasks, never subgroups.
pub fn lm_eval_group(parts: &[AccuracyStats]) -> AccuracyStats {
    let n: u64 = parts.iter().map(|p| p.n).sum();
    if n == 0 {
        return AccuracyStats::new(0, 0);
    }
    let accuracy = parts.iter().map(|p| p.accuracy * p.n as f64).sum::<f64>() / n as f64;
    let pooled: Vec<(f64, u64)> = parts.iter().map(|p| (p.stderr, p.n)).collect();
    let (ci_low, ci_high) = wilson(accuracy, n as f64, Z95);
    AccuracyStats {
        n,
        correct: parts.iter().map(|p| p.correct).sum(),
        accuracy,
        stderr: pooled_sample_stderr(&pooled),
        ci_low,
        ci_high,
    }
}

/// Wilson score interval for proportion `p` observed over `n` trials.
fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The unbiased pass@k estimate for one item sampled `n` times with `c`
/// correct: `1 - C(n-c, k) / C(n, k)`, the probability that at least one of
/// `k` samples drawn without replacement from the `n` is correct (Chen et
/// al. 2021, "Evaluating Large Language Models Trained on Code", as
/// EvalScope computes it). `None` when `k` is 0 or larger than `n`.
///
/// Computed as the product `prod_{i=n-c+1}^{n} (1 - k/i)` (the paper's
/// numerically stable form), so no binomial coefficient overflows.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let mut fail = 1.0f64;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - fail)
}

/// pass@k averaged over items, each given as `(n, c)` (samples, correct);
/// items with fewer than `k` samples are left out. `None` when none is
/// left.
pub fn mean_pass_at_k(items: &[(u64, u64)], k: u64) -> Option<f64> {
    let values: Vec<f64> = items
        .iter()
        .filter_map(|&(n, c)| pass_at_k(n, c, k))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The k reported for `n` repeats: 1, 2, 4, ... up to `n`.
pub fn pass_at_k_levels(n: u64) -> Vec<u64> {
    std::iter::successors(Some(1u64), |k| k.checked_mul(2))
        .take_while(|k| *k <= n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lm_eval_group_is_the_weighted_mean_with_pooled_stderr() {
        // Subtasks 2/3 and 1/5 right. Subtask stderr: p(1-p)/(n-1), rooted.
        let (a, b) = (AccuracyStats::new(2, 3), AccuracyStats::new(1, 5));
        assert!((a.stderr - (2.0f64 / 9.0 / 2.0).sqrt()).abs() < 1e-15);
        let g = lm_eval_group(&[a, b]);
        assert_eq!((g.n, g.correct), (8, 3));
        assert!((g.accuracy - (2.0 / 3.0 * 3.0 + 0.2 * 5.0) / 8.0).abs() < 1e-15);
        // pooled: ((3-1) se_a^2 3 + (5-1) se_b^2 5) / (8 - 2) / 8, rooted.
        let var = (2.0 * a.stderr.powi(2) * 3.0 + 4.0 * b.stderr.powi(2) * 5.0) / 6.0;
        assert!((g.stderr - (var / 8.0).sqrt()).abs() < 1e-15);
        assert!(g.ci_low < g.accuracy && g.accuracy < g.ci_high);
        assert_eq!(lm_eval_group(&[]).n, 0);
    }

    #[test]
    fn stderr_matches_sample_std_over_sqrt_n() {
        // 3 of 5 correct: values 1,1,1,0,0; mean 0.6; sample var = (3*0.16+2*0.36)/4 = 0.3
        let s = AccuracyStats::new(3, 5);
        assert!((s.accuracy - 0.6).abs() < 1e-12);
        assert!((s.stderr - (0.3f64 / 5.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn wilson_interval_known_values() {
        // Reference values for 8/10: [0.4902, 0.9433] (standard Wilson table).
        let s = AccuracyStats::new(8, 10);
        assert!((s.ci_low - 0.4902).abs() < 1e-3, "{}", s.ci_low);
        assert!((s.ci_high - 0.9433).abs() < 1e-3, "{}", s.ci_high);
        // All correct still leaves room below 1.
        let all = AccuracyStats::new(5, 5);
        assert_eq!(all.stderr, 0.0);
        assert!(all.ci_low < 0.6 && all.ci_high == 1.0);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(AccuracyStats::new(0, 0).accuracy, 0.0);
        assert_eq!(AccuracyStats::new(1, 1).stderr, 0.0);
    }

    /// pass@k against binomials worked out by hand.
    #[test]
    fn pass_at_k_matches_the_binomial_formula() {
        // n=4, c=1: pass@1 = 1 - C(3,1)/C(4,1) = 1 - 3/4; pass@2 = 1 -
        // C(3,2)/C(4,2) = 1 - 3/6; pass@4 = 1 - C(3,4)/C(4,4) = 1 (C(3,4)=0).
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(pass_at_k(4, 1, 1), 0.25));
        assert!(close(pass_at_k(4, 1, 2), 0.5));
        assert!(close(pass_at_k(4, 1, 4), 1.0));
        // n=8, c=3, k=2: 1 - C(5,2)/C(8,2) = 1 - 10/28.
        assert!(close(pass_at_k(8, 3, 2), 18.0 / 28.0));
        // n=8, c=3, k=4: 1 - C(5,4)/C(8,4) = 1 - 5/70.
        assert!(close(pass_at_k(8, 3, 4), 65.0 / 70.0));
        // pass@1 is the fraction correct; nothing correct is 0.
        assert!(close(pass_at_k(5, 2, 1), 0.4));
        assert!(close(pass_at_k(5, 0, 3), 0.0));
        assert!(close(pass_at_k(5, 5, 3), 1.0));
        assert_eq!(pass_at_k(2, 1, 3), None);
        assert_eq!(pass_at_k(2, 1, 0), None);
        // Averaged over items: (0.25 + 1.0) / 2 for pass@1 of (4,1), (4,4).
        assert!(close(mean_pass_at_k(&[(4, 1), (4, 4)], 1), 0.625));
        assert_eq!(mean_pass_at_k(&[(1, 1)], 2), None);
        assert_eq!(pass_at_k_levels(1), vec![1]);
        assert_eq!(pass_at_k_levels(6), vec![1, 2, 4]);
        assert_eq!(pass_at_k_levels(8), vec![1, 2, 4, 8]);
    }
}
