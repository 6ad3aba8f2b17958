//! Compatibility modes: the prompts actually sent for items 0 and 1 equal
//! reference strings byte for byte. The expected strings are built here from
//! the written-down rules of each reference harness (research notes §6, §7)
//! and the fixture rows, never from our templates.

use std::path::Path;

use bench::client::ApiKind;
use bench::config::{Limit, plan_benchmarks};
use bench::dataset::{Row, read_parquet};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{config, fixtures_hub, start_hub};

fn rows(root: &Path, repo: &str, path: &str) -> Vec<Row> {
    read_parquet(&root.join("datasets").join(repo).join(path)).expect("fixture parquet")
}

fn s(row: &Row, k: &str) -> String {
    row[k].as_str().unwrap().to_string()
}

/// GSM8K's (question, full answer, reasoning, final answer).
fn gsm(row: &Row) -> (String, String, String, String) {
    let full = s(row, "answer");
    let i = full.rfind("####").unwrap();
    (
        s(row, "question"),
        full.clone(),
        full[..i].trim().to_string(),
        full[i + 4..].trim().to_string(),
    )
}

/// Run `bench eval` for `bench` with `args` (dataset-args JSON) against a fake
/// server, and return the request bodies it received, in item order.
async fn sent(bench: &str, args: &str, api: ApiKind, hub_root: Option<&Path>) -> Vec<Value> {
    let hub = match hub_root {
        None => start_hub().await,
        Some(root) => {
            bench::fake::hub::FakeHub::start(bench::fake::hub::FakeHubOptions {
                root: root.to_path_buf(),
                commits: crate::support::pinned_commits(),
                ..Default::default()
            })
            .await
        }
    };
    let server = FakeOpenAi::start(FakeOptions::responding(|_| Reply::text("ANSWER: A"))).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &tmp.path().join("run"),
        &[bench],
    );
    cfg.benchmarks = plan_benchmarks(&[bench.to_string()], Some(args)).unwrap();
    cfg.limit = Some(Limit::Count(2));
    cfg.concurrency = 1; // requests arrive in item order
    cfg.client.api = api;
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval");
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("completions"))
        .map(|r| r.body)
        .collect()
}

fn user(content: &str) -> Value {
    json!({"role": "user", "content": content})
}

fn assistant(content: &str) -> Value {
    json!({"role": "assistant", "content": content})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evalscope_gsm8k_prompt() {
    let root = fixtures_hub();
    let train = rows(&root, "openai/gsm8k", "main/train-00000-of-00001.parquet");
    let test = rows(&root, "openai/gsm8k", "main/test-00000-of-00001.parquet");
    // EvalScope v1: the first 4 train rows, each "{q}\n\nReasoning:\n{r}\n\nANSWER: \boxed{t}",
    // joined by "\n\n", after a header; then the zero-shot template.
    let shots: Vec<String> = train[..4]
        .iter()
        .map(|r| {
            let (q, _, reason, gold) = gsm(r);
            format!("{q}\n\nReasoning:\n{reason}\n\nANSWER: \\boxed{{{gold}}}")
        })
        .collect();
    let bodies = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "evalscope"}}"#,
        ApiKind::Chat,
        None,
    )
    .await;
    for (i, body) in bodies.iter().enumerate() {
        let (q, ..) = gsm(&test[i]);
        let want = format!(
            "Here are some examples of how to solve similar problems:\n\n{}\n\n{q}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
            shots.join("\n\n")
        );
        assert_eq!(body["messages"], json!([user(&want)]), "item {i}");
        assert_eq!(body["temperature"], json!(0.0));
        assert!(
            body.get("max_tokens").is_none(),
            "EvalScope sends no max_tokens"
        );
    }
    assert_eq!(bodies.len(), 2);
}

/// lm-eval's `gsm8k` few-shot draw on a 12-row train split: from CPython,
/// `r = random.Random(1234); r.sample(range(12), 5); r.sample(range(12), 5)`.
const DRAW_12: [[usize; 5]; 2] = [[7, 1, 0, 10, 9], [10, 1, 11, 5, 3]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lm_eval_gsm8k_prompt_completions_and_chat() {
    let root = fixtures_hub();
    let train = rows(&root, "openai/gsm8k", "main/train-00000-of-00001.parquet");
    let test = rows(&root, "openai/gsm8k", "main/test-00000-of-00001.parquet");
    let text = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval"}}"#,
        ApiKind::Completions,
        None,
    )
    .await;
    let chat = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval"}}"#,
        ApiKind::Chat,
        None,
    )
    .await;
    for i in 0..2 {
        let (q, ..) = gsm(&test[i]);
        let mut want = String::new();
        let mut msgs = Vec::new();
        for &j in &DRAW_12[i] {
            let (sq, sfull, ..) = gsm(&train[j]);
            want.push_str(&format!("Question: {sq}\nAnswer: {sfull}\n\n"));
            msgs.push(user(&format!("Question: {sq}\nAnswer:")));
            msgs.push(assistant(&sfull));
        }
        want.push_str(&format!("Question: {q}\nAnswer:"));
        msgs.push(user(&format!("Question: {q}\nAnswer:")));
        assert_eq!(text[i]["prompt"], json!(want), "completions item {i}");
        assert_eq!(chat[i]["messages"], json!(msgs), "chat item {i}");
        for body in [&text[i], &chat[i]] {
            assert_eq!(body["max_tokens"], json!(256));
            assert_eq!(body["stop"], json!(["Question:", "</s>", "<|im_end|>"]));
            assert_eq!(body["temperature"], json!(0.0));
            assert_eq!(body["seed"], json!(1234));
        }
    }
}

/// The same draw over the real 7473-row train split, when the real files are
/// beside the repository (`../shared/datasets/hub`, as on CI): CPython gives
/// `[6374,3610,957,61,742]` then `[7462,6610,4769,286,5501]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lm_eval_gsm8k_draw_on_real_train_split() {
    let shared = std::env::var("BENCH_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let root = shared.join("datasets/hub");
    if !root.join("datasets/openai/gsm8k").is_dir() {
        crate::support::skip(
            "lm_eval_gsm8k_draw_on_real_train_split",
            &format!("no real datasets at {}", root.display()),
            "BENCH_REQUIRE_REAL_DATA",
        );
        return;
    }
    let train = rows(&root, "openai/gsm8k", "main/train-00000-of-00001.parquet");
    assert_eq!(train.len(), 7473);
    let bodies = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval"}}"#,
        ApiKind::Completions,
        Some(&root),
    )
    .await;
    for (i, draw) in [[6374, 3610, 957, 61, 742], [7462, 6610, 4769, 286, 5501]]
        .iter()
        .enumerate()
    {
        let prompt = bodies[i]["prompt"].as_str().unwrap();
        let mut pos = 0;
        for &j in draw {
            let (sq, sfull, ..) = gsm(&train[j]);
            let shot = format!("Question: {sq}\nAnswer: {sfull}\n\n");
            assert_eq!(&prompt[pos..pos + shot.len()], shot, "item {i}, shot {j}");
            pos += shot.len();
        }
    }
}

/// lm-eval `gsm8k_cot`'s 8 exemplars, as the research notes list them.
const COT: [(&str, &str); 8] = [
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lm_eval_gsm8k_cot_and_zeroshot_prompts() {
    let root = fixtures_hub();
    let test = rows(&root, "openai/gsm8k", "main/test-00000-of-00001.parquet");
    let cot = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval-cot"}}"#,
        ApiKind::Completions,
        None,
    )
    .await;
    let zero = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval-cot-zeroshot"}}"#,
        ApiKind::Completions,
        None,
    )
    .await;
    let exemplars: String = COT
        .iter()
        .map(|(q, a)| format!("Q: {q}\nA: {a}\n\n"))
        .collect();
    for i in 0..2 {
        let (q, ..) = gsm(&test[i]);
        assert_eq!(
            cot[i]["prompt"],
            json!(format!("{exemplars}Q: {q}\nA:")),
            "cot item {i}"
        );
        assert_eq!(
            zero[i]["prompt"],
            json!(format!("Q: {q}\nA: Let's think step by step.")),
            "zeroshot item {i}"
        );
        for body in [&cot[i], &zero[i]] {
            assert_eq!(body["stop"], json!(["Q:", "</s>", "<|im_end|>"]));
            assert_eq!(body["max_tokens"], json!(256));
            assert_eq!(body["temperature"], json!(0));
        }
    }
}

fn arc_choices(row: &Row) -> Vec<String> {
    row["choices"]["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evalscope_arc_prompt() {
    let root = fixtures_hub();
    let bodies = sent(
        "arc",
        r#"{"arc": {"mode": "evalscope"}}"#,
        ApiKind::Chat,
        None,
    )
    .await;
    // Items 0, 1 of ARC-Easy, then 0, 1 of ARC-Challenge.
    let mut expected = Vec::new();
    for subset in ["ARC-Easy", "ARC-Challenge"] {
        let test = rows(
            &root,
            "allenai/ai2_arc",
            &format!("{subset}/test-00000-of-00001.parquet"),
        );
        for row in &test[..2] {
            let texts = arc_choices(row);
            let letters: Vec<String> = (0..texts.len())
                .map(|i| ((b'A' + i as u8) as char).to_string())
                .collect();
            let lines: Vec<String> = texts
                .iter()
                .zip(&letters)
                .map(|(t, l)| format!("{l}) {t}"))
                .collect();
            expected.push(format!(
                "Answer the following multiple choice question. The entire content of your response should be of the following format: 'ANSWER: [LETTER]' (without quotes) where [LETTER] is one of {}.\n\n{}\n\n{}",
                letters.join(","),
                s(row, "question"),
                lines.join("\n")
            ));
        }
    }
    assert_eq!(bodies.len(), 4);
    for (body, want) in bodies.iter().zip(&expected) {
        assert_eq!(body["messages"], json!([user(want)]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lm_eval_arc_challenge_chat_prompt() {
    let root = fixtures_hub();
    let bodies = sent(
        "arc_challenge",
        r#"{"arc_challenge": {"mode": "lm-eval"}}"#,
        ApiKind::Chat,
        None,
    )
    .await;
    let test = rows(
        &root,
        "allenai/ai2_arc",
        "ARC-Challenge/test-00000-of-00001.parquet",
    );
    for (i, body) in bodies.iter().enumerate() {
        let t = arc_choices(&test[i]);
        // The YAML's doc_to_text is single-quoted, so its `\n` are a backslash
        // and an `n`, not newlines: lm-eval sends them literally.
        let mut want = format!(
            "Given the following question and four candidate answers (A, B, C and D), choose the best answer.\\nQuestion: {}\\nA. {}\\nB. {}\\nC. {}",
            s(&test[i], "question").trim(),
            t[0],
            t[1],
            t[2]
        );
        if t.len() > 3 {
            want.push_str(&format!("\\nD. {}", t[3]));
        }
        want.push_str("\\nYour response should end with \"The best answer is [the_answer_letter]\" where the [the_answer_letter] is one of A, B, C or D.");
        assert_eq!(
            body["messages"],
            json!([user(&want), assistant("The best answer is")]),
            "item {i}"
        );
        assert_eq!(body["max_tokens"], json!(100));
        assert_eq!(body["stop"], json!(["\n\n", "."]));
        assert_eq!(body["temperature"], json!(0));
        assert_eq!(body["seed"], json!(1234));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lm_eval_cot_chat_turns_and_arc_chat_as_plain_text() {
    let root = fixtures_hub();
    let test = rows(&root, "openai/gsm8k", "main/test-00000-of-00001.parquet");
    let cot = sent(
        "gsm8k",
        r#"{"gsm8k": {"mode": "lm-eval-cot"}}"#,
        ApiKind::Chat,
        None,
    )
    .await;
    for i in 0..2 {
        let (q, ..) = gsm(&test[i]);
        let mut msgs: Vec<Value> = Vec::new();
        for (eq, ea) in COT {
            msgs.push(user(&format!("Q: {eq}\nA:")));
            msgs.push(assistant(ea));
        }
        msgs.push(user(&format!("Q: {q}\nA:")));
        assert_eq!(cot[i]["messages"], json!(msgs), "cot chat item {i}");
    }
    // Over /v1/completions the prefill follows the prompt after one space.
    let arc = sent(
        "arc_challenge",
        r#"{"arc_challenge": {"mode": "lm-eval"}}"#,
        ApiKind::Completions,
        None,
    )
    .await;
    for body in &arc {
        let p = body["prompt"].as_str().unwrap();
        assert!(
            p.ends_with("is one of A, B, C or D. The best answer is"),
            "{p}"
        );
    }
}

/// Issue 9 item 19: lm-eval ignores `--num_fewshot` for `gsm8k_cot_zeroshot`
/// and `arc_challenge_chat` (their YAML sets `num_fewshot: 0`), so asking
/// for shots in these modes sends exactly the zero-shot requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn few_shot_is_ignored_where_lm_eval_ignores_num_fewshot() {
    for (bench, mode, api) in [
        ("gsm8k", "lm-eval-cot-zeroshot", ApiKind::Completions),
        ("gsm8k", "lm-eval-cot-zeroshot", ApiKind::Chat),
        ("arc_challenge", "lm-eval", ApiKind::Chat),
    ] {
        let plain = sent(
            bench,
            &format!(r#"{{"{bench}": {{"mode": "{mode}"}}}}"#),
            api,
            None,
        )
        .await;
        let asked = sent(
            bench,
            &format!(r#"{{"{bench}": {{"mode": "{mode}", "few_shot": 2}}}}"#),
            api,
            None,
        )
        .await;
        assert_eq!(plain.len(), 2);
        assert_eq!(asked, plain, "{bench} {mode} {api:?}");
    }
}
