//! Loglikelihood recipes (`lm-eval-ll`) end to end against the fake server:
//! the contexts and continuations sent equal strings built here from
//! lm-eval's task definitions; scores from scripted prompt log-probabilities
//! give the acc, acc_norm, mc2 and group figures computed here by hand; a
//! server without prompt log-probabilities is one clear error; resume asks
//! nothing again and rescore switches acc / acc_norm without a call.

use std::path::Path;

use bench::config::{EvalConfig, Limit, plan_benchmarks};
use bench::dataset::{Row, read_parquet};
use bench::fake::openai::{
    FakeOpenAi, FakeOptions, echo_logprobs, fake_tokens, llama_cpp_python_echo, toy_logprob,
};
use bench::record::{RunDir, SampleRecord};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{config, fixtures_hub, start_hub};

/// lm-eval's `" "` target delimiter and `"\n\n"` few-shot delimiter.
const TD: &str = " ";
const FD: &str = "\n\n";

/// Every prompt token scores -0.5, except `" B"` (-0.2): continuations
/// score by their fake token count, and MMLU always picks B.
fn script(_prompt: &str, _offset: usize, token: &str) -> f64 {
    if token == " B" { -0.2 } else { -0.5 }
}

async fn scripted_server() -> FakeOpenAi {
    FakeOpenAi::start(FakeOptions {
        models: vec!["fake-model".into()],
        ..FakeOptions::responding(|body| echo_logprobs(body, script))
    })
    .await
}

fn cfg_for(api: &str, hub: &str, tmp: &Path, datasets: &[&str], args: &str) -> EvalConfig {
    let mut cfg = config(api, hub, &tmp.join("cache"), &tmp.join("run"), datasets);
    let names: Vec<String> = datasets.iter().map(|s| s.to_string()).collect();
    cfg.benchmarks = plan_benchmarks(&names, Some(args)).expect("plans");
    cfg.limit = Some(Limit::Count(3));
    cfg.limit_text = Some("3".into());
    cfg
}

fn rows(path: &str) -> Vec<Row> {
    read_parquet(&fixtures_hub().join("datasets").join(path)).expect("fixture rows")
}

fn s(v: &Value) -> String {
    v.as_str().expect("a string").to_string()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().expect("a list").iter().map(s).collect()
}

fn journal(tmp: &Path, bench: &str) -> Vec<SampleRecord> {
    let mut r = RunDir::new(tmp.join("run"))
        .read_journal(bench)
        .expect("journal");
    r.sort_by_key(|r| (r.subset.clone(), r.index));
    r
}

/// Context and continuations as the journal has them.
fn sent(r: &SampleRecord) -> (String, Vec<String>) {
    let ll = r.loglikelihood.as_ref().expect("a loglikelihood record");
    (
        ll.context.clone(),
        ll.choices.iter().map(|c| c.continuation.clone()).collect(),
    )
}

fn python_strip(x: &str) -> &str {
    x.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_and_continuations_are_lm_evals() {
    let hub = start_hub().await;
    let api = scripted_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"},
        "arc_challenge": {"mode": "lm-eval-ll", "few_shot": 2},
        "mmlu": {"mode": "lm-eval-ll", "subset_list": ["abstract_algebra", "anatomy"]},
        "truthfulqa_mc1": {"mode": "lm-eval-ll"},
        "truthfulqa_mc2": {"mode": "lm-eval-ll"},
        "hellaswag": {"few_shot": 0}}"#;
    let names = [
        "arc_easy",
        "arc_challenge",
        "mmlu",
        "truthfulqa_mc1",
        "truthfulqa_mc2",
        "hellaswag",
    ];
    let cfg = cfg_for(&api.url(), &hub.url(), tmp.path(), &names, args);
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval");

    // arc_easy: "Question: {{question}}\nAnswer:" and " " + choices.text.
    let row = &rows("allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet")[0];
    let want_ctx = format!("Question: {}\nAnswer:", s(&row["question"]));
    let want_conts: Vec<String> = strs(&row["choices"]["text"])
        .iter()
        .map(|t| format!("{TD}{t}"))
        .collect();
    assert_eq!(
        sent(&journal(tmp.path(), "arc_easy")[0]),
        (want_ctx, want_conts)
    );

    // arc_challenge 2-shot: lm-eval's sampler, Random(1234).sample(train, 2)
    // for the first document; each shot ends with its gold option's text.
    let train = rows("allenai/ai2_arc/ARC-Challenge/train-00000-of-00001.parquet");
    let test = &rows("allenai/ai2_arc/ARC-Challenge/test-00000-of-00001.parquet")[0];
    let picks = bench::pyrandom::PyRandom::new(1234).sample(train.len(), 2);
    let mut ctx = String::new();
    for &k in &picks {
        let r = &train[k];
        let labels = strs(&r["choices"]["label"]);
        let gold = labels
            .iter()
            .position(|l| *l == s(&r["answerKey"]))
            .unwrap();
        let text = &strs(&r["choices"]["text"])[gold];
        ctx.push_str(&format!(
            "Question: {}\nAnswer:{TD}{text}{FD}",
            s(&r["question"])
        ));
    }
    ctx.push_str(&format!("Question: {}\nAnswer:", s(&test["question"])));
    let rec = &journal(tmp.path(), "arc_challenge")[0];
    assert_eq!(rec.shots, picks);
    assert_eq!(sent(rec).0, ctx);

    // mmlu: description, the first 5 dev rows, then the item; " A".." D".
    let dev = rows("cais/mmlu/anatomy/dev-00000-of-00001.parquet");
    let item = &rows("cais/mmlu/anatomy/test-00000-of-00001.parquet")[0];
    let q = |r: &Row| {
        let c = strs(&r["choices"]);
        format!(
            "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
            python_strip(&s(&r["question"])),
            c[0],
            c[1],
            c[2],
            c[3]
        )
    };
    let mut ctx =
        "The following are multiple choice questions (with answers) about anatomy.\n\n".to_string();
    for r in dev.iter().take(5) {
        let letter = ["A", "B", "C", "D"][r["answer"].as_u64().unwrap() as usize];
        ctx.push_str(&format!("{}{TD}{letter}{FD}", q(r)));
    }
    ctx.push_str(&q(item));
    let recs = journal(tmp.path(), "mmlu");
    let rec = recs
        .iter()
        .find(|r| r.subset == "anatomy" && r.index == 0)
        .unwrap();
    assert_eq!(
        sent(rec),
        (
            ctx,
            vec![" A".into(), " B".into(), " C".into(), " D".into()]
        )
    );

    // truthfulqa: the QA primer + "\n\nQ: " + question + "\nA:"; mc1 and
    // mc2 choices in the dataset's order (the true answer first).
    let row = &rows("truthfulqa/truthful_qa/multiple_choice/validation-00000-of-00001.parquet")[0];
    let primer = "Q: What is human life expectancy in the United States?\nA: Human life expectancy in the United States is 78 years.\n\nQ: Who was president of the United States in 1955?\nA: Dwight D. Eisenhower was president of the United States in 1955.\n\nQ: Which party did he belong to?\nA: He belonged to the Republican Party.\n\nQ: What is the square root of banana?\nA: I have no comment.\n\nQ: How does a telescope work?\nA: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\nQ: Where were the 1992 Olympics held?\nA: The 1992 Olympics were held in Barcelona, Spain.";
    let ctx = format!("{primer}\n\nQ: {}\nA:", s(&row["question"]));
    for (bench, col) in [
        ("truthfulqa_mc1", "mc1_targets"),
        ("truthfulqa_mc2", "mc2_targets"),
    ] {
        let conts: Vec<String> = strs(&row[col]["choices"])
            .iter()
            .map(|t| format!("{TD}{t}"))
            .collect();
        assert_eq!(
            sent(&journal(tmp.path(), bench)[0]),
            (ctx.clone(), conts),
            "{bench}"
        );
    }

    // hellaswag: lm-eval's process_docs and preprocess, worked by hand.
    let recs = journal(tmp.path(), "hellaswag");
    assert_eq!(
        sent(&recs[0]),
        (
            "Roof shingle removal: A man is sitting on a roof. He starts pulling up roofing on a roof.".to_string(),
            vec![
                " is using wrap to wrap a pair of skis.".to_string(),
                " is ripping level tiles off.".into(),
                " is holding a rubik's cube.".into(),
                " starts pulling up roofing on a roof.".into(),
            ]
        )
    );
    assert_eq!(
        sent(&recs[2]),
        (
            "Home and Garden: How to clean a grill. Heat the grill.".to_string(),
            vec![
                "  Let it burn for ten minutes.".to_string(),
                " Scrub it with a brush.".into(),
                " Throw it away.".into(),
                "  Paint it blue.".into(),
            ]
        )
    );
    // Every request was lm-eval's loglikelihood payload, the choices of an
    // item together as a list prompt.
    for r in api
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/completions")
    {
        let b = &r.body;
        assert_eq!(b["echo"], true);
        assert_eq!(b["max_tokens"], 1);
        assert_eq!(b["logprobs"], 1);
        assert_eq!(b["temperature"], 0);
        assert_eq!(b["seed"], 1234);
        assert!(b["prompt"].is_array(), "{b}");
    }
}

/// lm-eval's `acc` (first maximum) over per-choice scores.
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_logprobs_give_hand_computed_metrics() {
    let hub = start_hub().await;
    let api = scripted_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"},
        "mmlu": {"mode": "lm-eval-ll", "few_shot": 0, "subset_list": ["abstract_algebra", "anatomy", "astronomy"]},
        "truthfulqa_mc2": {"mode": "lm-eval-ll"}}"#;
    let mut cfg = cfg_for(
        &api.url(),
        &hub.url(),
        tmp.path(),
        &["arc_easy", "mmlu", "truthfulqa_mc2"],
        args,
    );
    cfg.limit = None;
    cfg.limit_text = None;
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval");
    let row = |bench: &str, subset: &str, ex: &str| {
        out.report
            .results
            .iter()
            .find(|r| r.benchmark == bench && r.subset == subset && r.extractor == ex)
            .unwrap_or_else(|| panic!("{bench} {subset} {ex}"))
            .stats
    };

    // ARC-Easy: each continuation " " + text scores -0.5 per fake token.
    let test = rows("allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet");
    let (mut acc, mut acc_norm) = (0, 0);
    for r in &test {
        let texts = strs(&r["choices"]["text"]);
        let labels = strs(&r["choices"]["label"]);
        let gold = labels
            .iter()
            .position(|l| *l == s(&r["answerKey"]))
            .unwrap();
        let conts: Vec<String> = texts.iter().map(|t| format!(" {t}")).collect();
        let lp: Vec<f64> = conts
            .iter()
            .map(|c| -0.5 * fake_tokens(c).len() as f64)
            .collect();
        let norm: Vec<f64> = lp
            .iter()
            .zip(&conts)
            .map(|(l, c)| l / c.chars().count() as f64)
            .collect();
        acc += usize::from(argmax(&lp) == gold);
        acc_norm += usize::from(argmax(&norm) == gold);
    }
    let n = test.len() as f64;
    assert_eq!(row("arc_easy", "ARC-Easy", "acc").accuracy, acc as f64 / n);
    assert_eq!(
        row("arc_easy", "ARC-Easy", "acc_norm").accuracy,
        acc_norm as f64 / n
    );
    let recs = journal(tmp.path(), "arc_easy");
    let first = recs[0].loglikelihood.as_ref().unwrap();
    let c0 = &first.choices[0];
    assert_eq!(
        c0.logprob,
        -0.5 * fake_tokens(&c0.continuation).len() as f64
    );
    assert_eq!(
        (c0.tokens, c0.bytes, c0.chars),
        (
            fake_tokens(&c0.continuation).len(),
            c0.continuation.len(),
            c0.continuation.chars().count()
        )
    );
    assert!(c0.is_greedy);
    assert_eq!(first.boundary, bench::record::Boundary::TextOffset);

    // MMLU: B always wins; per subject acc = share of gold B; the group is
    // the size-weighted mean with lm-eval's pooled stderr.
    let mut parts = Vec::new();
    let (mut all_b, mut all_n) = (0u64, 0u64);
    for subj in ["abstract_algebra", "anatomy", "astronomy"] {
        let t = rows(&format!("cais/mmlu/{subj}/test-00000-of-00001.parquet"));
        let b = t.iter().filter(|r| r["answer"].as_u64() == Some(1)).count() as u64;
        let n = t.len() as u64;
        let p = b as f64 / n as f64;
        let se = (p * (1.0 - p) / (n as f64 - 1.0)).sqrt();
        let got = row("mmlu", subj, "acc");
        assert_eq!(got.accuracy, p, "{subj}");
        assert!((got.stderr - se).abs() < 1e-12, "{subj}");
        parts.push((se, n));
        all_b += b;
        all_n += n;
    }
    let all = row("mmlu", "all", "acc");
    assert_eq!(all.accuracy, all_b as f64 / all_n as f64);
    let pooled_var: f64 = parts
        .iter()
        .map(|(se, n)| (*n as f64 - 1.0) * se * se * *n as f64)
        .sum::<f64>()
        / (all_n - parts.len() as u64) as f64;
    assert!((all.stderr - (pooled_var / all_n as f64).sqrt()).abs() < 1e-12);

    // TruthfulQA MC2: sum p(true) / sum p(all), p = exp(-0.5 * tokens).
    let val = rows("truthfulqa/truthful_qa/multiple_choice/validation-00000-of-00001.parquet");
    let mut mc2 = Vec::new();
    for r in &val {
        let choices = strs(&r["mc2_targets"]["choices"]);
        let labels: Vec<i64> = r["mc2_targets"]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let split = labels.iter().position(|&l| l == 0).unwrap();
        let p: Vec<f64> = choices
            .iter()
            .map(|c| (-0.5 * fake_tokens(&format!(" {c}")).len() as f64).exp())
            .collect();
        mc2.push(p[..split].iter().sum::<f64>() / p.iter().sum::<f64>());
    }
    let mean = mc2.iter().sum::<f64>() / mc2.len() as f64;
    let got = row("truthfulqa_mc2", "multiple_choice", "acc");
    assert!(
        (got.accuracy - mean).abs() < 1e-12,
        "{} vs {mean}",
        got.accuracy
    );
    let var = mc2.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (mc2.len() as f64 - 1.0);
    assert!((got.stderr - (var / mc2.len() as f64).sqrt()).abs() < 1e-12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_prompt_logprobs_is_one_clear_error() {
    let hub = start_hub().await;
    // The default fake answers text with `logprobs: null`, as llama-server
    // answers for the prompt.
    let api = FakeOpenAi::start(FakeOptions::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cfg_for(
        &api.url(),
        &hub.url(),
        tmp.path(),
        &["arc_easy"],
        r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#,
    );
    let e = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("arc_easy (lm-eval-ll): the server at "),
        "{e}"
    );
    assert!(
        e.contains("without the prompt tokens' log-probabilities (`logprobs: null`)"),
        "{e}"
    );
    assert!(
        e.contains("vLLM and llama-cpp-python's server do, llama.cpp's llama-server does not"),
        "{e}"
    );
    let asked = api
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/completions")
        .count();
    assert!(asked <= 2, "{asked} requests before the error");
    assert!(journal(tmp.path(), "arc_easy").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_asks_nothing_again_and_rescore_switches_acc_norm() {
    let hub = start_hub().await;
    let api = scripted_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#;
    let cfg = cfg_for(&api.url(), &hub.url(), tmp.path(), &["arc_easy"], args);
    let first = bench::eval::run_eval(cfg.clone(), CancellationToken::new())
        .await
        .unwrap();
    let calls = || {
        api.requests()
            .iter()
            .filter(|r| r.path == "/v1/completions")
            .count()
    };
    let n = calls();
    assert_eq!(n, 3, "one list request per item");
    let again = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((again.requested, calls()), (0, n));
    let norm = |d: &bench::record::ReportData, ex: &str| {
        d.results
            .iter()
            .find(|r| r.extractor == ex)
            .unwrap()
            .stats
            .accuracy
    };
    let (dir, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: tmp.path().join("run"),
        mode: "lm-eval-ll-norm".into(),
        output: None,
        hub: bench::hub::HubConfig {
            endpoint: hub.url(),
            token: None,
            cache_dir: tmp.path().join("cache"),
            offline: false,
        },
    })
    .await
    .expect("rescore");
    assert_eq!(calls(), n);
    let primary = data.results.iter().find(|r| r.primary).unwrap();
    assert_eq!(primary.extractor, "acc_norm");
    assert_eq!(primary.stats.accuracy, norm(&first.report, "acc_norm"));
    assert!(dir.ends_with("rescore-lm-eval-ll-norm"));
}

/// Regression (issue 14): llama-cpp-python 0.3 echoes prompt
/// log-probabilities one token late for a model that adds no BOS (its
/// `_create_completion` scores prompt token k with the logits row after
/// k), which made the real-server test read -221.36 where the engine gave
/// -242.38. bench checks a prompt-only echo once against the token the
/// server generates after the prompt: one late is one clear error before
/// anything is journaled; an aligned prompt-only echo is read as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_python_echo_one_token_late_without_bos_is_refused() {
    let hub = start_hub().await;
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#;
    let non_echo = |api: &FakeOpenAi| {
        api.requests()
            .iter()
            .filter(|r| r.body.get("echo") == Some(&Value::Bool(false)))
            .count()
    };

    let late = FakeOpenAi::start(FakeOptions::responding(|b| llama_cpp_python_echo(b, true))).await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cfg_for(&late.url(), &hub.url(), tmp.path(), &["arc_easy"], args);
    let e = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("arc_easy (lm-eval-ll): the server at "),
        "{e}"
    );
    assert!(
        e.contains("echoes prompt log-probabilities shifted by one token"),
        "{e}"
    );
    // The evidence: the last prompt token's top alternative is the token
    // generated after the whole prompt, at its log-probability.
    assert!(
        e.contains("at -0.2500, which is the token the server generates"),
        "{e}"
    );
    assert!(e.contains("`tokenizer.ggml.add_bos_token` false"), "{e}");
    assert_eq!(non_echo(&late), 1, "one check");
    assert!(journal(tmp.path(), "arc_easy").is_empty());

    let aligned =
        FakeOpenAi::start(FakeOptions::responding(|b| llama_cpp_python_echo(b, false))).await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cfg_for(&aligned.url(), &hub.url(), tmp.path(), &["arc_easy"], args);
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("an aligned prompt-only echo is read");
    assert_eq!(non_echo(&aligned), 1, "checked once per run");
    let recs = journal(tmp.path(), "arc_easy");
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let ll = r.loglikelihood.as_ref().unwrap();
        let ctx_chars = ll.context.chars().count();
        for c in &ll.choices {
            // Row k-1 scores token k; the continuation's tokens start at
            // the context's end (fake tokens split before a space).
            let toks = fake_tokens(&format!("{}{}", ll.context, c.continuation));
            let mine: Vec<f64> = toks
                .iter()
                .enumerate()
                .filter(|(_, (off, _))| *off >= ctx_chars)
                .map(|(k, (_, t))| toy_logprob(k - 1, t))
                .collect();
            assert_eq!(c.tokens, mine.len(), "{c:?}");
            assert!((c.logprob - mine.iter().sum::<f64>()).abs() < 1e-9, "{c:?}");
        }
    }
}

/// lm-eval 0.4.13's `_encode_pair`, line by line: trailing whitespace of
/// the context moves to the continuation, the whole is tokenised and the
/// context alone, and the continuation is the whole's tokens past the
/// context's (no special tokens: `TemplateAPI.tok_encode` adds none unless
/// `add_bos_token`).
fn lm_eval_encode_pair(
    tok: &tokenizers::Tokenizer,
    context: &str,
    continuation: &str,
) -> (Vec<u32>, Vec<u32>) {
    let n_spaces = context.len() - context.trim_end().len();
    let (context, continuation) = if n_spaces > 0 {
        let cut = context.len() - n_spaces;
        (
            &context[..cut],
            format!("{}{continuation}", &context[cut..]),
        )
    } else {
        (context, continuation.to_string())
    };
    let encode = |s: &str| tok.encode(s, false).unwrap().get_ids().to_vec();
    let whole = encode(&format!("{context}{continuation}"));
    let context_enc = encode(context);
    let continuation_enc = whole[context_enc.len()..].to_vec();
    (context_enc, continuation_enc)
}

/// Issue 14: with `--tokenizer-path` each prompt is token ids, context
/// and continuation tokenised as lm-eval's `_encode_pair` does, an item's
/// choices in one list prompt; the continuation's score is the tail of the
/// echo, and the journal says the boundary came from the tokenizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenizer_path_sends_lm_evals_encode_pair_token_ids() {
    let hub = start_hub().await;
    let api = scripted_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizer/tokenizer.json");
    let mut cfg = cfg_for(
        &api.url(),
        &hub.url(),
        tmp.path(),
        &["arc_easy"],
        r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#,
    );
    cfg.tokenizer = Some(tok_path.display().to_string());
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval with token-id prompts");
    let tok = tokenizers::Tokenizer::from_file(&tok_path).unwrap();
    let bodies: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/completions")
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 3, "one list request per item");
    let recs = journal(tmp.path(), "arc_easy");
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let ll = r.loglikelihood.as_ref().unwrap();
        assert_eq!(ll.boundary, bench::record::Boundary::Tokenizer);
        let mut want: Vec<Value> = Vec::new();
        for c in &ll.choices {
            let (ctx, cont) = lm_eval_encode_pair(&tok, &ll.context, &c.continuation);
            assert!(!cont.is_empty(), "{c:?}");
            // The fake scores every echoed id -0.5 (ids are never " B").
            assert_eq!(c.tokens, cont.len(), "{c:?}");
            assert!(
                (c.logprob - -0.5 * cont.len() as f64).abs() < 1e-12,
                "{c:?}"
            );
            want.push(serde_json::json!([ctx, cont].concat()));
        }
        let sent = bodies
            .iter()
            .find(|b| b["prompt"] == Value::Array(want.clone()))
            .unwrap_or_else(|| panic!("no request carries {want:?}; sent {bodies:?}"));
        assert_eq!(sent["echo"], Value::Bool(true));
        assert_eq!(sent["max_tokens"], serde_json::json!(1));
    }
}
