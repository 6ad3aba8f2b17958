//! `--repeats N`: several samples per item. A fake server whose answer
//! depends on the request's seed makes an item right on some repeats and
//! wrong on others; the journal, the mean accuracy, its spread and pass@k
//! are checked against values worked out by hand, then resume, rescore and
//! compare on such runs, and the errors for bad values.

use std::path::Path;
use std::sync::Arc;

use bench::config::Limit;
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use bench::record::{ResultRow, RunDir};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{
    bench_bin, config, fixture_samples, gold_for, native_answer, start_hub, text,
};

/// The seed of repeat 0 (repeat r sends SEED + r).
const SEED: u64 = 100;
/// Items asked (the first rows of aime24's fixture).
const ITEMS: usize = 4;

/// Which repeats of item i (row index) the server answers right:
/// item 0 all four, item 1 repeats 0 and 1, item 2 repeat 3 only, item 3
/// none.
fn rule_a(item: usize, repeat: u64) -> bool {
    match item {
        0 => true,
        1 => repeat < 2,
        2 => repeat == 3,
        _ => false,
    }
}

/// As [`rule_a`], except item 3 is right on repeat 1.
fn rule_b(item: usize, repeat: u64) -> bool {
    rule_a(item, repeat) || (item == 3 && repeat == 1)
}

/// A server answering aime24 item i right on repeat r when `rule(i, r)`,
/// reading r from the request's seed (`SEED + r`); without a seed, as
/// repeat 0.
async fn seeded_server(rule: fn(usize, u64) -> bool) -> FakeOpenAi {
    // question -> (row index, gold) of the aime24 fixture items.
    let items: Vec<(String, String)> = fixture_samples()
        .into_iter()
        .filter(|(b, _)| b == "aime24")
        .map(|(_, s)| (s.question, s.target))
        .collect();
    let items = Arc::new(items);
    FakeOpenAi::start(FakeOptions::responding(move |body| {
        let Some((q, gold)) = gold_for(&items, body) else {
            return Reply::text("I cannot find the question.");
        };
        let index = items
            .iter()
            .position(|(x, _)| *x == q)
            .unwrap_or(usize::MAX);
        let repeat = body
            .get("seed")
            .and_then(Value::as_u64)
            .map_or(0, |s| s - SEED);
        if rule(index, repeat) {
            Reply::text(native_answer(&gold))
        } else {
            Reply::text("Step by step... so the total is \\boxed{-99999}.")
        }
    }))
    .await
}

/// An aime24 config with `repeats`, a seed and a sampling temperature.
fn repeats_config(
    server: &FakeOpenAi,
    hub: &str,
    cache: &Path,
    out: &Path,
    repeats: usize,
) -> bench::config::EvalConfig {
    let mut cfg = config(&server.url(), hub, cache, out, &["aime24"]);
    cfg.limit = Some(Limit::Count(ITEMS));
    cfg.limit_text = Some(ITEMS.to_string());
    for p in &mut cfg.benchmarks {
        p.repeats = repeats;
    }
    cfg.generation = json!({"seed": SEED, "temperature": 0.7})
        .as_object()
        .unwrap()
        .clone();
    cfg
}

fn primary(rows: &[ResultRow]) -> &ResultRow {
    rows.iter()
        .find(|r| r.primary && r.benchmark == "aime24")
        .expect("aime24 primary row")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// The journal's lines as JSON values.
fn journal_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("samples/aime24.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (row index, seed) of every generation request the server received.
fn asked(server: &FakeOpenAi) -> Vec<(usize, u64)> {
    asked_since(server, 0)
}

/// As [`asked`], for the requests after the first `from` generation requests.
fn asked_since(server: &FakeOpenAi, from: usize) -> Vec<(usize, u64)> {
    let items: Vec<(String, String)> = fixture_samples()
        .into_iter()
        .filter(|(b, _)| b == "aime24")
        .map(|(_, s)| (s.question, s.target))
        .collect();
    let mut out: Vec<(usize, u64)> = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/completions"))
        .skip(from)
        .map(|r| {
            let (q, _) = gold_for(&items, &r.body).expect("a known question");
            let i = items.iter().position(|(x, _)| *x == q).unwrap();
            (i, r.body["seed"].as_u64().expect("a seed"))
        })
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_give_mean_accuracy_spread_and_pass_at_k_computed_by_hand() {
    let hub = start_hub().await;
    let server = seeded_server(rule_a).await;
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path().join("cache"), tmp.path().join("run"));
    let cfg = repeats_config(&server, &hub.url(), &cache, &dir, 4);
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.requested, ITEMS * 4);

    // One request per (item, repeat), repeat r with seed SEED + r.
    let want: Vec<(usize, u64)> = (0..ITEMS)
        .flat_map(|i| (0..4).map(move |r| (i, SEED + r)))
        .collect();
    assert_eq!(asked(&server), want);

    // One journal line per pair, carrying its 0-based repeat, graded by the rule.
    let lines = journal_lines(&dir);
    assert_eq!(lines.len(), ITEMS * 4);
    let mut seen: Vec<(usize, u64)> = Vec::new();
    for l in &lines {
        let (i, r) = (
            l["index"].as_u64().unwrap() as usize,
            l["repeat"].as_u64().expect("repeat on every line"),
        );
        assert_eq!(l["correct"], json!(rule_a(i, r)), "{l}");
        seen.push((i, r));
    }
    seen.sort_unstable();
    let pairs: Vec<(usize, u64)> = (0..ITEMS)
        .flat_map(|i| (0..4).map(move |r| (i, r)))
        .collect();
    assert_eq!(seen, pairs);

    // run.json records the repeats.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["settings"]["benchmarks"][0]["repeats"], json!(4));

    // By hand. Correct per item: 4, 2, 1, 0 of 4.
    // Mean accuracy over the 16 pairs: 7/16.
    // Per repeat: r0 {0,1} 2/4, r1 {0,1} 2/4, r2 {0} 1/4, r3 {0,2} 2/4.
    // Their sample std: mean 7/16, squared deviations 3 x (1/16)^2 + (3/16)^2
    // = 12/256, over N-1 = 3: 4/256, sqrt = 1/8.
    // pass@1 = mean c/n = (1 + 1/2 + 1/4 + 0) / 4 = 7/16.
    // pass@2 = mean 1 - C(4-c, 2)/C(4, 2) = (1 + (1 - 1/6) + (1 - 3/6) + 0) / 4 = 7/12.
    // pass@4 = items with any right / 4 = 3/4.
    // Item means 1, 1/2, 1/4, 0: mean 7/16, sample variance
    // ((9/16)^2 + (1/16)^2 + (3/16)^2 + (7/16)^2) / 3 = (140/256)/3; stderr = sqrt(that / 4).
    let row = primary(&out.report.results);
    assert_eq!((row.stats.n, row.stats.correct), (16, 7));
    assert!(close(row.stats.accuracy, 7.0 / 16.0), "{row:?}");
    let rs = row.repeats.as_ref().expect("repeat stats");
    assert_eq!((rs.n, rs.items, rs.incomplete), (4, 4, 0));
    assert_eq!(rs.per_repeat, vec![0.5, 0.5, 0.25, 0.5]);
    assert!(close(rs.std, 0.125), "{rs:?}");
    let item_se = ((140.0 / 256.0) / 3.0 / 4.0f64).sqrt();
    assert!(close(rs.item_stderr, item_se), "{rs:?}");
    let ks: Vec<u64> = rs.pass_at_k.iter().map(|p| p.k).collect();
    assert_eq!(ks, vec![1, 2, 4]);
    assert!(close(rs.pass(1).unwrap(), 7.0 / 16.0), "{rs:?}");
    assert!(close(rs.pass(2).unwrap(), 7.0 / 12.0), "{rs:?}");
    assert!(close(rs.pass(4).unwrap(), 0.75), "{rs:?}");
    assert!(rs.pass_at_k.iter().all(|p| p.items == 4));

    // The reports show them: report.json (valid against the schema),
    // report.md, report.html and the terminal summary.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let jrow = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["primary"] == json!(true))
        .unwrap();
    assert_eq!(jrow["repeats"]["pass_at_k"][2]["k"], json!(4));
    assert_eq!(jrow["repeats"]["pass_at_k"][2]["value"], json!(0.75));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("**Repeats**"), "{md}");
    assert!(
        md.contains("pass@4 (%)") && md.contains("| **43.8** | 12.5 |"),
        "{md}"
    );
    assert!(md.contains("| 43.8 | 58.3 | 75.0 |"), "{md}");
    assert!(md.contains("4 repeats"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2>Repeats</h2>") && html.contains("pass@2 (%)"));
    let term = bench::report::terminal_table(&out.report);
    assert!(term.contains("pass@4") && term.contains("75.0"), "{term}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_repeats_the_record_keeps_its_old_form() {
    let hub = start_hub().await;
    let server = seeded_server(rule_a).await;
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path().join("cache"), tmp.path().join("run"));
    let cfg = repeats_config(&server, &hub.url(), &cache, &dir, 1);
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    // One request per item, all with the seed as given.
    let want: Vec<(usize, u64)> = (0..ITEMS).map(|i| (i, SEED)).collect();
    assert_eq!(asked(&server), want);
    for l in journal_lines(&dir) {
        assert!(l.get("repeat").is_none(), "{l}");
    }
    let run = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(!run.contains("\"repeats\""), "{run}");
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
    assert!(!report.contains("\"repeats\""), "{report}");
    assert!(primary(&out.report.results).repeats.is_none());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(!md.contains("Repeats") && !md.contains("pass@"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_asks_only_the_missing_item_repeat_pairs() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path().join("cache"), tmp.path().join("run"));
    let first = seeded_server(rule_a).await;
    bench::eval::run_eval(
        repeats_config(&first, &hub.url(), &cache, &dir, 4),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    // An interrupted run: the lines of (1, r2) and (3, r0) never written.
    let path = dir.join("samples/aime24.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let pair = (v["index"].as_u64().unwrap(), v["repeat"].as_u64().unwrap());
            pair != (1, 2) && pair != (3, 0)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.len(), ITEMS * 4 - 2);
    std::fs::write(&path, kept.concat()).unwrap();
    // The report of the partial run says two items are incomplete.
    let partial = bench::report::rerender(&dir).unwrap();
    let rs = primary(&partial.results).repeats.clone().unwrap();
    assert_eq!((rs.items, rs.incomplete), (4, 2));
    // pass@4 only over the items with four samples (0 and 2): both right once.
    let p4 = rs.pass_at_k.iter().find(|p| p.k == 4).unwrap();
    assert_eq!((p4.items, p4.value), (2, 1.0));

    // The same server (its URL is part of the run's settings).
    let before = asked(&first).len();
    let out = bench::eval::run_eval(
        repeats_config(&first, &hub.url(), &cache, &dir, 4),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.requested, 2);
    assert_eq!(asked_since(&first, before), vec![(1, SEED + 2), (3, SEED)]);
    let row = primary(&out.report.results);
    assert_eq!((row.stats.n, row.stats.correct), (16, 7));
    let rs = row.repeats.as_ref().unwrap();
    assert_eq!(rs.incomplete, 0);
    assert!(close(rs.pass(2).unwrap(), 7.0 / 12.0));

    // Other repeats in the same directory are refused, naming the setting.
    let before = asked(&first).len();
    let e = bench::eval::run_eval(
        repeats_config(&first, &hub.url(), &cache, &dir, 8),
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("aime24.repeats") && e.contains("was 4, now 8"),
        "{e}"
    );
    assert_eq!(asked_since(&first, before), vec![]);

    // Rescoring keeps the repeats: each line, run.json and the statistics.
    let (rescored, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: dir.clone(),
        mode: "evalscope".into(),
        output: Some(tmp.path().join("rescored")),
        hub: bench::hub::HubConfig {
            endpoint: hub.url(),
            token: None,
            cache_dir: cache.clone(),
            offline: true,
        },
    })
    .await
    .unwrap();
    let lines = journal_lines(&rescored);
    assert_eq!(lines.len(), ITEMS * 4);
    assert!(lines.iter().all(|l| l["repeat"].is_u64()));
    let manifest = RunDir::new(&rescored).read_manifest().unwrap();
    assert_eq!(manifest.settings.benchmarks[0].repeats, 4);
    let row = primary(&data.results);
    assert_eq!(row.mode, "evalscope");
    let rs = row.repeats.as_ref().unwrap();
    assert!(close(row.stats.accuracy, 7.0 / 16.0), "{row:?}");
    assert!(close(rs.pass(4).unwrap(), 0.75), "{rs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_pairs_by_item_and_repeat() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let (sa, sb) = (seeded_server(rule_a).await, seeded_server(rule_b).await);
    for (server, dir, n) in [(&sa, &a, 4), (&sb, &b, 4), (&sb, &c, 2)] {
        bench::eval::run_eval(
            repeats_config(server, &hub.url(), &cache, dir, n),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    }
    // Same N: 16 pairs, one flipped (item 3, repeat 1) wrong -> right.
    let cmp = bench::compare::compare_dirs(&a, &b).unwrap();
    let primary_ex =
        RunDir::new(&a).read_manifest().unwrap().settings.benchmarks[0].extractors[0].clone();
    let row = cmp
        .rows
        .iter()
        .find(|r| r.extractor == primary_ex && r.subset == "default" && r.group.is_none())
        .unwrap();
    assert_eq!(row.n, 16, "{row:?}");
    assert_eq!((row.right_to_wrong, row.wrong_to_right), (0, 1));
    assert!(close(row.acc_a, 7.0 / 16.0) && close(row.acc_b, 8.0 / 16.0));
    assert_eq!(row.flipped, vec!["default/train#3/r1".to_string()]);
    assert_eq!(row.unpaired, 0);
    assert!(
        cmp.notes.iter().any(
            |n| n.contains("paired by (item, repeat)") && n.contains("16 (item, repeat) pairs")
        ),
        "{:?}",
        cmp.notes
    );
    assert_eq!(cmp.items.len(), 1);
    assert_eq!(cmp.items[0].item, "default/train#3/r1");

    // N = 4 vs N = 2: the 8 pairs of repeats 0 and 1 are compared, the rest said.
    let cmp = bench::compare::compare_dirs(&a, &c).unwrap();
    let row = cmp
        .rows
        .iter()
        .find(|r| r.extractor == primary_ex && r.subset == "default" && r.group.is_none())
        .unwrap();
    assert_eq!(row.n, 8, "{row:?}");
    // Repeats 0-1 under rule A: items 0 and 1 right on both: 4 of 8; rule B adds (3, r1).
    assert!(
        close(row.acc_a, 4.0 / 8.0) && close(row.acc_b, 5.0 / 8.0),
        "{row:?}"
    );
    assert_eq!(row.unpaired, 8);
    assert!(
        cmp.notes
            .iter()
            .any(|n| n.contains("4 vs 2 repeats") && n.contains("2 repeat(s) both runs have")),
        "{:?}",
        cmp.notes
    );
    let md = bench::compare::markdown(&[cmp]);
    assert!(md.contains("4 vs 2 repeats"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_repeats_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let base = [
        "eval",
        "--model",
        "m",
        "--api-url",
        "http://127.0.0.1:9/v1",
        "--datasets",
        "aime24",
        "--output",
        out.to_str().unwrap(),
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--repeats", "0"], "--repeats"),
        (vec!["--repeats", "-3"], "--repeats"),
        (vec!["--repeats", "many"], "--repeats"),
        (vec!["--repeats", "10001"], "--repeats"),
        (
            vec!["--dataset-args", r#"{"aime24": {"repeats": 0}}"#],
            "--dataset-args aime24.repeats: must be a whole number of repeats between 1 and 10000",
        ),
        (
            vec!["--dataset-args", r#"{"aime24": {"n": 2.5}}"#],
            "--dataset-args aime24.n:",
        ),
        (
            vec!["--generation-config", r#"{"n": 0}"#],
            "--generation-config n: must be a whole number",
        ),
        (
            vec!["--repeats", "3", "--generation-config", r#"{"n": 2}"#],
            "--repeats 3 contradicts --generation-config n 2",
        ),
    ];
    for (extra, want) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().copied());
        let o = bench_bin(&args, &[("HF_HUB_OFFLINE", "1")]).await;
        let stderr = text(&o.stderr);
        assert!(!o.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(want), "{extra:?}: {stderr}");
        assert!(stderr.lines().count() <= 3, "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} made a run directory");
    }
}

/// `--generation-config '{"n": 3}'` is `--repeats 3` (and `n` is not sent);
/// greedy repeats are run with one warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_config_n_is_repeats_and_greedy_repeats_warn_once() {
    let hub = start_hub().await;
    let server = seeded_server(rule_a).await;
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path().join("cache"), tmp.path().join("run"));
    let o = bench_bin(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "aime24",
            "--limit",
            "2",
            "--generation-config",
            r#"{"n": 3, "temperature": 0, "seed": 100}"#,
            "--output",
            dir.to_str().unwrap(),
            "--no-progress",
        ],
        &[
            ("HF_ENDPOINT", hub.url().as_str()),
            ("HF_HUB_CACHE", cache.to_str().unwrap()),
        ],
    )
    .await;
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("temperature 0"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("aime24: 3 repeats"), "{stderr}");
    // Three requests per item, none carrying `n`.
    let reqs = server.requests();
    let gens: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/completions"))
        .collect();
    assert_eq!(gens.len(), 6);
    assert!(gens.iter().all(|r| r.body.get("n").is_none()));
    assert_eq!(
        asked(&server),
        vec![(0, 100), (0, 101), (0, 102), (1, 100), (1, 101), (1, 102)]
    );
    assert!(stdout.contains("pass@2"), "{stdout}");
    let m = RunDir::new(&dir).read_manifest().unwrap();
    assert_eq!(m.settings.benchmarks[0].repeats, 3);
    assert!(!m.settings.generation.contains_key("n"));
}
