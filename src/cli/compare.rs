//! `bench compare` flags -> [`CompareConfig`]; the comparison itself is
//! [`bench::compare::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};

use bench::compare::{CompareConfig, PERF_METRICS, PerfMetric, perf_metric};
use bench::range::limits as L;
use bench::report::Format;

/// `bench compare` flags.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories: the first is the baseline, each other is compared with it.
    #[arg(num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Output format: markdown for a PR comment, a self-contained HTML page, or JSON.
    #[arg(long, value_enum, default_value_t = FormatArg::Md)]
    pub format: FormatArg,
    /// Write the comparison to FILE instead of standard output (HTML links each run's report
    /// relative to FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 on a regression: eval runs, accuracy fell by more than --threshold points (default
    /// 0) and the paired 95% interval excludes zero; perf runs, --metric got worse by more than
    /// --threshold percent (default 5) at some level.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Perf runs: the metric the regression gate watches.
    #[arg(long, default_value = "output_throughput", value_parser = metric_parser())]
    pub metric: &'static PerfMetric,
    /// How much worse still passes the gate: accuracy points for eval runs (default 0), percent
    /// for perf runs (default 5; 0 to 10000).
    #[arg(long, allow_negative_numbers = true, value_parser = L::THRESHOLD.parser())]
    pub threshold: Option<f64>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Markdown for a PR comment.
    Md,
    /// A self-contained HTML page.
    Html,
    /// JSON.
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Md => Format::Markdown,
            FormatArg::Html => Format::Html,
            FormatArg::Json => Format::Json,
        }
    }
}

/// `--metric`: one of [`PERF_METRICS`], so a typo is a usage error listing them.
fn metric_parser() -> impl TypedValueParser<Value = &'static PerfMetric> {
    PossibleValuesParser::new(PERF_METRICS.iter().map(|m| m.key))
        .try_map(|key| perf_metric(&key).ok_or_else(|| format!("unknown metric `{key}`")))
}

/// `bench compare`: run it, print or write the result, apply the gate.
pub fn compare(a: CompareArgs) -> Result<ExitCode> {
    let cfg = CompareConfig {
        runs: a.runs,
        format: a.format.into(),
        output: a.output,
        fail_on_regression: a.fail_on_regression,
        metric: a.metric,
        threshold: a.threshold,
    };
    let out = bench::compare::run(&cfg)?;
    match &cfg.output {
        Some(path) => eprintln!("comparison written to {}", path.display()),
        None => print!("{}", out.text),
    }
    if cfg.fail_on_regression && out.worse > 0 {
        eprintln!("{} {}", out.worse, out.what);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
