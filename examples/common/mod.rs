//! Pieces the speed examples share (not an example itself: Cargo only
//! builds `examples/*.rs` and `examples/*/main.rs`).

use std::path::{Path, PathBuf};

use bench::client::ClientConfig;
use bench::config::{EvalConfig, plan_benchmarks};
use bench::hub::HubConfig;

/// A quiet eval of `names` on every item against the given servers.
pub fn eval_config(
    api: &str,
    hub: &str,
    cache: &Path,
    out: PathBuf,
    names: &[&str],
    concurrency: usize,
) -> EvalConfig {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    EvalConfig {
        model: "fake-model".into(),
        client: ClientConfig::new(api),
        in_process: false,
        benchmarks: plan_benchmarks(&names, None).unwrap(),
        limit: None,
        limit_text: None,
        concurrency,
        generation: Default::default(),
        output: out,
        prompts_dir: None,
        hub: HubConfig {
            endpoint: hub.into(),
            token: None,
            cache_dir: cache.into(),
            offline: false,
        },
        progress: false,
        print_table: false,
        command: vec![],
        tokenizer: None,
    }
}

/// The median (upper one for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU seconds this process has used (utime + stime from `/proc/self/stat`,
/// Linux clock ticks of 1/100 s; 0 elsewhere).
#[allow(dead_code)] // not every example that includes this module times CPU
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
