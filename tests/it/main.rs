//! One integration-test binary (as ripgrep does): every module talks only to
//! servers on 127.0.0.1 that the tests start themselves.

/// The binary's command line (`src/cli/`), included as it is: the library
/// knows nothing of clap, and tests walk its command tree and parse flags.
#[path = "../../src/cli/mod.rs"]
#[allow(dead_code, unused_imports)]
mod bench_cli;
mod benchmark_file;
mod browser;
mod chat_template;
mod cli;
mod client;
mod compare;
mod compat;
mod engine;
mod engine_batch;
mod engine_eval;
mod escaping;
mod eval;
mod flags;
mod fuzz;
mod hardening;
mod hub;
mod ifeval;
mod library;
mod loglikelihood;
mod math500;
mod mcq;
mod mock;
mod model_download;
mod perf;
mod prompts;
mod realserver;
mod repeats;
mod rescore;
mod secrets;
mod serve;
mod snapshots;
mod support;
