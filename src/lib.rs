//! `bench`: LLM accuracy benchmarks and serving-performance sweeps against
//! OpenAI-compatible servers.
//!
//! The binary (`src/main.rs` and its `src/cli/`) parses the command line into
//! the validated configs this library takes; everything else lives here so
//! that tests and other programs can drive a whole run in-process:
//!
//! - [`hub`] fetches dataset files from the Hugging Face hub into the shared
//!   HF cache layout; [`dataset`] reads them (parquet, via arrow).
//! - [`benchmarks`] holds the registry: each benchmark is a dataset (rows
//!   into samples) plus recipes that render prompts ([`prompt`]), extract
//!   answers ([`extract`]) and grade them ([`score`]).
//! - [`client`] is the OpenAI-compatible HTTP client (chat and completions,
//!   SSE streaming, retries) shared by every command.
//! - [`eval`] runs a benchmark end to end and writes the run directory
//!   ([`record`]); [`report`] renders markdown, HTML and JSON from it;
//!   [`rescore`] re-grades a finished run under another mode; [`rundir`]
//!   decides which command may write a run directory and locks it.
//! - [`perf`] runs latency/throughput sweeps (load generation, metrics,
//!   reports); [`mock`] is the fast mock server it is measured against.
//! - [`compare`] compares eval runs (paired statistics, flipped items) and
//!   perf runs (level by level), as markdown, HTML pages or JSON;
//!   [`site`] writes the index of a folder of runs with a picker that opens
//!   their comparison pages (above both `report` and `compare`).
//! - [`redact`] keeps secrets (API key, header values, URL userinfo, hub
//!   token) out of every command line, URL and message bench writes.
//! - `fake` (cargo feature `fake`, on for tests and examples) holds the fake
//!   hub and fake OpenAI server used by tests.
//! - [`engine`] runs a model in process (candle, CPU): GGUF loading and
//!   greedy generation.
//! - [`range`] holds the bounds of every numeric flag and the one wording of
//!   their errors.
//! - [`engine`] runs a model in process (issue 11, in progress); so far it
//!   renders chat templates as transformers does ([`engine::chat_template`]).
#![warn(missing_docs)]

pub mod benchmarks;
pub mod client;
pub mod compare;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod extract;
#[cfg(feature = "fake")]
pub mod fake;
pub mod hub;
pub mod mock;
pub mod perf;
pub mod prompt;
pub mod pyrandom;
pub mod range;
pub mod record;
pub mod redact;
pub mod report;
pub mod rescore;
pub mod rundir;
pub mod score;
pub mod serve;
pub mod site;
pub mod util;
