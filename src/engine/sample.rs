//! Generation settings and token sampling for the in-process engine.
//!
//! [`GenParams::from_openai`] reads the OpenAI request keys a client sends
//! (`max_tokens`, `temperature`, `top_p`, `top_k`, `min_p`, `seed`, `stop`)
//! and refuses, by name, the ones that would change the output but that
//! this engine does not implement (penalties, `n` > 1, logit bias), so a
//! run never silently measures something other than what was asked.
//!
//! [`Sampler`] picks the next token: the arg-max at temperature 0 (lowest id
//! on an exact tie, as llama.cpp's greedy sampler), otherwise top-k, then
//! temperature, then top-p and min-p over the softmax, drawn from a
//! per-request RNG seeded by `seed` (so one seed gives one output whatever
//! else is in the batch).

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};

/// `max_tokens` when a request gives none: long enough for a chain of
/// thought on gsm8k, short enough that a model that never stops cannot hold
/// a run for long (capped further by the context left after the prompt).
pub const DEFAULT_MAX_TOKENS: usize = 2048;

/// How one request wants its tokens generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// New tokens at most; `None` means [`DEFAULT_MAX_TOKENS`], capped by
    /// the context left after the prompt.
    pub max_tokens: Option<usize>,
    /// 0 for greedy.
    pub temperature: f32,
    /// Nucleus mass (1 keeps everything).
    pub top_p: f32,
    /// Keep the k most likely tokens (0 keeps everything).
    pub top_k: usize,
    /// Drop tokens less likely than `min_p` times the most likely one.
    pub min_p: f32,
    /// RNG seed; `None` draws one.
    pub seed: Option<u64>,
    /// Strings that end generation (not included in the text).
    pub stop: Vec<String>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: None,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: None,
            stop: Vec::new(),
        }
    }
}

/// Request keys that change what is generated and that the engine does not
/// implement, with the value that means "off".
const UNSUPPORTED: &[(&str, f64)] = &[
    ("frequency_penalty", 0.0),
    ("presence_penalty", 0.0),
    ("repetition_penalty", 1.0),
    ("best_of", 1.0),
];

impl GenParams {
    /// Reads the OpenAI-style request keys. Keys that do not affect the
    /// tokens (`stream`, `user`, `model`, ...) are ignored; each error names
    /// the key and what it accepts. Unlike OpenAI's API, the default
    /// temperature is 0 (greedy), as evaluation wants.
    pub fn from_openai(params: &Map<String, Value>) -> Result<GenParams, String> {
        let mut p = GenParams::default();
        let num = |key: &str| -> Result<Option<f64>, String> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a finite number, got {v}")),
            }
        };
        let int = |key: &str| -> Result<Option<u64>, String> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
            }
        };
        let max = match int("max_completion_tokens")? {
            Some(n) => Some(n),
            None => int("max_tokens")?,
        };
        if let Some(n) = max {
            if n == 0 {
                return Err("`max_tokens` must be at least 1".into());
            }
            p.max_tokens = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(t) = num("temperature")? {
            if !(0.0..=100.0).contains(&t) {
                return Err(format!("`temperature` must be between 0 and 100, got {t}"));
            }
            p.temperature = t as f32;
        }
        if let Some(t) = num("top_p")? {
            if !(t > 0.0 && t <= 1.0) {
                return Err(format!("`top_p` must be in (0, 1], got {t}"));
            }
            p.top_p = t as f32;
        }
        if let Some(v) = params.get("top_k").filter(|v| !v.is_null()) {
            // vLLM takes -1 (and 0) for "off".
            match v.as_i64() {
                Some(k) if k <= 0 => p.top_k = 0,
                Some(k) => p.top_k = usize::try_from(k).unwrap_or(usize::MAX),
                None => return Err(format!("`top_k` must be an integer, got {v}")),
            }
        }
        if let Some(m) = num("min_p")? {
            if !(0.0..=1.0).contains(&m) {
                return Err(format!("`min_p` must be between 0 and 1, got {m}"));
            }
            p.min_p = m as f32;
        }
        if let Some(v) = params.get("seed").filter(|v| !v.is_null()) {
            // Negative seeds are accepted by some clients; keep their bits.
            p.seed = Some(match (v.as_u64(), v.as_i64()) {
                (Some(s), _) => s,
                (None, Some(s)) => s as u64,
                _ => return Err(format!("`seed` must be an integer, got {v}")),
            });
        }
        match params.get("stop") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => p.stop.push(s.clone()),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => p.stop.push(s.clone()),
                        other => {
                            return Err(format!("`stop` must be strings, got {other}"));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "`stop` must be a string or a list of strings, got {other}"
                ));
            }
        }
        p.stop.retain(|s| !s.is_empty());
        if let Some(n) = int("n")?
            && n != 1
        {
            return Err(format!(
                "`n` = {n}: the in-process engine generates one choice per request"
            ));
        }
        for (key, off) in UNSUPPORTED {
            if let Some(x) = num(key)?
                && x != *off
            {
                return Err(format!(
                    "`{key}` = {x}: not supported by the in-process engine (leave it at {off})"
                ));
            }
        }
        if params
            .get("logit_bias")
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        {
            return Err("`logit_bias` is not supported by the in-process engine".into());
        }
        Ok(p)
    }

    /// Whether tokens are drawn at random (temperature above 0).
    pub fn is_sampling(&self) -> bool {
        self.temperature > 0.0
    }
}

/// Picks tokens for one sequence.
#[derive(Debug)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    top_k: usize,
    min_p: f32,
    rng: Xoshiro256PlusPlus,
    /// Reused buffer of (id, logit) candidates.
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler for `params` (a seed is drawn when none is given).
    pub fn new(params: &GenParams) -> Sampler {
        let seed = params.seed.unwrap_or_else(rand::random);
        Sampler {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            min_p: params.min_p,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            scratch: Vec::new(),
        }
    }

    /// The next token after `logits`; `None` when every logit is NaN.
    pub fn sample(&mut self, logits: &[f32]) -> Option<u32> {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let c = &mut self.scratch;
        c.clear();
        c.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan())
                .map(|(i, &l)| (i as u32, l)),
        );
        if c.is_empty() {
            return None;
        }
        // Most likely first; ids break ties so the order is deterministic.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if self.top_k > 0 && self.top_k < c.len() {
            c.select_nth_unstable_by(self.top_k - 1, by_logit);
            c.truncate(self.top_k);
        }
        c.sort_unstable_by(by_logit);
        let max = c[0].1;
        let mut probs: Vec<f64> = c
            .iter()
            .map(|&(_, l)| (f64::from(l - max) / f64::from(self.temperature)).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        let mut keep = probs.len();
        if self.top_p < 1.0 {
            let mut mass = 0.0;
            for (i, p) in probs.iter().enumerate() {
                mass += p;
                if mass >= f64::from(self.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.min_p > 0.0 {
            let floor = probs[0] * f64::from(self.min_p);
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        let kept: f64 = probs[..keep].iter().sum();
        let mut r = self.rng.random::<f64>() * kept;
        for (i, p) in probs[..keep].iter().enumerate() {
            if r < *p {
                return Some(c[i].0);
            }
            r -= p;
        }
        Some(c[keep - 1].0)
    }
}

/// The arg-max of `logits`, the lowest id on an exact tie; `None` when all
/// are NaN.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Result<GenParams, String> {
        GenParams::from_openai(v.as_object().unwrap())
    }

    #[test]
    fn openai_keys_are_read_and_defaults_are_greedy() {
        let p = params(json!({})).unwrap();
        assert_eq!(p, GenParams::default());
        let p = params(
            json!({"max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": -1,
            "seed": 3, "stop": ["\n\n", ""], "stream": true, "n": 1}),
        )
        .unwrap();
        assert_eq!(p.max_tokens, Some(7));
        assert_eq!(p.temperature, 0.5);
        assert_eq!(p.top_p, 0.9);
        assert_eq!(p.top_k, 0);
        assert_eq!(p.seed, Some(3));
        assert_eq!(p.stop, vec!["\n\n".to_string()]);
        let p = params(json!({"max_completion_tokens": 9, "max_tokens": 7, "stop": "Q:"})).unwrap();
        assert_eq!(p.max_tokens, Some(9));
        assert_eq!(p.stop, vec!["Q:".to_string()]);
    }

    #[test]
    fn unsupported_or_bad_keys_are_refused_by_name() {
        for (v, key) in [
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"max_tokens": -3}), "max_tokens"),
            (json!({"temperature": -1}), "temperature"),
            (json!({"top_p": 0}), "top_p"),
            (json!({"stop": 3}), "stop"),
            (json!({"n": 2}), "`n`"),
            (json!({"presence_penalty": 0.5}), "presence_penalty"),
            (json!({"repetition_penalty": 1.2}), "repetition_penalty"),
            (json!({"logit_bias": {"1": 5}}), "logit_bias"),
            (json!({"seed": "x"}), "seed"),
        ] {
            let e = params(v.clone()).unwrap_err();
            assert!(e.contains(key), "{v}: {e}");
        }
        // "Off" values of unsupported keys are fine.
        params(json!({"presence_penalty": 0, "repetition_penalty": 1.0, "logit_bias": {}}))
            .unwrap();
    }

    #[test]
    fn greedy_takes_the_lowest_id_on_a_tie() {
        let mut s = Sampler::new(&GenParams::default());
        assert_eq!(s.sample(&[0.0, 2.0, 2.0, f32::NAN]), Some(1));
        assert_eq!(s.sample(&[f32::NAN]), None);
    }

    #[test]
    fn one_seed_gives_one_sequence_and_top_k_1_is_greedy() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 7) % 13) as f32 / 3.0).collect();
        let p = GenParams {
            temperature: 1.0,
            seed: Some(42),
            ..GenParams::default()
        };
        let draw = |p: &GenParams| {
            let mut s = Sampler::new(p);
            (0..64)
                .map(|_| s.sample(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(&p), draw(&p));
        let other = GenParams {
            seed: Some(43),
            ..p.clone()
        };
        assert_ne!(draw(&p), draw(&other));
        let distinct: std::collections::BTreeSet<_> = draw(&p).into_iter().collect();
        assert!(distinct.len() > 3, "sampling at temperature 1 varies");
        let top1 = GenParams {
            top_k: 1,
            ..p.clone()
        };
        let greedy = argmax(&logits).unwrap();
        assert!(draw(&top1).iter().all(|&t| t == greedy));
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Token 0 holds ~88% of the mass: top_p 0.5 keeps it alone.
        let logits = [4.0, 2.0, 1.0, 0.0];
        let p = GenParams {
            temperature: 1.0,
            top_p: 0.5,
            seed: Some(1),
            ..GenParams::default()
        };
        let mut s = Sampler::new(&p);
        assert!((0..200).all(|_| s.sample(&logits) == Some(0)));
        // min_p 0.5 drops everything below half of the best token.
        let p = GenParams {
            temperature: 1.0,
            min_p: 0.5,
            seed: Some(1),
            ..GenParams::default()
        };
        let mut s = Sampler::new(&p);
        assert!((0..200).all(|_| s.sample(&[1.0, 1.0, -5.0]).unwrap() < 2));
    }
}
