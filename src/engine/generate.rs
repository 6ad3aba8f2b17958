//! Greedy generation for one sequence: prompt token ids in, new token ids
//! out, with the KV cache of the model's one sequence.
//!
//! The prompt goes through the model in one forward pass (prefill); then
//! each new token is fed alone at its position, reusing the cached keys and
//! values of everything before it. The next token is the arg-max of the
//! logits, the lowest id on an exact tie (what llama.cpp's greedy sampler
//! picks), and its log-probability is reported so that callers can compare
//! with another implementation where two logits are nearly equal.

use super::gguf::{EngineError, GgufModel};

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model produced one of the end-of-generation ids (not included in
    /// [`Generation::tokens`]).
    Eos,
    /// `max_new_tokens` were generated.
    Length,
}

/// One greedy step: the chosen token and how sure the model was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The chosen (arg-max) token id.
    pub token: u32,
    /// Its log-probability (log-softmax of the logits, temperature 1).
    pub logprob: f32,
    /// The runner-up token id.
    pub second: u32,
    /// The runner-up's log-probability.
    pub second_logprob: f32,
}

/// The result of [`generate_greedy`].
#[derive(Debug, Clone)]
pub struct Generation {
    /// New token ids, without the end-of-generation id that stopped it.
    pub tokens: Vec<u32>,
    /// One [`Step`] per generated token (including a final EOS step).
    pub steps: Vec<Step>,
    /// Why it stopped.
    pub finish: Finish,
}

/// The arg-max of `logits` (lowest id on an exact tie), the runner-up, and
/// both log-probabilities.
pub fn greedy_step(logits: &[f32]) -> Option<Step> {
    let mut best: Option<(usize, f32)> = None;
    let mut second: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        match best {
            Some((_, b)) if l <= b => {
                if second.is_none_or(|(_, s)| l > s) {
                    second = Some((i, l));
                }
            }
            _ => {
                second = best;
                best = Some((i, l));
            }
        }
    }
    let (bi, bl) = best?;
    let (si, sl) = second.unwrap_or((bi, bl));
    // log-softmax in f64 so that the normaliser does not lose the small terms.
    let lse = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l - bl).exp())
        .sum::<f64>()
        .ln()
        + f64::from(bl);
    Some(Step {
        token: bi as u32,
        logprob: (f64::from(bl) - lse) as f32,
        second: si as u32,
        second_logprob: (f64::from(sl) - lse) as f32,
    })
}

/// The log-probability of token `id` under `logits` (log-softmax,
/// temperature 1), or `None` when `id` is out of range.
pub fn logprob_of(logits: &[f32], id: u32) -> Option<f32> {
    let l = *logits.get(id as usize)?;
    let max = logits
        .iter()
        .copied()
        .filter(|l| !l.is_nan())
        .fold(f32::MIN, f32::max);
    let lse = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&x| f64::from(x - max).exp())
        .sum::<f64>()
        .ln()
        + f64::from(max);
    Some((f64::from(l) - lse) as f32)
}

/// Generates up to `max_new_tokens` tokens after `prompt`, greedily, stopping
/// early at any of the model's end-of-generation ids. Starts a new sequence
/// (the KV cache is cleared first).
pub fn generate_greedy(
    model: &mut GgufModel,
    prompt: &[u32],
    max_new_tokens: usize,
) -> Result<Generation, EngineError> {
    if prompt.is_empty() {
        return Err(EngineError::Request("the prompt has no tokens".into()));
    }
    let vocab = model.meta.vocab_size;
    if let Some((i, id)) = prompt
        .iter()
        .enumerate()
        .find(|(_, id)| **id as usize >= vocab)
    {
        return Err(EngineError::Request(format!(
            "prompt token {i} is id {id}, outside the {vocab}-token vocabulary"
        )));
    }
    let limit = model.meta.max_positions;
    if prompt.len() + max_new_tokens > limit {
        return Err(EngineError::Request(format!(
            "prompt of {} tokens plus {max_new_tokens} new tokens exceeds the model's {limit}-token context",
            prompt.len()
        )));
    }
    model.clear_kv_cache();
    let mut tokens = Vec::with_capacity(max_new_tokens);
    let mut steps = Vec::with_capacity(max_new_tokens);
    if max_new_tokens == 0 {
        return Ok(Generation {
            tokens,
            steps,
            finish: Finish::Length,
        });
    }
    let mut logits = model.forward(prompt, 0)?;
    let mut pos = prompt.len();
    loop {
        let step = greedy_step(&logits)
            .ok_or_else(|| EngineError::Inference("the logits are all NaN".into()))?;
        steps.push(step);
        if model.meta.eos_token_ids.contains(&step.token) {
            return Ok(Generation {
                tokens,
                steps,
                finish: Finish::Eos,
            });
        }
        tokens.push(step.token);
        if tokens.len() == max_new_tokens {
            return Ok(Generation {
                tokens,
                steps,
                finish: Finish::Length,
            });
        }
        logits = model.forward(&[step.token], pos)?;
        pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_step_picks_lowest_id_on_exact_tie() {
        let s = greedy_step(&[0.5, 2.0, -1.0, 2.0]).unwrap();
        assert_eq!((s.token, s.second), (1, 3));
        assert_eq!(s.logprob, s.second_logprob);
    }

    #[test]
    fn greedy_step_logprobs_are_log_softmax() {
        let s = greedy_step(&[1.0, 3.0, 2.0]).unwrap();
        let z: f64 = [1.0f64, 3.0, 2.0].iter().map(|l| l.exp()).sum();
        assert_eq!((s.token, s.second), (1, 2));
        assert!((f64::from(s.logprob) - (3.0 - z.ln())).abs() < 1e-6);
        assert!((f64::from(s.second_logprob) - (2.0 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn logprob_of_agrees_with_greedy_step() {
        let logits = [0.25, -1.0, 4.0, 3.5];
        let s = greedy_step(&logits).unwrap();
        assert_eq!(logprob_of(&logits, s.token), Some(s.logprob));
        assert_eq!(logprob_of(&logits, s.second), Some(s.second_logprob));
        assert_eq!(logprob_of(&logits, 4), None);
    }

    #[test]
    fn greedy_step_of_all_nan_is_none() {
        assert!(greedy_step(&[f32::NAN, f32::NAN]).is_none());
        assert!(greedy_step(&[]).is_none());
    }
}
