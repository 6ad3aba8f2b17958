//! Grades IFEval responses with bench's checker, for the agreement script
//! (`scripts/ifeval-agreement/`).
//!
//! ```text
//! cargo run --release --example ifeval_grade -- DATA.parquet RESPONSES.jsonl > VERDICTS.jsonl
//! ```
//!
//! `DATA.parquet` is the IFEval train split (real schema); each line of
//! `RESPONSES.jsonl` is `{"key": 1000, "response": "..."}`. Each output
//! line is `{"key", "strict": [bool], "loose": [bool]}`, one verdict per
//! instruction in the row's order.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use bench::benchmarks::Sample;
use bench::benchmarks::ifeval::{self, Mode};
use serde_json::{Value, json};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, responses] = &args[..] else {
        bail!("usage: ifeval_grade DATA.parquet RESPONSES.jsonl");
    };
    let rows = bench::dataset::read_parquet(std::path::Path::new(data))
        .with_context(|| format!("reading {data}"))?;
    let mut samples: HashMap<String, Sample> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let f = ifeval::to_fields(row).map_err(|e| anyhow::anyhow!("{data} row {i}: {e}"))?;
        let s = Sample::from_fields(f, "default", "train", i);
        samples.insert(s.id.clone().unwrap_or_default(), s);
    }
    let file = std::fs::File::open(responses).with_context(|| format!("opening {responses}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("{responses} line {}", n + 1))?;
        let key = v["key"].to_string();
        let response = v["response"].as_str().unwrap_or_default();
        let Some(s) = samples.get(&key) else {
            bail!("{responses} line {}: no row with key {key}", n + 1);
        };
        let bools = |m| {
            ifeval::verdicts(s, response, m)
                .into_iter()
                .map(|(_, ok)| ok)
                .collect::<Vec<_>>()
        };
        writeln!(
            out,
            "{}",
            json!({"key": v["key"], "strict": bools(Mode::Strict), "loose": bools(Mode::Loose)})
        )?;
    }
    Ok(())
}
