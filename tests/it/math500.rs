//! MATH-500 on the real data: every row parses into a sample, every `answer`
//! parses and is equivalent to itself under each recipe and to the
//! `\boxed{}` of its own solution.

use std::path::{Path, PathBuf};

use bench::benchmarks;
use bench::extract::latex_eq::{self, Mode};
use bench::extract::minerva;

fn real_file() -> Option<PathBuf> {
    let shared = std::env::var("BENCH_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let f = shared.join(
        "datasets/hub/datasets/HuggingFaceH4/MATH-500/_refs_convert_parquet/default/test/0000.parquet",
    );
    f.is_file().then_some(f)
}

/// Answers whose solution boxes the same value in another form that the
/// native comparison does not equate (with why), found by this test.
const SOLUTION_FORM_DIFFERS: &[&str] = &[];

#[test]
fn math500_real_answers_parse_and_match_their_solutions() {
    let Some(file) = real_file() else {
        crate::support::skip(
            "math500_real_answers_parse_and_match_their_solutions",
            "no real MATH-500 parquet under BENCH_SHARED_DIR (or ../shared)",
            "BENCH_REQUIRE_REAL_DATA",
        );
        return;
    };
    let rows = bench::dataset::read_parquet(&file).unwrap();
    assert_eq!(rows.len(), 500);
    let b = benchmarks::get("math_500").unwrap();
    let mut unparsed = Vec::new();
    let mut not_self = Vec::new();
    let mut not_solution = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let s = b.sample(row, "default", "test", i).unwrap();
        if !latex_eq::parses(&s.target, Mode::Native) {
            unparsed.push(format!("{i}: {:?}", s.target));
        }
        for r in &b.recipes {
            let g = r.grade(&s, &r.format_answer(&s));
            if !g[0].correct {
                not_self.push(format!(
                    "{i} {}: {:?} -> {:?}",
                    r.id, s.target, g[0].extracted
                ));
            }
        }
        let solution = s.reference.as_deref().unwrap();
        let boxed = latex_eq::last_boxed(solution).unwrap_or_default();
        if !latex_eq::equivalent(&s.target, &boxed, Mode::Native)
            && !SOLUTION_FORM_DIFFERS.contains(&s.target.as_str())
        {
            not_solution.push(format!("{i}: answer {:?} vs boxed {boxed:?}", s.target));
        }
        // minerva's gold comes from the solution: it must read one.
        assert!(
            minerva::gold_answer(solution).is_some(),
            "row {i}: no \\boxed in the solution"
        );
    }
    eprintln!(
        "MATH-500 answers the native parser does not parse ({}):\n{}",
        unparsed.len(),
        unparsed.join("\n")
    );
    assert!(
        not_self.is_empty(),
        "right answers judged wrong:\n{}",
        not_self.join("\n")
    );
    assert!(
        not_solution.is_empty(),
        "answers unlike their solution's box:\n{}",
        not_solution.join("\n")
    );
    assert!(
        unparsed.is_empty(),
        "answers that do not parse:\n{}",
        unparsed.join("\n")
    );
}
