//! `bench perf`: serving latency and throughput sweeps against
//! OpenAI-compatible servers.
//!
//! - [`record`]: what is captured per request (raw timings and events).
//! - [`stats`]: metric definitions (TTFT, E2E, TPOT, ITL, throughput,
//!   goodput, percentiles) computed from records off the hot path.
//! - [`prompts`]: prompt sources (exact-length random prompts from a
//!   tokenizer, text files, JSONL, ShareGPT).

pub mod driver;
pub mod hist;
pub mod prompts;
pub mod record;
pub mod report;
pub mod run;
pub mod server_metrics;
pub mod stats;
pub mod summary;
