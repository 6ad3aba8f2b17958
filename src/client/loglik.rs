//! Loglikelihood requests over `/v1/completions`: the prompt echoed back
//! with each prompt token's log-probability, as lm-eval's
//! `local-completions` asks for it (`echo: true`, `max_tokens: 1`,
//! `logprobs: 1`, `temperature: 0`, `seed`), and finding the
//! continuation's tokens in that echo.
//!
//! Owns the request body, reading `choices[].logprobs` and the two ways of
//! locating the continuation: by token count (token-id prompts, lm-eval's
//! way: the continuation is the last tokens of the prompt) and by
//! `text_offset` (text prompts: the tokens starting at or after the
//! context's end). Does not own what the scores mean (the recipes do).
//!
//! Servers differ in what the echo holds: vLLM echoes the prompt tokens and
//! the generated one; llama-cpp-python only the prompt tokens (its first
//! token's log-probability is `null`); llama.cpp's llama-server ignores
//! `echo` for log-probabilities and returns only the generated token's,
//! which cannot be scored. Locating the continuation from the end of the
//! prompt (the usage's `prompt_tokens`, else the ids sent) or by offset
//! handles the first two alike; the third is [`LlFailure::NoPromptLogprobs`].
//!
//! llama-cpp-python's echo is also one token late when the model adds no
//! BOS (its `_create_completion` pairs the logits row *after* each prompt
//! token with that token): [`Client::echo_shift`] detects it, and such a
//! server is refused ([`LlFailure::ShiftedEcho`]) rather than read.

use std::time::Instant;

use bytes::Bytes;
use reqwest::header;
use serde_json::{Map, Value, json};

use super::retry::{backoff, is_retryable};
use super::{Client, ErrorKind, Failure, RequestError, status_failure};

/// One prompt to score: the context and one continuation.
#[derive(Debug, Clone, PartialEq)]
pub enum LlPrompt {
    /// Token ids of context + continuation tokenised together, and how many
    /// of the last ones are the continuation's.
    Tokens {
        /// All ids sent.
        ids: Vec<u32>,
        /// Continuation tokens (the tail of `ids`).
        continuation: usize,
    },
    /// Context + continuation as text, and the context's length in
    /// characters (where the continuation starts).
    Text {
        /// The text sent.
        text: String,
        /// Characters of the context.
        context_chars: usize,
    },
}

impl LlPrompt {
    /// The context part alone (`None` when it is empty).
    pub fn context_only(&self) -> Option<LlPrompt> {
        match self {
            LlPrompt::Tokens { ids, continuation } => {
                let n = ids.len().checked_sub(*continuation).filter(|&n| n > 0)?;
                Some(LlPrompt::Tokens {
                    ids: ids[..n].to_vec(),
                    continuation: 0,
                })
            }
            LlPrompt::Text {
                text,
                context_chars,
            } => (*context_chars > 0).then(|| LlPrompt::Text {
                text: text.chars().take(*context_chars).collect(),
                context_chars: *context_chars,
            }),
        }
    }

    fn json(&self) -> Value {
        match self {
            LlPrompt::Tokens { ids, .. } => json!(ids),
            LlPrompt::Text { text, .. } => json!(text),
        }
    }
}

/// One continuation's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlScore {
    /// Sum of its tokens' log-probabilities.
    pub logprob: f64,
    /// Its tokens.
    pub tokens: usize,
    /// Whether each token was the top-1 one (lm-eval: its log-probability
    /// equals the largest in `top_logprobs`).
    pub is_greedy: bool,
}

/// Why a loglikelihood request gave no scores.
#[derive(Debug, Clone, PartialEq)]
pub enum LlFailure {
    /// The request failed (after its retries).
    Request(RequestError),
    /// The server answered, without log-probabilities for the prompt
    /// tokens: `what` says what it sent instead.
    NoPromptLogprobs {
        /// What the answer held.
        what: String,
    },
    /// The server echoes prompt log-probabilities one token late (each
    /// token scored by the logits that already include it), so no score
    /// can be read from it: `evidence` says what showed it
    /// ([`Client::echo_shift`]).
    ShiftedEcho {
        /// What showed the shift.
        evidence: String,
    },
}

/// The request body: lm-eval's loglikelihood payload, with `prompt` one
/// prompt or a list of them.
pub fn body(model: &str, prompts: &[LlPrompt], params: &Map<String, Value>) -> Map<String, Value> {
    let mut b = params.clone();
    b.insert("model".into(), json!(model));
    let prompt = match prompts {
        [one] => one.json(),
        many => Value::Array(many.iter().map(LlPrompt::json).collect()),
    };
    b.insert("prompt".into(), prompt);
    b.remove("stream");
    b.remove("stream_options");
    b
}

/// Scores of `prompts` from a parsed completions answer (choices matched
/// by `index`).
pub fn scores(answer: &Value, prompts: &[LlPrompt]) -> Result<Vec<LlScore>, LlFailure> {
    let no = |what: String| LlFailure::NoPromptLogprobs { what };
    let choices = answer
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| no("no `choices`".into()))?;
    let prompt_tokens = answer
        .pointer("/usage/prompt_tokens")
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    let mut out = Vec::with_capacity(prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        let choice = choices
            .iter()
            .find(|c| c.get("index").and_then(Value::as_u64) == Some(i as u64))
            .or_else(|| (prompts.len() == 1).then(|| choices.first()).flatten())
            .ok_or_else(|| {
                no(format!(
                    "no choice with index {i} for {} prompts",
                    prompts.len()
                ))
            })?;
        let lp = match choice.get("logprobs") {
            Some(Value::Object(o)) => o,
            Some(Value::Null) | None => return Err(no("`logprobs: null`".into())),
            Some(other) => {
                return Err(no(format!("`logprobs` of another shape: {}", short(other))));
            }
        };
        let token_logprobs: Vec<Option<f64>> = lp
            .get("token_logprobs")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                no("no `logprobs.token_logprobs` (the chat-style `content` list?)".into())
            })?
            .iter()
            .map(Value::as_f64)
            .collect();
        let top: Vec<Option<f64>> = lp
            .get("top_logprobs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| {
                        t.as_object()
                            .and_then(|o| o.values().filter_map(Value::as_f64).reduce(f64::max))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let range = match p {
            LlPrompt::Tokens { ids, continuation } => {
                // Prompt tokens echoed: the usage's count when it is one of
                // ours (a single prompt), else the ids sent.
                let echoed = match prompt_tokens {
                    Some(n) if prompts.len() == 1 && n <= token_logprobs.len() => n,
                    _ => ids.len(),
                };
                if token_logprobs.len() < echoed || echoed < *continuation {
                    return Err(no(format!(
                        "{} token log-probabilities for a prompt of {} tokens",
                        token_logprobs.len(),
                        ids.len()
                    )));
                }
                echoed - continuation..echoed
            }
            LlPrompt::Text {
                text,
                context_chars,
            } => {
                let offsets: Vec<usize> = lp
                    .get("text_offset")
                    .and_then(Value::as_array)
                    .ok_or_else(|| no("no `logprobs.text_offset`".into()))?
                    .iter()
                    .map(|v| v.as_u64().unwrap_or(0) as usize)
                    .collect();
                let tokens: Vec<usize> = lp
                    .get("tokens")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|t| t.as_str().map_or(0, |s| s.chars().count()))
                            .collect()
                    })
                    .unwrap_or_default();
                let total = text.chars().count();
                // The echo starts where the prompt does; tokens at or past
                // its end are generated.
                let end = offsets.iter().take_while(|&&o| o < total).count();
                let mut start = offsets.iter().take_while(|&&o| o < *context_chars).count();
                if start > 0
                    && tokens
                        .get(start - 1)
                        .is_some_and(|len| offsets[start - 1] + len > *context_chars)
                {
                    start -= 1;
                }
                if end <= start || token_logprobs.len() < end {
                    return Err(no(format!(
                        "{} token log-probabilities with offsets up to {} for a prompt of {total} characters",
                        token_logprobs.len(),
                        offsets.last().copied().unwrap_or(0)
                    )));
                }
                start..end
            }
        };
        let mut logprob = 0.0;
        let mut is_greedy = true;
        for k in range.clone() {
            let Some(x) = token_logprobs[k] else {
                return Err(no(format!("`null` log-probability for prompt token {k}")));
            };
            logprob += x;
            match top.get(k).copied().flatten() {
                Some(best) if x >= best => {}
                _ => is_greedy = false,
            }
        }
        out.push(LlScore {
            logprob,
            tokens: range.len(),
            is_greedy,
        });
    }
    Ok(out)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}...", &s[..s.floor_char_boundary(120)])
    } else {
        s
    }
}

/// lm-eval's `_encode_pair`: trailing whitespace of the context moves to
/// the continuation; the whole is tokenised, the context alone too, and the
/// continuation is the whole's tokens past the context's count. No special
/// tokens (lm-eval's API models add none unless `add_bos_token`).
pub fn encode_pair(
    tok: &tokenizers::Tokenizer,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>), String> {
    let trimmed = context.trim_end();
    let (ctx, cont) = if trimmed.len() < context.len() {
        (
            trimmed,
            format!("{}{continuation}", &context[trimmed.len()..]),
        )
    } else {
        (context, continuation.to_string())
    };
    let enc = |t: &str| {
        tok.encode_fast(t, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("tokenizing: {e}"))
    };
    let whole = enc(&format!("{ctx}{cont}"))?;
    let ctx_ids = enc(ctx)?;
    let cont_ids = whole.get(ctx_ids.len()..).unwrap_or_default().to_vec();
    Ok((ctx_ids, cont_ids))
}

/// A successful loglikelihood request.
#[derive(Debug, Clone, PartialEq)]
pub struct LlAnswer {
    /// One score per prompt.
    pub scores: Vec<LlScore>,
    /// Wall time of the successful attempt, ms.
    pub latency_ms: f64,
    /// Attempts made.
    pub attempts: u32,
    /// Whether some echo held the prompt's tokens only
    /// ([`prompt_only_echo`]).
    pub prompt_only_echo: bool,
}

impl Client {
    /// Score `prompts` in one `/v1/completions` request (a list prompt when
    /// there are several), retrying transient failures as
    /// [`Client::generate`] does.
    pub async fn loglikelihoods(
        &self,
        model: &str,
        prompts: &[LlPrompt],
        params: &Map<String, Value>,
    ) -> Result<LlAnswer, LlFailure> {
        let (answer, latency_ms, attempts) = self
            .post_completions(Value::Object(body(model, prompts, params)))
            .await
            .map_err(LlFailure::Request)?;
        let scores = scores(&answer, prompts)?;
        Ok(LlAnswer {
            scores,
            latency_ms,
            attempts,
            prompt_only_echo: prompt_only_echo(&answer, prompts),
        })
    }

    /// Checks whether the server scores each echoed prompt token with the
    /// logits computed *after* it (shifted by one token), by asking for
    /// `prompt` twice: echoed, and not echoed with one greedy token. The
    /// logits after the whole prompt give that token; a shifted server
    /// shows the same token with the same log-probability as the top
    /// alternative of the last prompt token. See [`ShiftCheck`].
    ///
    /// llama-cpp-python 0.3's `_create_completion` pairs
    /// `logits_to_logprobs(self._scores)[0:]` with the prompt tokens after
    /// dropping a leading BOS: right when the model adds BOS, one row late
    /// for every token when it does not.
    pub async fn echo_shift(
        &self,
        model: &str,
        prompt: &LlPrompt,
        params: &Map<String, Value>,
    ) -> Result<ShiftCheck, LlFailure> {
        let mut echoed = body(model, std::slice::from_ref(prompt), params);
        let (answer, _, _) = self
            .post_completions(Value::Object(echoed.clone()))
            .await
            .map_err(LlFailure::Request)?;
        echoed.insert("echo".into(), json!(false));
        echoed.insert("max_tokens".into(), json!(1));
        echoed.insert("temperature".into(), json!(0));
        let (generated, _, _) = self
            .post_completions(Value::Object(echoed))
            .await
            .map_err(LlFailure::Request)?;
        Ok(shift_evidence(&answer, &generated, prompt))
    }

    /// POSTs `body` to `/v1/completions` and parses the JSON answer,
    /// retrying transient failures as [`Client::generate`] does. Returns
    /// the answer, the successful attempt's wall time (ms) and the attempts.
    async fn post_completions(&self, body: Value) -> Result<(Value, f64, u32), RequestError> {
        let url = &self.endpoints.completions;
        let body = Bytes::from(body.to_string());
        let max_attempts = self.cfg.max_retries.saturating_add(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = Instant::now();
            let attempt = async {
                let resp = self
                    .http
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| Failure::transport(&e))?;
                if !resp.status().is_success() {
                    return Err(status_failure(resp).await);
                }
                let bytes = resp.bytes().await.map_err(|e| Failure::transport(&e))?;
                serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    Failure::new(ErrorKind::Decode, format!("the answer is not JSON: {e}"))
                })
            };
            let result = tokio::time::timeout(self.cfg.timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        ErrorKind::Timeout,
                        format!(
                            "no complete response within the {:?} per-attempt timeout",
                            self.cfg.timeout
                        ),
                    ))
                });
            let failure = match result {
                Ok(answer) => {
                    let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
                    if let Some(e) = answer.get("error").filter(|e| !e.is_null()) {
                        return Err(self.request_error(
                            Failure::new(ErrorKind::ErrorBody, short(e)),
                            attempts,
                        ));
                    }
                    return Ok((answer, latency_ms, attempts));
                }
                Err(f) => f,
            };
            if !is_retryable(failure.kind) || attempts >= max_attempts {
                return Err(self.request_error(failure, attempts));
            }
            let delay = match failure.retry_after {
                Some(asked) => asked.min(self.cfg.retry_max),
                None => backoff(attempts - 1, self.cfg.retry_base, self.cfg.retry_max),
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// The `logprobs` object of the choice with `index` (or the only choice).
fn choice_logprobs(answer: &Value, index: usize, n: usize) -> Option<&Map<String, Value>> {
    let choices = answer.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(index as u64))
        .or_else(|| (n == 1).then(|| choices.first()).flatten())?
        .get("logprobs")?
        .as_object()
}

/// Whether the echo of some prompt holds only the prompt's tokens, without
/// the generated one (llama-cpp-python's shape; vLLM appends the generated
/// token). Only such echoes can hide a one-token shift: see
/// [`Client::echo_shift`].
pub fn prompt_only_echo(answer: &Value, prompts: &[LlPrompt]) -> bool {
    prompts.iter().enumerate().any(|(i, p)| {
        let Some(lp) = choice_logprobs(answer, i, prompts.len()) else {
            return false;
        };
        match p {
            LlPrompt::Tokens { ids, .. } => lp
                .get("token_logprobs")
                .and_then(Value::as_array)
                .is_some_and(|a| a.len() <= ids.len()),
            LlPrompt::Text { text, .. } => {
                let total = text.chars().count() as u64;
                lp.get("text_offset")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().all(|o| o.as_u64().is_some_and(|o| o < total)))
            }
        }
    })
}

/// What [`Client::echo_shift`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum ShiftCheck {
    /// The echo is not one token late.
    Aligned,
    /// The echo is one token late: what showed it.
    Shifted {
        /// The last prompt token's top alternative and the generated token.
        evidence: String,
    },
    /// Nothing to compare: no generated token (it was an end of text), or
    /// no alternatives for the last prompt token.
    Inconclusive,
}

/// Whether `echoed` (the prompt echoed with its log-probabilities) is
/// shifted by one token, given `generated` (the same prompt, not echoed,
/// one greedy token with its log-probability): it is when the last prompt
/// token's top alternative is that generated token at the same
/// log-probability (within 1e-3), i.e. its row is the one after the whole
/// prompt.
pub fn shift_evidence(echoed: &Value, generated: &Value, prompt: &LlPrompt) -> ShiftCheck {
    let Some(((token, top), (next, next_lp))) =
        last_prompt_top(echoed, prompt).zip(first_generated(generated))
    else {
        return ShiftCheck::Inconclusive;
    };
    // The same token may be spelled with or without its leading space
    // (detokenised after the prompt, or alone).
    let shown = top
        .get(&next)
        .or_else(|| {
            top.iter()
                .find(|(k, _)| k.trim_start() == next.trim_start())
                .map(|(_, v)| v)
        })
        .and_then(Value::as_f64);
    match shown {
        Some(shown) if (shown - next_lp).abs() <= 1e-3 => ShiftCheck::Shifted {
            evidence: format!(
                "the last prompt token {token:?} is echoed with the top alternative {next:?} at \
                 {shown:.4}, which is the token the server generates after the whole prompt, at \
                 {next_lp:.4}: each prompt token is scored by the logits that already include it"
            ),
        },
        _ => ShiftCheck::Aligned,
    }
}

/// The first generated token of a non-echoed answer and its
/// log-probability.
fn first_generated(answer: &Value) -> Option<(String, f64)> {
    let g = choice_logprobs(answer, 0, 1)?;
    let next = g.get("tokens")?.get(0)?.as_str()?;
    let lp = g.get("token_logprobs")?.get(0)?.as_f64()?;
    Some((next.to_string(), lp))
}

/// The last prompt token of an echoed answer and its `top_logprobs`.
fn last_prompt_top<'a>(
    echoed: &'a Value,
    prompt: &LlPrompt,
) -> Option<(String, &'a Map<String, Value>)> {
    let lp = choice_logprobs(echoed, 0, 1)?;
    let n = lp.get("token_logprobs")?.as_array()?.len();
    // The last prompt token's entry.
    let last = match prompt {
        LlPrompt::Tokens { ids, .. } => ids.len().min(n).checked_sub(1)?,
        LlPrompt::Text { text, .. } => {
            let total = text.chars().count() as u64;
            lp.get("text_offset")?
                .as_array()?
                .iter()
                .take_while(|o| o.as_u64().is_some_and(|o| o < total))
                .count()
                .checked_sub(1)?
        }
    };
    let token = lp
        .get("tokens")
        .and_then(|t| t.get(last))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let top = lp.get("top_logprobs")?.get(last)?.as_object()?;
    Some((token.to_string(), top))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(tokens: &[&str], lps: &[Option<f64>], offsets: &[usize]) -> Value {
        let top: Vec<Value> = lps
            .iter()
            .map(|l| match l {
                Some(x) => json!({"t": x}),
                None => Value::Null,
            })
            .collect();
        json!({"choices": [{"index": 0, "text": "", "logprobs": {
            "tokens": tokens, "token_logprobs": lps, "top_logprobs": top, "text_offset": offsets}}]})
    }

    #[test]
    fn text_offsets_find_the_continuation_with_or_without_the_generated_token() {
        // "Q: a\nA: yes" + generated "!" (vLLM) ; context is 7 chars.
        let text = "Q: a\nA: yes".to_string();
        let p = [LlPrompt::Text {
            text: text.clone(),
            context_chars: 7,
        }];
        let a = echo(
            &["Q", ":", " a", "\n", "A", ":", " yes", "!"],
            &[
                None,
                Some(-1.0),
                Some(-2.0),
                Some(-1.0),
                Some(-1.0),
                Some(-1.0),
                Some(-0.5),
                Some(-3.0),
            ],
            &[0, 1, 2, 4, 5, 6, 7, 11],
        );
        let s = scores(&a, &p).unwrap();
        assert_eq!((s[0].logprob, s[0].tokens, s[0].is_greedy), (-0.5, 1, true));
        // llama-cpp-python: no generated token in the echo.
        let a = echo(
            &["Q", ":", " a", "\n", "A", ":", " y", "es"],
            &[
                None,
                Some(-1.0),
                Some(-2.0),
                Some(-1.0),
                Some(-1.0),
                Some(-1.0),
                Some(-0.5),
                Some(-0.25),
            ],
            &[0, 1, 2, 4, 5, 6, 7, 9],
        );
        let s = scores(&a, &p).unwrap();
        assert_eq!((s[0].logprob, s[0].tokens), (-0.75, 2));
        // A token straddling the join counts as continuation.
        let p = [LlPrompt::Text {
            text,
            context_chars: 8,
        }];
        let s = scores(&a, &p).unwrap();
        assert_eq!((s[0].logprob, s[0].tokens), (-0.75, 2));
    }

    #[test]
    fn token_prompts_take_the_tail_of_the_echoed_prompt() {
        let p = [LlPrompt::Tokens {
            ids: vec![1, 2, 3, 4],
            continuation: 2,
        }];
        let a = echo(
            &["a", "b", "c", "d", "e"],
            &[None, Some(-1.0), Some(-2.0), Some(-4.0), Some(-9.0)],
            &[0, 1, 2, 3, 4],
        );
        let s = scores(&a, &p).unwrap();
        assert_eq!((s[0].logprob, s[0].tokens), (-6.0, 2));
        // Only the generated token (llama-server): refused, saying so.
        let a = echo(&["e"], &[Some(-9.0)], &[4]);
        match scores(&a, &p) {
            Err(LlFailure::NoPromptLogprobs { what }) => assert!(
                what.contains("1 token log-probabilities for a prompt of 4 tokens"),
                "{what}"
            ),
            other => panic!("{other:?}"),
        }
        let a = json!({"choices": [{"index": 0, "text": "x", "logprobs": null}]});
        assert!(matches!(
            scores(&a, &p),
            Err(LlFailure::NoPromptLogprobs { .. })
        ));
    }

    /// llama-cpp-python's answers for "The cat sat on the mat" on the tiny
    /// GGUF without BOS (measured with 0.3.36, trimmed to the last tokens):
    /// the echo's last prompt token "at" shows " P" at -2.5682, the token
    /// generated after the whole prompt at the same log-probability.
    #[test]
    fn shift_evidence_finds_a_one_token_late_echo_and_only_that() {
        let prompt = LlPrompt::Text {
            text: "The cat sat on the mat".into(),
            context_chars: 18,
        };
        let echoed = |top_last: Value| {
            json!({"choices": [{"index": 0, "text": "The cat sat on the mat P", "logprobs": {
                "tokens": ["T", " m", "at"], "text_offset": [0, 18, 20],
                "token_logprobs": [null, -12.0148, -8.0965],
                "top_logprobs": [null, {" Turn": -3.0059, " m": -12.0148}, top_last]}}]})
        };
        let generated = json!({"choices": [{"index": 0, "text": " P", "logprobs": {
            "tokens": [" P"], "text_offset": [22], "token_logprobs": [-2.5682],
            "top_logprobs": [{" P": -2.5682}]}}]});
        let late = echoed(json!({" P": -2.5682, "at": -8.0965}));
        match shift_evidence(&late, &generated, &prompt) {
            ShiftCheck::Shifted { evidence } => {
                assert!(evidence.contains("\"at\""), "{evidence}");
                assert!(evidence.contains("\" P\" at -2.5682"), "{evidence}");
            }
            other => panic!("{other:?}"),
        }
        // Aligned: the last token's row is the one before it.
        let aligned = echoed(json!({" thing": -2.4, "at": -6.546}));
        assert_eq!(
            shift_evidence(&aligned, &generated, &prompt),
            ShiftCheck::Aligned
        );
        // The same token at another log-probability is no evidence.
        let other = echoed(json!({" P": -2.9, "at": -6.546}));
        assert_eq!(
            shift_evidence(&other, &generated, &prompt),
            ShiftCheck::Aligned
        );
        // Nothing generated (an end of text): nothing to compare.
        let nothing = json!({"choices": [{"index": 0, "text": "", "logprobs": {
            "tokens": [], "text_offset": [], "token_logprobs": [], "top_logprobs": []}}]});
        assert_eq!(
            shift_evidence(&late, &nothing, &prompt),
            ShiftCheck::Inconclusive
        );
        // Which echoes are the prompt's only.
        assert!(prompt_only_echo(&late, std::slice::from_ref(&prompt)));
        let with_generated = json!({"choices": [{"index": 0, "logprobs": {
            "text_offset": [0, 18, 20, 22], "token_logprobs": [null, -1.0, -1.0, -1.0]}}]});
        assert!(!prompt_only_echo(
            &with_generated,
            std::slice::from_ref(&prompt)
        ));
    }

    #[test]
    fn context_only_cuts_the_continuation_off() {
        let t = LlPrompt::Text {
            text: "Q: é?\nA: yes".into(),
            context_chars: 8,
        };
        assert_eq!(
            t.context_only(),
            Some(LlPrompt::Text {
                text: "Q: é?\nA:".into(),
                context_chars: 8
            })
        );
        let ids = LlPrompt::Tokens {
            ids: vec![1, 2, 3],
            continuation: 1,
        };
        assert_eq!(
            ids.context_only(),
            Some(LlPrompt::Tokens {
                ids: vec![1, 2],
                continuation: 0
            })
        );
        let empty = LlPrompt::Tokens {
            ids: vec![1],
            continuation: 1,
        };
        assert_eq!(empty.context_only(), None);
    }
}
