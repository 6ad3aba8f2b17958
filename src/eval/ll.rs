//! The loglikelihood path of the runner: each item's context and
//! continuations -> scores (a server's echoed prompt log-probabilities, or
//! the in-process engine's logits) -> one journal line per item.
//!
//! Owns the request plan lm-eval's `local-completions` follows (context and
//! continuation tokenised together when a tokenizer is given, else text and
//! `text_offset`), the per-(context, continuation) cache that makes resumes
//! and repeated questions free, sending an item's choices together as a
//! list prompt where the server takes one (and one by one where it does
//! not), and the one clear error for a server that does not echo prompt
//! log-probabilities.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde_json::{Map, Value};
use tokenizers::Tokenizer;
use tokio_util::sync::CancellationToken;

use super::{Backend, EvalError, Item, Stop, progress_bar, server_gone_after};
use crate::benchmarks::loglikelihood::{LlSpec, continuations};
use crate::client::loglik::{LlFailure, LlPrompt, LlScore, ShiftCheck};
use crate::client::{ErrorKind, Prompt, RequestError};
use crate::config::{BenchmarkPlan, EvalConfig};
use crate::record::{Boundary, ChoiceRecord, LoglikelihoodRecord, Outcome, SampleRecord};

/// Scores known per (context, continuation).
pub(crate) type LlCache = HashMap<(String, String), LlScore>;

/// What the loglikelihood path of one benchmark starts from.
pub(crate) struct LlState {
    /// Scores already journaled.
    pub cache: LlCache,
    /// The tokenizer for token-id prompts (`--tokenizer-path`), if any.
    pub tokenizer: Option<Arc<Tokenizer>>,
}

/// The cache from a journal's successful loglikelihood lines.
pub(crate) fn cache_from(records: &[SampleRecord]) -> LlCache {
    let mut out = LlCache::new();
    for r in records.iter().filter(|r| r.error.is_none()) {
        if let Some(ll) = &r.loglikelihood {
            for c in &ll.choices {
                out.insert(
                    (ll.context.clone(), c.continuation.clone()),
                    LlScore {
                        logprob: c.logprob,
                        tokens: c.tokens,
                        is_greedy: c.is_greedy,
                    },
                );
            }
        }
    }
    out
}

/// The error that stops the run when a server does not echo prompt
/// log-probabilities.
fn no_logprobs(plan: &BenchmarkPlan, url: &str, what: &str) -> EvalError {
    EvalError::Config(format!(
        "{} ({}): the server at {url} answered /v1/completions with `echo: true, logprobs: 1` \
         without the prompt tokens' log-probabilities ({what}); this recipe scores each choice \
         by them, so it needs a server that returns them: vLLM and llama-cpp-python's server \
         do, llama.cpp's llama-server does not (use a generative mode instead, e.g. --dataset-args \
         '{{\"{}\": {{\"mode\": \"native\"}}}}')",
        plan.bench.name, plan.recipe.id, plan.bench.name
    ))
}

/// The error that stops the run when a server's echoed log-probabilities
/// are one token late.
fn shifted(plan: &BenchmarkPlan, url: &str, evidence: &str) -> EvalError {
    EvalError::Config(format!(
        "{} ({}): the server at {url} echoes prompt log-probabilities shifted by one token \
         ({evidence}); every choice's score would be wrong, and its answers cannot be put \
         right. llama-cpp-python's server does this for models that add no BOS token \
         (GGUF `tokenizer.ggml.add_bos_token` false); use vLLM, a model that adds BOS, or \
         score in process (--model FILE.gguf without --api-url)",
        plan.bench.name, plan.recipe.id
    ))
}

/// The error that stops the run for a failure no other item can escape:
/// the server gives no usable prompt log-probabilities.
fn fatal(plan: &BenchmarkPlan, url: &str, res: &Result<Scored, LlFailure>) -> Option<EvalError> {
    match res {
        Err(LlFailure::NoPromptLogprobs { what }) => Some(no_logprobs(plan, url, what)),
        Err(LlFailure::ShiftedEcho { evidence }) => Some(shifted(plan, url, evidence)),
        _ => None,
    }
}

/// Why an item with an empty context fails over a server.
const EMPTY_CONTEXT: &str = "the context is empty: lm-eval scores such a continuation after its \
     tokenizer's BOS token (else EOS), which bench does not send over a server; score this \
     benchmark in process (--model without --api-url), where the engine does as lm-eval";

/// Everything the item futures share.
struct Shared<'a> {
    model: &'a str,
    params: Map<String, Value>,
    tokenizer: Option<Arc<Tokenizer>>,
    /// Whether the server takes a list prompt (cleared at its first refusal).
    lists: AtomicBool,
    cache: std::sync::Mutex<LlCache>,
    /// The server's echo alignment, checked once at the first echo that
    /// holds the prompt only: `Some(evidence)` when it is one token late.
    shift: tokio::sync::OnceCell<Option<String>>,
}

/// An item's outcome: its record (scores, or the failure).
struct Scored {
    record: LoglikelihoodRecord,
    latency_ms: f64,
    attempts: u32,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_ll_items(
    plan: &BenchmarkPlan,
    spec: &LlSpec,
    items: Vec<Arc<Item>>,
    backend: &Backend,
    cfg: &EvalConfig,
    journal: &mut super::JournalSink,
    cancel: &CancellationToken,
    state: LlState,
) -> Result<Stop, EvalError> {
    let LlState { cache, tokenizer } = state;
    let mut params: Map<String, Value> = plan.recipe.generation.clone();
    params.extend(cfg.generation.clone());
    let tokenizer = match backend {
        Backend::Local(_) => None,
        Backend::Http(_) => tokenizer,
    };
    let shared = Shared {
        model: &cfg.model,
        params,
        tokenizer,
        lists: AtomicBool::new(true),
        cache: std::sync::Mutex::new(cache),
        shift: tokio::sync::OnceCell::new(),
    };
    let url = match backend {
        Backend::Http(c) => crate::redact::strip_userinfo(&c.endpoints().completions),
        Backend::Local(_) => super::IN_PROCESS.to_string(),
    };
    let bar = progress_bar(cfg.progress, &plan.bench.name, items.len());
    let mut items = items.into_iter();
    // The first item alone: a server without prompt log-probabilities is
    // one clear error, not a journal of failures.
    let mut first = None;
    if let Some(it) = items.next() {
        let res = score_item(&shared, spec, &it, backend).await;
        if let Some(e) = fatal(plan, &url, &res) {
            return Err(e);
        }
        first = Some((it, res));
    }
    let mut write = |it: &Item, res: Result<Scored, LlFailure>| -> Result<bool, EvalError> {
        let connect = matches!(&res, Err(LlFailure::Request(e)) if e.kind == ErrorKind::Connect);
        journal.write(record(plan, spec, it, res))?;
        bar.inc(1);
        Ok(connect)
    };
    let mut connect_failures = 0usize;
    if let Some((it, res)) = first
        && write(&it, res)?
    {
        connect_failures += 1;
    }
    let shared = &shared;
    let mut results = futures::stream::iter(items.map(|it| async move {
        let res = score_item(shared, spec, &it, backend).await;
        (it, res)
    }))
    .buffer_unordered(cfg.concurrency.max(1));
    let limit = server_gone_after(cfg.concurrency);
    let mut stop = Stop::Done;
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => { stop = Stop::Cancelled; break; }
            next = results.next() => next,
        };
        let Some((it, res)) = next else { break };
        if let Some(e) = fatal(plan, &url, &res) {
            return Err(e);
        }
        if write(&it, res)? {
            connect_failures += 1;
        } else {
            connect_failures = 0;
        }
        if connect_failures >= limit {
            stop = Stop::ServerGone(connect_failures);
            break;
        }
    }
    bar.finish_and_clear();
    Ok(stop)
}

/// Score one item's choices: from the cache, else in one request (a list
/// prompt), else one request per choice when the server refuses lists.
async fn score_item(
    shared: &Shared<'_>,
    spec: &LlSpec,
    item: &Item,
    backend: &Backend,
) -> Result<Scored, LlFailure> {
    let Prompt::Text(context) = &item.prompt else {
        return Err(request_failure(
            "a loglikelihood context must be plain text".into(),
        ));
    };
    if context.is_empty() && matches!(backend, Backend::Http(_)) {
        return Err(request_failure(EMPTY_CONTEXT.into()));
    }
    let conts = continuations(spec, &item.sample, " ");
    let boundary = match (backend, &shared.tokenizer) {
        (Backend::Local(_), _) => Boundary::Engine,
        (_, Some(_)) => Boundary::Tokenizer,
        (_, None) => Boundary::TextOffset,
    };
    let mut known: Vec<Option<LlScore>> = {
        let cache = shared.cache.lock().unwrap_or_else(|e| e.into_inner());
        conts
            .iter()
            .map(|c| cache.get(&(context.clone(), c.clone())).copied())
            .collect()
    };
    let missing: Vec<usize> = (0..conts.len()).filter(|&i| known[i].is_none()).collect();
    let mut latency_ms = 0.0;
    let mut attempts = 0;
    let mut requests = 0;
    if !missing.is_empty() {
        let (scores, lat, att, n) = match backend {
            Backend::Local(engine) => {
                let wanted: Vec<String> = missing.iter().map(|&i| conts[i].clone()).collect();
                let started = std::time::Instant::now();
                let scores = engine
                    .loglikelihoods(context, &wanted)
                    .await
                    .map_err(|e| request_failure(e.to_string()))?;
                (scores, started.elapsed().as_secs_f64() * 1000.0, 1, 1)
            }
            Backend::Http(client) => {
                let prompts = missing
                    .iter()
                    .map(|&i| prompt_for(shared.tokenizer.as_deref(), context, &conts[i]))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(request_failure)?;
                let sent = send(shared, client, &prompts).await?;
                if sent.prompt_only_echo {
                    // Once per run, before any score of this server is
                    // journaled; the other items wait for the verdict.
                    let shift = shared
                        .shift
                        .get_or_try_init(|| check_shift(shared, client, &prompts[0]))
                        .await?;
                    if let Some(evidence) = shift {
                        return Err(LlFailure::ShiftedEcho {
                            evidence: evidence.clone(),
                        });
                    }
                }
                (sent.scores, sent.latency_ms, sent.attempts, sent.requests)
            }
        };
        let mut cache = shared.cache.lock().unwrap_or_else(|e| e.into_inner());
        for (&i, s) in missing.iter().zip(scores) {
            cache.insert((context.clone(), conts[i].clone()), s);
            known[i] = Some(s);
        }
        latency_ms = lat;
        attempts = att;
        requests = n;
    }
    let choices = conts
        .into_iter()
        .zip(known)
        .map(|(c, s)| {
            // Every missing score was filled above.
            let s = s.unwrap_or(LlScore {
                logprob: f64::NEG_INFINITY,
                tokens: 0,
                is_greedy: false,
            });
            ChoiceRecord {
                bytes: c.len(),
                chars: c.chars().count(),
                continuation: c,
                logprob: s.logprob,
                tokens: s.tokens,
                is_greedy: s.is_greedy,
            }
        })
        .collect();
    Ok(Scored {
        record: LoglikelihoodRecord {
            context: context.clone(),
            boundary,
            choices,
            requests,
        },
        latency_ms,
        attempts,
    })
}

/// One list request, or one request per prompt once the server has
/// refused a list (llama-cpp-python's server takes one prompt).
async fn send(
    shared: &Shared<'_>,
    client: &crate::client::Client,
    prompts: &[LlPrompt],
) -> Result<Sent, LlFailure> {
    if prompts.len() > 1 && shared.lists.load(Ordering::Relaxed) {
        match client
            .loglikelihoods(shared.model, prompts, &shared.params)
            .await
        {
            Ok(a) => {
                return Ok(Sent {
                    scores: a.scores,
                    latency_ms: a.latency_ms,
                    attempts: a.attempts,
                    requests: 1,
                    prompt_only_echo: a.prompt_only_echo,
                });
            }
            // A refused list (4xx, or a 5xx from a server that cannot
            // batch): ask one by one from now on.
            Err(LlFailure::Request(e))
                if matches!(
                    e.kind,
                    ErrorKind::Client | ErrorKind::Server | ErrorKind::ErrorBody
                ) =>
            {
                shared.lists.store(false, Ordering::Relaxed);
            }
            Err(LlFailure::NoPromptLogprobs { .. }) => {
                // Maybe only lists lose them: try one prompt before judging.
                shared.lists.store(false, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = Sent {
        scores: Vec::with_capacity(prompts.len()),
        latency_ms: 0.0,
        attempts: 0,
        requests: prompts.len(),
        prompt_only_echo: false,
    };
    for p in prompts {
        let a = client
            .loglikelihoods(shared.model, std::slice::from_ref(p), &shared.params)
            .await?;
        out.scores.extend(a.scores);
        out.latency_ms += a.latency_ms;
        out.attempts += a.attempts;
        out.prompt_only_echo |= a.prompt_only_echo;
    }
    Ok(out)
}

/// The answers to one item's prompts.
struct Sent {
    scores: Vec<LlScore>,
    latency_ms: f64,
    attempts: u32,
    requests: usize,
    /// Whether some echo held the prompt only (then the alignment is checked).
    prompt_only_echo: bool,
}

/// Whether the server's echo is one token late ([`Client::echo_shift`]),
/// asked with `prompt`'s context alone first (a context ending in
/// `Answer:` is hardly ever followed by an end of text, which would leave
/// no generated token to compare), then with the whole prompt. `None`
/// when it is not, or when neither answer can tell.
///
/// [`Client::echo_shift`]: crate::client::Client::echo_shift
async fn check_shift(
    shared: &Shared<'_>,
    client: &crate::client::Client,
    prompt: &LlPrompt,
) -> Result<Option<String>, LlFailure> {
    for p in [prompt.context_only(), Some(prompt.clone())]
        .into_iter()
        .flatten()
    {
        match client.echo_shift(shared.model, &p, &shared.params).await? {
            ShiftCheck::Shifted { evidence } => return Ok(Some(evidence)),
            ShiftCheck::Aligned => return Ok(None),
            ShiftCheck::Inconclusive => {}
        }
    }
    Ok(None)
}

/// The prompt for one (context, continuation): token ids when a tokenizer
/// is given, else text with the context's length in characters.
fn prompt_for(
    tok: Option<&Tokenizer>,
    context: &str,
    continuation: &str,
) -> Result<LlPrompt, String> {
    match tok {
        Some(tok) => {
            let (mut ids, cont) = crate::client::loglik::encode_pair(tok, context, continuation)?;
            let n = cont.len();
            ids.extend(cont);
            Ok(LlPrompt::Tokens {
                ids,
                continuation: n,
            })
        }
        None => Ok(LlPrompt::Text {
            text: format!("{context}{continuation}"),
            context_chars: context.chars().count(),
        }),
    }
}

fn request_failure(message: String) -> LlFailure {
    LlFailure::Request(RequestError {
        kind: ErrorKind::Decode,
        status: None,
        message,
        attempts: 1,
    })
}

/// The journal line of one item.
fn record(
    plan: &BenchmarkPlan,
    spec: &LlSpec,
    item: &Item,
    res: Result<Scored, LlFailure>,
) -> SampleRecord {
    let sample = &item.sample;
    let context = match &item.prompt {
        Prompt::Text(t) => Some(t.clone()),
        Prompt::Messages(_) => None,
    };
    let mut rec = SampleRecord {
        benchmark: plan.bench.name.clone(),
        subset: sample.subset.clone(),
        split: sample.split.clone(),
        index: sample.index,
        repeat: None,
        id: sample.id.clone(),
        groups: plan.group_values(sample),
        mode: plan.recipe.id.clone(),
        shots: item.shots.clone(),
        prompt: context,
        messages: None,
        response: None,
        reasoning: None,
        finish_reason: None,
        extracted: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        primary: plan.recipe.primary().to_string(),
        gold: sample.target.clone(),
        correct: None,
        outcome: Outcome::Failed,
        error: None,
        latency_ms: None,
        ttft_ms: None,
        attempts: 0,
        usage: None,
        loglikelihood: None,
        scores: BTreeMap::new(),
    };
    match res {
        Err(LlFailure::Request(e)) => {
            rec.attempts = e.attempts;
            rec.error = Some(e);
        }
        Err(LlFailure::NoPromptLogprobs { what }) => {
            rec.error = Some(RequestError {
                kind: ErrorKind::Decode,
                status: None,
                message: format!("no prompt log-probabilities: {what}"),
                attempts: 1,
            });
        }
        Err(LlFailure::ShiftedEcho { evidence }) => {
            rec.error = Some(RequestError {
                kind: ErrorKind::Decode,
                status: None,
                message: format!("prompt log-probabilities shifted by one token: {evidence}"),
                attempts: 1,
            });
        }
        Ok(s) => {
            rec.latency_ms = Some(s.latency_ms);
            rec.attempts = s.attempts;
            spec.apply(sample, &mut rec, s.record);
        }
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::{Sample, SampleFields};

    /// lm-eval conditions an empty context on its tokenizer's BOS (else
    /// EOS) token, which bench cannot send over a server: the item fails
    /// at once with a message saying so and where it works (in process),
    /// and nothing is sent (the server at port 9 would refuse a connect).
    #[tokio::test]
    async fn an_empty_context_over_a_server_is_a_clear_item_error() {
        let bench = crate::benchmarks::get("arc_easy").expect("arc_easy");
        let recipe = bench
            .recipes
            .iter()
            .find(|r| r.id == "lm-eval-ll")
            .expect("lm-eval-ll");
        let spec = recipe
            .request
            .loglikelihood()
            .expect("a loglikelihood recipe");
        let fields = SampleFields {
            question: "q".into(),
            choices: vec!["yes".into(), "no".into()],
            target: "A".into(),
            ..SampleFields::default()
        };
        let item = Item {
            sample: Sample::from_fields(fields, "ARC-Easy", "test", 0),
            prompt: Prompt::Text(String::new()),
            shots: vec![],
        };
        let client =
            crate::client::Client::new(crate::client::ClientConfig::new("http://127.0.0.1:9/v1"))
                .unwrap();
        let backend = Backend::Http(Box::new(client));
        let shared = Shared {
            model: "m",
            params: Map::new(),
            tokenizer: None,
            lists: AtomicBool::new(true),
            cache: std::sync::Mutex::new(LlCache::new()),
            shift: tokio::sync::OnceCell::new(),
        };
        match score_item(&shared, spec, &item, &backend).await {
            Err(LlFailure::Request(e)) => {
                assert_eq!(e.message, EMPTY_CONTEXT);
                assert!(e.message.contains("BOS token (else EOS)"), "{e:?}");
                assert!(e.message.contains("in process"), "{e:?}");
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("an empty context was scored over a server"),
        }
    }
}
