//! The engine thread: continuous batching over a [`BatchModel`].
//!
//! One OS thread owns the model. Requests arrive as [`Job`]s on a channel;
//! each gets a slot (its own KV cache) while it runs. Every step, new jobs
//! are admitted up to the model's batch size and prefilled, then all running
//! sequences advance by one token in a single batched forward pass, so a
//! sequence joins as soon as a slot is free and leaves as soon as it ends.
//! Tokens go back to the requester on an unbounded channel (the requester
//! turns them into text); a requester that hangs up (a stop string matched,
//! a client disconnected, Ctrl-C) frees its slot at the next step.
//!
//! A panic inside the model (a bug, never input-driven by design) fails the
//! requests in that step with a message instead of taking the process down.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::BatchModel;
use super::sample::{GenParams, Sampler};

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model produced an end-of-generation token.
    Eos,
    /// `max_tokens` were generated.
    Length,
}

/// What the engine thread tells a requester.
#[derive(Debug, Clone)]
pub enum Event {
    /// The prompt is being prefilled (the request left the queue).
    Started {
        /// When the prefill began.
        at: Instant,
    },
    /// A generated token (never an end-of-generation token).
    Token {
        /// Its id.
        id: u32,
        /// When it was sampled.
        at: Instant,
    },
    /// Generation ended; no event follows.
    Finished {
        /// Why.
        finish: Finish,
        /// Tokens generated, counting an end-of-generation token.
        generated: usize,
        /// When.
        at: Instant,
    },
    /// The model failed; no event follows.
    Failed(String),
    /// A scoring job's answer: per continuation, the sum of its tokens'
    /// log-probabilities after the prompt, and whether each was the
    /// argmax. No event follows.
    Scored(Vec<(f64, usize, bool)>),
}

/// One request for the engine thread.
pub struct Job {
    /// Prompt token ids (not empty, all inside the vocabulary).
    pub prompt: Vec<u32>,
    /// New tokens at most (at least 1; prompt plus this fits the context).
    pub max_new: usize,
    /// Sampling settings.
    pub params: GenParams,
    /// Where the events go.
    pub events: UnboundedSender<Event>,
    /// Score these continuations after `prompt` instead of generating
    /// (loglikelihood requests): answered by one [`Event::Scored`].
    pub score: Option<Vec<Vec<u32>>>,
}

/// Counters the engine thread keeps up to date, for `/metrics` and logs.
#[derive(Debug, Default)]
pub struct Load {
    /// Sequences decoding now.
    pub running: AtomicUsize,
    /// Jobs received and not yet admitted.
    pub waiting: AtomicUsize,
}

struct Running {
    slot: usize,
    job: Job,
    sampler: Sampler,
    last: u32,
    generated: usize,
}

/// Runs until every sender of `jobs` is gone. `eos` are the ids that end
/// generation.
pub fn run(mut model: Box<dyn BatchModel>, jobs: Receiver<Job>, eos: Vec<u32>, load: Arc<Load>) {
    let max_batch = model.max_batch().max(1);
    let mut free: Vec<usize> = (0..max_batch).rev().collect();
    let mut running: Vec<Running> = Vec::with_capacity(max_batch);
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut open = true;
    while open || !running.is_empty() || !pending.is_empty() {
        // Block only when idle, and say so first: a sequence that left
        // before a step (its requester hung up) must not stay counted while
        // the thread sleeps.
        if running.is_empty() && pending.is_empty() {
            load.running.store(0, Ordering::Relaxed);
            load.waiting.store(0, Ordering::Relaxed);
            match jobs.recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        loop {
            match jobs.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // Admit and prefill, one sequence per forward pass (prompts differ
        // in length; the decode step below is where batching pays).
        while running.len() < max_batch {
            let Some(mut job) = pending.pop_front() else {
                break;
            };
            if job.events.is_closed() {
                continue;
            }
            let Some(slot) = free.pop() else {
                pending.push_front(job);
                break;
            };
            if let Some(conts) = job.score.take() {
                // Scoring runs to completion here, its choices batched over
                // as many free slots as there are (at least this one).
                let mut slots = vec![slot];
                while slots.len() < conts.len() {
                    match free.pop() {
                        Some(s) => slots.push(s),
                        None => break,
                    }
                }
                let result = score(&mut *model, &slots, &job.prompt, &conts);
                for &s in &slots {
                    model.free(s);
                    free.push(s);
                }
                match result {
                    Ok(v) => {
                        let _ = job.events.send(Event::Scored(v));
                    }
                    Err(e) => fail(&job, e),
                }
                continue;
            }
            let _ = job.events.send(Event::Started { at: Instant::now() });
            let out = guarded(|| model.forward(&[(slot, &job.prompt)]));
            let logits = match out {
                Ok(mut l) if l.len() == 1 => l.pop().unwrap_or_default(),
                Ok(l) => {
                    fail(
                        &job,
                        format!("the model returned {} results for 1", l.len()),
                    );
                    model.free(slot);
                    free.push(slot);
                    continue;
                }
                Err(e) => {
                    fail(&job, e);
                    model.free(slot);
                    free.push(slot);
                    continue;
                }
            };
            let sampler = Sampler::new(&job.params);
            let mut seq = Running {
                slot,
                job,
                sampler,
                last: 0,
                generated: 0,
            };
            if advance(&mut seq, &logits, &eos) {
                running.push(seq);
            } else {
                model.free(slot);
                free.push(slot);
            }
        }
        load.waiting.store(pending.len(), Ordering::Relaxed);
        load.running.store(running.len(), Ordering::Relaxed);
        if running.is_empty() {
            continue;
        }
        // Requesters that hung up leave before the step.
        running.retain(|s| {
            let gone = s.job.events.is_closed();
            if gone {
                model.free(s.slot);
                free.push(s.slot);
            }
            !gone
        });
        if running.is_empty() {
            continue;
        }
        let inputs: Vec<[u32; 1]> = running.iter().map(|s| [s.last]).collect();
        let batch: Vec<(usize, &[u32])> = running
            .iter()
            .zip(&inputs)
            .map(|(s, t)| (s.slot, t.as_slice()))
            .collect();
        let out = guarded(|| model.forward(&batch));
        drop(batch);
        match out {
            Ok(all) if all.len() == running.len() => {
                let mut i = 0;
                let mut logits = all.into_iter();
                running.retain_mut(|s| {
                    let l = logits.next().unwrap_or_default();
                    i += 1;
                    let keep = advance(s, &l, &eos);
                    if !keep {
                        model.free(s.slot);
                        free.push(s.slot);
                    }
                    keep
                });
            }
            other => {
                let message = match other {
                    Err(e) => e,
                    Ok(l) => format!(
                        "the model returned {} results for {}",
                        l.len(),
                        running.len()
                    ),
                };
                for s in running.drain(..) {
                    fail(&s.job, message.clone());
                    model.free(s.slot);
                    free.push(s.slot);
                }
            }
        }
        load.running.store(running.len(), Ordering::Relaxed);
    }
    load.running.store(0, Ordering::Relaxed);
    load.waiting.store(0, Ordering::Relaxed);
}

/// Samples the next token of `seq` from `logits` and tells the requester.
/// Returns whether the sequence goes on.
fn advance(seq: &mut Running, logits: &[f32], eos: &[u32]) -> bool {
    let Some(id) = seq.sampler.sample(logits) else {
        fail(&seq.job, "the model's logits are all NaN".into());
        return false;
    };
    seq.generated += 1;
    let at = Instant::now();
    if eos.contains(&id) {
        let _ = seq.job.events.send(Event::Finished {
            finish: Finish::Eos,
            generated: seq.generated,
            at,
        });
        return false;
    }
    if seq.job.events.send(Event::Token { id, at }).is_err() {
        return false;
    }
    seq.last = id;
    if seq.generated >= seq.job.max_new {
        let _ = seq.job.events.send(Event::Finished {
            finish: Finish::Length,
            generated: seq.generated,
            at,
        });
        return false;
    }
    true
}

fn fail(job: &Job, message: String) {
    let _ = job.events.send(Event::Failed(message));
}

/// Log-probability of `token` under `logits` (log-softmax in f64), and
/// whether it is the argmax (ties count as greedy, as lm-eval's check).
fn token_logprob(logits: &[f32], token: u32) -> Result<(f64, bool), String> {
    let x = *logits.get(token as usize).ok_or_else(|| {
        format!(
            "token {token} is outside the model's {} logits",
            logits.len()
        )
    })?;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| ((l as f64) - max).exp()).sum();
    Ok((x as f64 - max - sum.ln(), x as f64 >= max))
}

/// Scores each continuation after `prompt`: the prompt is prefilled in one
/// slot per choice (a batch), then the continuations advance a token per
/// step together; each step's logits score the next token.
fn score(
    model: &mut dyn BatchModel,
    slots: &[usize],
    prompt: &[u32],
    conts: &[Vec<u32>],
) -> Result<Vec<(f64, usize, bool)>, String> {
    if prompt.is_empty() {
        return Err("a loglikelihood context must have at least one token".into());
    }
    let mut out = vec![(0.0, 0, true); conts.len()];
    let idx: Vec<usize> = (0..conts.len()).collect();
    for chunk in idx.chunks(slots.len().max(1)) {
        let batch: Vec<(usize, &[u32])> =
            chunk.iter().zip(slots).map(|(_, &s)| (s, prompt)).collect();
        let mut logits = guarded(|| model.forward(&batch))?;
        let longest = chunk.iter().map(|&i| conts[i].len()).max().unwrap_or(0);
        for step in 0..longest {
            if logits.len() != chunk.len() {
                return Err(format!(
                    "the model returned {} results for {}",
                    logits.len(),
                    chunk.len()
                ));
            }
            for (k, &i) in chunk.iter().enumerate() {
                if let Some(&t) = conts[i].get(step) {
                    let (lp, greedy) = token_logprob(&logits[k], t)?;
                    out[i].0 += lp;
                    out[i].1 += 1;
                    out[i].2 &= greedy;
                }
            }
            if step + 1 == longest {
                break;
            }
            // Every choice steps (one token each) to keep the batch shape;
            // a finished one feeds its last token again, unread.
            let inputs: Vec<[u32; 1]> = chunk
                .iter()
                .map(|&i| {
                    let c = &conts[i];
                    [c.get(step).or(c.last()).copied().unwrap_or(prompt[0])]
                })
                .collect();
            let batch: Vec<(usize, &[u32])> = chunk
                .iter()
                .zip(slots)
                .zip(&inputs)
                .map(|((_, &s), t)| (s, t.as_slice()))
                .collect();
            logits = guarded(|| model.forward(&batch))?;
        }
        for &s in slots.iter().take(chunk.len()) {
            model.free(s);
        }
    }
    Ok(out)
}

/// Runs a model call, turning its error or panic into a message.
fn guarded<T>(f: impl FnOnce() -> Result<T, super::gguf::EngineError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("the model failed (internal error: {what})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gguf::EngineError;
    use std::sync::mpsc;
    use std::time::Duration;
    use tokio::sync::mpsc::UnboundedReceiver;

    /// A two-slot model whose logits always pick token 1. When slot 1 is
    /// prefilled it drops the receiver of slot 0's requester: that
    /// requester hangs up after its last token was sent and before the next
    /// decode step, the one place a hang-up is noticed without a failed send.
    struct HangsUpSlot0 {
        lens: [usize; 2],
        slot0_events: Option<UnboundedReceiver<Event>>,
    }

    impl BatchModel for HangsUpSlot0 {
        fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, EngineError> {
            if batch.iter().any(|(slot, _)| *slot == 1) {
                self.slot0_events = None;
            }
            Ok(batch
                .iter()
                .map(|(slot, t)| {
                    self.lens[*slot] += t.len();
                    vec![0.0, 1.0, 0.0]
                })
                .collect())
        }
        fn free(&mut self, slot: usize) {
            self.lens[slot] = 0;
        }
        fn seq_len(&self, slot: usize) -> usize {
            self.lens[slot]
        }
        fn max_batch(&self) -> usize {
            2
        }
    }

    /// Regression: a requester that hung up was dropped before a step and
    /// the thread went idle with `running` still counting it, so `/metrics`
    /// of `bench serve` showed a busy slot forever (seen in CI as
    /// `serve_disconnect_frees_the_slot_and_concurrent_requests_finish`).
    #[test]
    fn scheduler_idle_after_a_hang_up_counts_nothing_running() {
        let (tx, rx) = mpsc::channel();
        let (a_tx, a_rx) = tokio::sync::mpsc::unbounded_channel();
        let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
        let load = Arc::new(Load::default());
        let l = load.clone();
        let model = HangsUpSlot0 {
            lens: [0; 2],
            slot0_events: Some(a_rx),
        };
        let engine = std::thread::spawn(move || run(Box::new(model), rx, vec![], l));
        let job = |max_new, events| Job {
            prompt: vec![1],
            max_new,
            params: GenParams::default(),
            events,
            score: None,
        };
        tx.send(job(1_000_000, a_tx)).unwrap();
        tx.send(job(1, b_tx)).unwrap();
        // B ends after one token; A's requester is gone by then.
        let start = Instant::now();
        loop {
            match b_rx.try_recv() {
                Ok(Event::Finished { .. }) => break,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
            assert!(start.elapsed() < Duration::from_secs(10), "B never ended");
        }
        while load.running.load(Ordering::Relaxed) != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the hung-up sequence is still counted as running"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(load.waiting.load(Ordering::Relaxed), 0);
        drop(tx);
        engine.join().unwrap();
    }
}
