//! Times IFEval grading: all 541 prompts, each with a response of about
//! 2 KB, graded strict and loose (both extractors of the recipe).
//!
//! ```text
//! cargo run --release --example ifeval_speed [-- DATA.parquet]
//! ```
//!
//! `DATA.parquet` defaults to the shared copy
//! (`$BENCH_SHARED_DIR/datasets/hub/datasets/google/IFEval/_refs_convert_parquet/default/train/0000.parquet`,
//! `BENCH_SHARED_DIR` defaulting to `/work/shared`). Prints the best of 5
//! runs; the target is under 50 ms.

use std::time::Instant;

use anyhow::{Context, Result};
use bench::benchmarks::Sample;
use bench::benchmarks::ifeval;

fn main() -> Result<()> {
    let shared = std::env::var("BENCH_SHARED_DIR").unwrap_or_else(|_| "/work/shared".into());
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        format!("{shared}/datasets/hub/datasets/google/IFEval/_refs_convert_parquet/default/train/0000.parquet")
    });
    let rows = bench::dataset::read_parquet(std::path::Path::new(&path))
        .with_context(|| format!("reading {path}"))?;
    let samples: Vec<Sample> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            ifeval::to_fields(r)
                .map(|f| Sample::from_fields(f, "default", "train", i))
                .map_err(|e| anyhow::anyhow!("row {i}: {e}"))
        })
        .collect::<Result<_>>()?;
    // A plausible ~2 KB answer: prose with a title, a list, highlights and
    // a postscript, then what each prompt's instructions ask for.
    let base = "<<An Answer>>\n\nHere is a considered response to your request. It covers the main \
points in order, with *highlighted parts* and a short list.\n\n* First point about the topic.\n* Second \
point, with more detail.\n* Third point.\n\n"
        .repeat(5);
    let responses: Vec<String> = samples
        .iter()
        .map(|s| {
            let mut r = ifeval::follow_all(s);
            r.insert_str(0, &base);
            r.truncate(r.floor_char_boundary(2048));
            r
        })
        .collect();
    let avg = responses.iter().map(String::len).sum::<usize>() / responses.len();
    let recipe = ifeval::recipe();
    let mut best = f64::INFINITY;
    let mut followed = 0;
    for _ in 0..5 {
        let t = Instant::now();
        followed = 0;
        for (s, r) in samples.iter().zip(&responses) {
            let grades = recipe.grade(s, r);
            followed += usize::from(grades[0].correct);
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "graded {} responses (avg {avg} B) strict + loose in {:.1} ms (best of 5; {followed} followed every instruction, strict)",
        samples.len(),
        best * 1e3
    );
    Ok(())
}
