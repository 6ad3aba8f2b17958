//! Speed and size benchmark of reports and comparisons (not a test: figures
//! go in notes).
//!
//! Makes two full eval runs (gsm8k test + ARC-Easy test + ARC-Challenge
//! test, 4867 items each) from the real parquet files
//! (`../shared/datasets/hub`, or `BENCH_DATASETS_HUB`) and an in-process
//! fake server answering with ~700-character responses (the second run
//! answers differently on about a third of the items, so many items flip),
//! then measures, median of repeated runs:
//! 1. `bench compare A B` as HTML: reading both runs, pairing, statistics
//!    and rendering (and the markdown and JSON forms);
//! 2. the size of one run's `report.html` and the time to render its reports;
//! 3. `bench report --index` over the two runs (index + both comparison pages).
//!
//! Run: `cargo run --release --example report_speed`

use std::path::PathBuf;
use std::time::Instant;

use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use tokio_util::sync::CancellationToken;

#[path = "common/mod.rs"]
mod common;
use common::{eval_config, median};

const VOCAB: &str = "the of and to in is that for it as was with be by on not he she this are or his her from \
at which but have an had they you were their one all we can there been if more when will \
would who so no each first then total number cost price dollars apples minutes hours days \
week miles speed distance time half twice three four five ten percent remaining left spent \
earned bought sold gave received multiply divide add subtract equals therefore answer step \
let us compute calculate find since because means per every after before together \
altogether difference sum product quotient ratio fraction eggs ducks market store money \
budget salary rent bags boxes cookies students class teacher school books pages read water \
energy heat light plant animal cell rock soil weather season earth sun moon gravity force \
motion mass volume density temperature evaporation condensation experiment hypothesis \
observation result option choice correct because likely best explains most which why how \
what where shows causes effect change process system organism species habitat food chain \
predator prey oxygen carbon dioxide nitrogen mineral erosion glacier river ocean wind \
magnet electric circuit battery wire metal wood plastic glass solid liquid gas melting \
freezing boiling point degrees celsius measure ruler scale graph table data trend increase \
decrease first second third finally next also however thus hence given known unknown \
variable equation solve check verify units convert meters grams liters cents quarter dozen \
pair group share split evenly among between friends family brother sister mother father \
farm garden tree flowers seeds harvest baskets train car bus trip journey road town city \
park game team points score win lose round match player coach season year month morning \
evening night daily weekly rate hourly wage tax discount sale profit";

/// `words` words drawn from a 300-word vocabulary plus numbers, seeded:
/// text that compresses about as well as real answers do (gzip ~2.5-3x),
/// not better.
fn prose(seed: u64, words: usize) -> String {
    let vocab: Vec<&str> = VOCAB.split_whitespace().collect();
    let mut x = seed | 1;
    let mut out = String::new();
    for i in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if i % 9 == 8 {
            out.push_str(&format!("{} ", x % 997));
        } else {
            out.push_str(vocab[(x % vocab.len() as u64) as usize]);
            out.push(if i % 15 == 14 { '\n' } else { ' ' });
        }
    }
    out
}

/// FNV-1a: a per-request seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A reply of realistic length whose answer depends on the request.
fn reply(body: &serde_json::Value, variant: u64) -> Reply {
    let text = body.to_string();
    let h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let pick = (h >> 7) % 4;
    let pick = if variant == 1 && h % 3 == 0 {
        (pick + 1) % 4
    } else {
        pick
    };
    let letter = ["A", "B", "C", "D"][pick as usize];
    let number = [18, 3, 70000, 540][pick as usize];
    let reasoning = prose(h, 110);
    Reply::text(format!(
        "{reasoning}\nSo the total is \\boxed{{{number}}}.\nANSWER: {letter}"
    ))
}

#[tokio::main]
async fn main() {
    let root = std::env::var("BENCH_DATASETS_HUB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/hub")
        });
    let hub = FakeHub::start(FakeHubOptions::new(root)).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // REPORT_SPEED_OUT=DIR keeps the runs and pages for a look afterwards.
    let outputs = std::env::var_os("REPORT_SPEED_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("outputs"));
    for (variant, name) in [(0u64, "run-a"), (1, "run-b")] {
        let server = FakeOpenAi::start(FakeOptions::responding(move |b| reply(b, variant))).await;
        let out = bench::eval::run_eval(
            eval_config(
                &server.url(),
                &hub.url(),
                &cache,
                outputs.join(name),
                &["gsm8k", "arc"],
                64,
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(out.requested, 4867);
    }
    let (a, b) = (outputs.join("run-a"), outputs.join("run-b"));

    // 1. The comparison, end to end from the run directories.
    let no_link = |_: &str| None;
    let mut times = Vec::new();
    let mut html_len = 0;
    let mut flips = 0;
    for _ in 0..9 {
        let t = Instant::now();
        let cs = bench::compare::compare_all(&[a.clone(), b.clone()]).unwrap();
        let html = bench::compare::html::eval_page(&cs, &no_link);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        html_len = html.len();
        flips = cs[0].items.len();
    }
    println!(
        "compare A B --format html (2 x 4867 items, {flips} flipped items): median {:.1} ms (min {:.1}, max {:.1}), page {:.2} MB",
        median(times.clone()),
        times.iter().copied().fold(f64::MAX, f64::min),
        times.iter().copied().fold(0.0, f64::max),
        html_len as f64 / 1e6
    );
    let mut md = Vec::new();
    let mut js = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let cs = bench::compare::compare_all(&[a.clone(), b.clone()]).unwrap();
        let m = bench::compare::markdown(&cs);
        md.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(m.len() <= bench::compare::MAX_MARKDOWN);
        let t = Instant::now();
        let cs = bench::compare::compare_all(&[a.clone(), b.clone()]).unwrap();
        let _ = serde_json::to_string_pretty(&cs).unwrap();
        js.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "compare A B --format md: median {:.1} ms; --format json: median {:.1} ms",
        median(md),
        median(js)
    );

    // 2. One run's reports.
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        bench::report::rerender(&a).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let size = std::fs::metadata(a.join("report.html")).unwrap().len();
    println!(
        "report.html of one run (4867 items): {:.2} MB; rendering report.md + report.html + report.json: median {:.1} ms",
        size as f64 / 1e6,
        median(times)
    );

    // 2b. A reasoning model's run: ~8,000 characters of reasoning and ~2,100
    // of answer per item, too much text for 5 MB: the page shortens it.
    let long = outputs.join("run-long");
    let server = FakeOpenAi::start(FakeOptions::responding(|b| {
        let r = reply(b, 0);
        let seed = fnv(&b.to_string());
        let content = format!("{}\n{}", prose(seed, 230), r.content);
        Reply::text(content).with_reasoning(prose(seed ^ 0xabcdef, 1300))
    }))
    .await;
    bench::eval::run_eval(
        eval_config(
            &server.url(),
            &hub.url(),
            &cache,
            long.clone(),
            &["gsm8k", "arc"],
            64,
        ),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        bench::report::rerender(&long).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let html = std::fs::read_to_string(long.join("report.html")).unwrap();
    let journal: u64 = std::fs::read_dir(long.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "long answers ({:.0} MB of journals): report.html {:.2} MB ({}), rendering the three reports: median {:.0} ms",
        journal as f64 / 1e6,
        html.len() as f64 / 1e6,
        if html.contains("are shortened in the middle") {
            "texts shortened"
        } else {
            "texts in full"
        },
        median(times)
    );
    std::fs::remove_dir_all(&long).unwrap();

    // 3. The index with its two comparison pages (first time: written; then kept).
    let t = Instant::now();
    let s = bench::site::write_index(&outputs).unwrap();
    let first = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let s2 = bench::site::write_index(&outputs).unwrap();
    let again = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "report --index: {} runs, {} comparison pages written in {first:.0} ms; again (pages kept: {} written): {again:.0} ms",
        s.runs, s.written, s2.written
    );
}
