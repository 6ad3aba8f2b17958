//! [`Engine`]: a loaded model behind the same request and response types as
//! the HTTP client, so `bench eval` and `bench serve` drive it the way they
//! drive a server.
//!
//! A request is rendered here (chat messages through the model's chat
//! template, an assistant prefill continued as transformers'
//! `continue_final_message` does; plain text tokenized with the model's BOS
//! rule), checked against the context, and handed to the engine thread
//! ([`super::scheduler`]). The tokens that come back are turned into text
//! incrementally in a [`GenStream`], which also applies stop strings (text
//! that could still become a stop string is held back, so a stream never
//! shows part of one) and reports `finish_reason` and usage as an OpenAI
//! server would.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use serde_json::{Map, Value};
use tokenizers::Tokenizer;
use tokio::sync::mpsc::UnboundedReceiver;

use super::BatchModel;
use super::chat_template::ChatTemplate;
use super::gguf::EngineError;
use super::sample::{DEFAULT_MAX_TOKENS, GenParams};
use super::scheduler::{self, Event, Finish, Job, Load};
use crate::client::{Completion, ErrorKind, Prompt, RequestError, Usage, split_think};
pub use crate::record::{EngineInfo, ModelFileInfo};

/// A model ready to hand to [`Engine::new`].
pub struct LoadedModel {
    /// The forward pass.
    pub model: Box<dyn BatchModel>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Ids that end generation.
    pub eos_ids: Vec<u32>,
    /// The BOS id prepended to plain-text prompts when `add_bos` is set.
    pub bos_id: Option<u32>,
    /// Whether plain-text prompts start with BOS (and the tokenizer does not
    /// add it itself).
    pub add_bos: bool,
    /// The chat template, if the model has one.
    pub template: Option<ChatTemplate>,
    /// Longest prompt plus output.
    pub max_positions: usize,
    /// Vocabulary size (token ids are below it).
    pub vocab_size: usize,
    /// For the record.
    pub info: EngineInfo,
}

/// A running engine: the model on its own thread, and what is needed to
/// turn requests into token ids and tokens back into text.
pub struct Engine {
    jobs: std::sync::Mutex<Option<Sender<Job>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    tokenizer: Arc<Tokenizer>,
    template: Option<ChatTemplate>,
    bos_id: Option<u32>,
    add_bos: bool,
    /// lm-eval's `prefix_token_id`: the context of an empty-context
    /// loglikelihood request (BOS, else the first end-of-generation id).
    prefix_id: Option<u32>,
    max_positions: usize,
    vocab_size: usize,
    info: EngineInfo,
    load: Arc<Load>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Engine {
    /// Starts the engine thread for `loaded`.
    pub fn new(loaded: LoadedModel) -> Result<Engine, EngineError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let load = Arc::new(Load::default());
        let eos = loaded.eos_ids.clone();
        let prefix_id = loaded.bos_id.or(loaded.eos_ids.first().copied());
        let model = loaded.model;
        let thread_load = load.clone();
        let thread = std::thread::Builder::new()
            .name("bench-engine".into())
            .spawn(move || scheduler::run(model, rx, eos, thread_load))
            .map_err(|e| EngineError::Inference(format!("starting the engine thread: {e}")))?;
        Ok(Engine {
            jobs: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
            tokenizer: Arc::new(loaded.tokenizer),
            template: loaded.template,
            bos_id: loaded.bos_id,
            add_bos: loaded.add_bos,
            prefix_id,
            max_positions: loaded.max_positions,
            vocab_size: loaded.vocab_size,
            info: loaded.info,
            load,
        })
    }

    /// Stops accepting requests and waits for the engine thread to finish
    /// what it is running (requests whose caller is gone end at once).
    pub fn shutdown(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// What the record says about the model.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// Longest prompt plus output, in tokens.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Sequences decoding now and requests waiting for a slot.
    pub fn load(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.load.running.load(Relaxed),
            self.load.waiting.load(Relaxed),
        )
    }

    /// The prompt text a request becomes: chat messages rendered with the
    /// model's template (a final assistant message is continued, not
    /// closed), plain text as it is.
    pub fn prompt_text(&self, prompt: &Prompt) -> Result<String, EngineError> {
        match prompt {
            Prompt::Text(t) => Ok(t.clone()),
            Prompt::Messages(messages) => {
                let template = self.template.as_ref().ok_or_else(|| {
                    EngineError::Request(format!(
                        "{}: the model has no chat template (tokenizer_config.json `chat_template`, \
                         chat_template.jinja or the GGUF's tokenizer.chat_template); \
                         use --api completions to send plain text",
                        self.info.source
                    ))
                })?;
                let prefill = messages.last().is_some_and(|m| m.role == "assistant");
                let r = if prefill {
                    template.render_continue_final_message(messages)
                } else {
                    template.render(messages, true)
                };
                r.map_err(|e| EngineError::Request(format!("{}: {e}", self.info.source)))
            }
        }
    }

    /// The token ids of a request. Chat prompts are tokenized as
    /// transformers and vLLM tokenize a rendered template (special tokens
    /// in the text are matched, nothing is added); plain text gets the
    /// model's BOS as the tokenizer or the GGUF file says.
    pub fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        let text = self.prompt_text(prompt)?;
        let is_text = matches!(prompt, Prompt::Text(_));
        let enc = self
            .tokenizer
            .encode_fast(text.as_str(), is_text)
            .map_err(|e| EngineError::Request(format!("tokenizing the prompt: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        if is_text
            && self.add_bos
            && let Some(bos) = self.bos_id
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Queues `prompt` (token ids) for generation.
    pub fn start_ids(&self, prompt: Vec<u32>, params: GenParams) -> Result<GenStream, EngineError> {
        let submitted = Instant::now();
        if prompt.is_empty() {
            return Err(EngineError::Request("the prompt has no tokens".into()));
        }
        if let Some((i, id)) = prompt
            .iter()
            .enumerate()
            .find(|(_, id)| **id as usize >= self.vocab_size)
        {
            return Err(EngineError::Request(format!(
                "prompt token {i} is id {id}, outside the {}-token vocabulary",
                self.vocab_size
            )));
        }
        let room = self.max_positions.saturating_sub(prompt.len());
        let max_new = match params.max_tokens {
            Some(n) if n > room => {
                return Err(EngineError::Request(format!(
                    "this model's maximum context length is {} tokens, but {} were asked for \
                     ({} in the prompt, {n} for the completion)",
                    self.max_positions,
                    prompt.len().saturating_add(n),
                    prompt.len()
                )));
            }
            Some(n) => n,
            None if room == 0 => {
                return Err(EngineError::Request(format!(
                    "the prompt has {} tokens, which fills this model's {}-token context",
                    prompt.len(),
                    self.max_positions
                )));
            }
            None => DEFAULT_MAX_TOKENS.min(room),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = params.stop.clone();
        let prompt_tokens = prompt.len();
        let job = Job {
            prompt,
            max_new,
            params,
            events: tx,
            score: None,
        };
        let sent = self
            .jobs
            .lock()
            .ok()
            .and_then(|j| j.as_ref().map(|s| s.send(job).is_ok()))
            .unwrap_or(false);
        if !sent {
            return Err(EngineError::Inference("the engine has stopped".into()));
        }
        Ok(GenStream {
            rx,
            tokenizer: self.tokenizer.clone(),
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
            text: String::new(),
            sent: 0,
            max_stop: stop.iter().map(|s| s.len()).max().unwrap_or(0),
            stop,
            prompt_tokens,
            pending_end: None,
            done: false,
            timing: Timing {
                submitted,
                started: None,
                first_token: None,
                finished: None,
            },
        })
    }

    /// Loglikelihoods of `continuations` after `context`, computed from the
    /// model's logits (one batch per item): context and continuation
    /// tokenised as lm-eval pairs them
    /// ([`crate::client::loglik::encode_pair`]), after the model's BOS
    /// when plain-text prompts get one. An empty context is lm-eval's
    /// `prefix_token_id` (BOS, else EOS).
    pub async fn loglikelihoods(
        &self,
        context: &str,
        continuations: &[String],
    ) -> Result<Vec<crate::client::loglik::LlScore>, EngineError> {
        let mut prompt: Vec<u32> = Vec::new();
        if self.add_bos
            && let Some(bos) = self.bos_id
        {
            prompt.push(bos);
        }
        let mut conts = Vec::with_capacity(continuations.len());
        let mut ctx_ids = None;
        for c in continuations {
            let (ctx, cont) = crate::client::loglik::encode_pair(&self.tokenizer, context, c)
                .map_err(EngineError::Request)?;
            // The context tokenises alike for every continuation.
            ctx_ids.get_or_insert(ctx);
            conts.push(cont);
        }
        prompt.extend(ctx_ids.unwrap_or_default());
        if prompt.is_empty() {
            // An empty context (and no BOS added): lm-eval conditions on
            // its `prefix_token_id` (BOS, else EOS); a continuation that
            // starts with that token has it as its context instead, which
            // is the same prompt without that first token to score.
            let prefix = self.prefix_id.ok_or_else(|| {
                EngineError::Request(
                    "an empty loglikelihood context needs a BOS or EOS token to condition on, \
                     and this model has neither"
                        .into(),
                )
            })?;
            prompt.push(prefix);
            for c in &mut conts {
                if c.first() == Some(&prefix) {
                    c.remove(0);
                }
            }
        }
        let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
        if prompt.len() + longest > self.max_positions {
            return Err(EngineError::Request(format!(
                "context and continuation have {} tokens, more than this model's {}-token context",
                prompt.len() + longest,
                self.max_positions
            )));
        }
        if let Some(&bad) = prompt
            .iter()
            .chain(conts.iter().flatten())
            .find(|&&t| t as usize >= self.vocab_size)
        {
            return Err(EngineError::Request(format!(
                "token id {bad} is outside the vocabulary ({} tokens)",
                self.vocab_size
            )));
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = Job {
            prompt,
            max_new: 1,
            params: GenParams::default(),
            events: tx,
            score: Some(conts),
        };
        let sent = self
            .jobs
            .lock()
            .ok()
            .and_then(|j| j.as_ref().map(|s| s.send(job).is_ok()))
            .unwrap_or(false);
        if !sent {
            return Err(EngineError::Inference("the engine has stopped".into()));
        }
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Scored(v) => {
                    return Ok(v
                        .into_iter()
                        .map(
                            |(logprob, tokens, is_greedy)| crate::client::loglik::LlScore {
                                logprob,
                                tokens,
                                is_greedy,
                            },
                        )
                        .collect());
                }
                Event::Failed(m) => return Err(EngineError::Inference(m)),
                _ => {}
            }
        }
        Err(EngineError::Inference("the engine has stopped".into()))
    }

    /// Renders, tokenizes and queues `prompt` with OpenAI-style `params`.
    pub fn start(
        &self,
        prompt: &Prompt,
        params: &Map<String, Value>,
    ) -> Result<GenStream, EngineError> {
        let params = GenParams::from_openai(params).map_err(EngineError::Request)?;
        let ids = self.encode(prompt)?;
        self.start_ids(ids, params)
    }

    /// One request, answered as a server would answer it: the text with any
    /// `<think>` block split off, `finish_reason`, usage, latency. Errors
    /// are [`RequestError`]s of kind `Client` (a bad request) or `Server`
    /// (the model failed), never retried.
    pub async fn generate(
        &self,
        prompt: &Prompt,
        params: &Map<String, Value>,
    ) -> Result<Completion, RequestError> {
        let started = Instant::now();
        let err = |kind: ErrorKind, e: EngineError| RequestError {
            kind,
            status: None,
            message: e.to_string(),
            attempts: 1,
        };
        let mut stream = self
            .start(prompt, params)
            .map_err(|e| err(ErrorKind::Client, e))?;
        let mut text = String::new();
        let mut end = None;
        while let Some(chunk) = stream.next().await {
            match chunk.map_err(|e| err(ErrorKind::Server, e))? {
                Chunk::Text(t) => text.push_str(&t),
                Chunk::End {
                    finish_reason,
                    usage,
                } => end = Some((finish_reason, usage)),
            }
        }
        let (finish_reason, usage) = end.ok_or_else(|| {
            err(
                ErrorKind::Server,
                EngineError::Inference("the engine ended the request without an answer".into()),
            )
        })?;
        let (text, reasoning) = split_think(&text);
        let timing = stream.timing();
        Ok(Completion {
            text,
            reasoning,
            finish_reason: Some(finish_reason.to_string()),
            usage: Some(usage),
            attempts: 1,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            ttft_ms: timing
                .first_token
                .map(|t| t.duration_since(started).as_secs_f64() * 1000.0),
        })
    }
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// More text.
    Text(String),
    /// The end: no chunk follows.
    End {
        /// `stop` (end of generation or a stop string) or `length`.
        finish_reason: &'static str,
        /// Prompt and generated tokens.
        usage: Usage,
    },
}

/// When a request passed each stage.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Handed to the engine.
    pub submitted: Instant,
    /// Prefill started (out of the queue).
    pub started: Option<Instant>,
    /// First token sampled.
    pub first_token: Option<Instant>,
    /// Last token sampled.
    pub finished: Option<Instant>,
}

/// The answer to one request as it is generated.
pub struct GenStream {
    rx: UnboundedReceiver<Event>,
    tokenizer: Arc<Tokenizer>,
    ids: Vec<u32>,
    /// Incremental detokenization as in text-generation-inference: text is
    /// decoded from `prefix_offset`, and what lies past the decoding of
    /// `prefix_offset..read_offset` is new (unless it ends inside a UTF-8
    /// character, then it waits for the next token).
    prefix_offset: usize,
    read_offset: usize,
    /// All text decoded so far, and how much of it was handed out.
    text: String,
    sent: usize,
    stop: Vec<String>,
    max_stop: usize,
    prompt_tokens: usize,
    pending_end: Option<Chunk>,
    done: bool,
    timing: Timing,
}

impl GenStream {
    /// Prompt tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Tokens generated so far.
    pub fn generated_tokens(&self) -> usize {
        self.ids.len()
    }

    /// When the request passed each stage so far.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The next piece of the answer; `None` after [`Chunk::End`] or an error.
    pub async fn next(&mut self) -> Option<Result<Chunk, EngineError>> {
        loop {
            if let Some(end) = self.pending_end.take() {
                self.done = true;
                return Some(Ok(end));
            }
            if self.done {
                return None;
            }
            let Some(event) = self.rx.recv().await else {
                self.done = true;
                return Some(Err(EngineError::Inference(
                    "the engine stopped before the answer was complete".into(),
                )));
            };
            match event {
                Event::Started { at } => self.timing.started = Some(at),
                Event::Token { id, at } => {
                    self.timing.first_token.get_or_insert(at);
                    self.timing.finished = Some(at);
                    self.ids.push(id);
                    if let Some(delta) = self.decode_new() {
                        self.text.push_str(&delta);
                    }
                    if let Some(pos) = self.find_stop() {
                        // Stop: drop the rest; the engine frees the slot at
                        // its next step when it sees the channel closed.
                        self.rx.close();
                        let out = self.text[self.sent..pos].to_string();
                        self.text.truncate(pos);
                        self.sent = pos;
                        self.pending_end = Some(self.end("stop", self.ids.len()));
                        if !out.is_empty() {
                            return Some(Ok(Chunk::Text(out)));
                        }
                        continue;
                    }
                    let safe = self.text.len() - self.held_back();
                    if safe > self.sent {
                        let out = self.text[self.sent..safe].to_string();
                        self.sent = safe;
                        return Some(Ok(Chunk::Text(out)));
                    }
                }
                Event::Finished {
                    finish,
                    generated,
                    at,
                } => {
                    self.timing.finished = Some(at);
                    // Whatever is left, even an incomplete character.
                    if let Ok(all) = self.tokenizer.decode(&self.ids[self.prefix_offset..], true) {
                        let head = self.decode_range(self.prefix_offset, self.read_offset);
                        if all.len() > head.len() && all.is_char_boundary(head.len()) {
                            self.text.push_str(&all[head.len()..]);
                            self.read_offset = self.ids.len();
                        }
                    }
                    let reason = match finish {
                        Finish::Eos => "stop",
                        Finish::Length => "length",
                    };
                    self.pending_end = Some(self.end(reason, generated));
                    if self.text.len() > self.sent {
                        let out = self.text[self.sent..].to_string();
                        self.sent = self.text.len();
                        return Some(Ok(Chunk::Text(out)));
                    }
                }
                Event::Failed(message) => {
                    self.done = true;
                    return Some(Err(EngineError::Inference(message)));
                }
                // Only a scoring job is answered so; a stream never is.
                Event::Scored(_) => {
                    self.done = true;
                    return Some(Err(EngineError::Inference(
                        "a generation was answered with scores".into(),
                    )));
                }
            }
        }
    }

    fn end(&self, finish_reason: &'static str, generated: usize) -> Chunk {
        let p = self.prompt_tokens as u64;
        let c = generated as u64;
        Chunk::End {
            finish_reason,
            usage: Usage {
                prompt_tokens: Some(p),
                completion_tokens: Some(c),
                total_tokens: Some(p + c),
            },
        }
    }

    fn decode_range(&self, from: usize, to: usize) -> String {
        if from >= to {
            return String::new();
        }
        self.tokenizer
            .decode(&self.ids[from..to], true)
            .unwrap_or_default()
    }

    /// The text the newest tokens add, once it is whole characters.
    fn decode_new(&mut self) -> Option<String> {
        let prefix = self.decode_range(self.prefix_offset, self.read_offset);
        let full = self.decode_range(self.prefix_offset, self.ids.len());
        if full.len() > prefix.len()
            && !full.ends_with('\u{FFFD}')
            && full.is_char_boundary(prefix.len())
        {
            let delta = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Some(delta)
        } else {
            None
        }
    }

    /// Where the first stop string starts, looking only where a new one can
    /// be (it must end in text not yet handed out).
    fn find_stop(&self) -> Option<usize> {
        if self.stop.is_empty() {
            return None;
        }
        let mut from = self.sent.saturating_sub(self.max_stop);
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        self.stop
            .iter()
            .filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i))
            .min()
    }

    /// Bytes at the end of the text that could begin a stop string.
    fn held_back(&self) -> usize {
        let mut hold = 0;
        for s in &self.stop {
            for (k, _) in s.char_indices().skip(1) {
                if k > hold && self.text.ends_with(&s[..k]) {
                    hold = k;
                }
            }
        }
        hold.min(self.text.len() - self.sent.min(self.text.len()))
    }
}
