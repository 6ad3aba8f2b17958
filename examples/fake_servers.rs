//! Start the fake hub and a fake OpenAI server on 127.0.0.1 and keep them
//! running until Ctrl-C, to try `bench eval` without a model or the network:
//!
//! ```sh
//! cargo run --release --example fake_servers -- [HUB_DIR]   # default: fixtures/hub
//! # then, in another shell, paste the three `export` lines it prints, and:
//! cargo run --release -- eval --model fake-model --datasets gsm8k arc --limit 20
//! ```
//!
//! (`--release` shares the build of `cargo run --release`; a plain
//! `cargo run --example` builds every dependency again in the dev profile.)
//!
//! The fake hub serves a few fixture rows under the real pinned commits, so
//! its files must never land in the cache real runs use: the printed
//! `HF_HUB_CACHE` is a cache of its own, and bench refuses to put fake-hub
//! files into a cache that holds anything else (and to use a fake-hub cache
//! with a real hub).
//!
//! The fake model is not an oracle: it answers GSM8K with an arbitrary
//! `\boxed{}` number and ARC with an arbitrary `ANSWER: <letter>` (chosen by
//! a hash of the prompt, so runs are repeatable), and now and then rambles
//! without an answer or stops at the length limit, so the reports show every
//! outcome.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply, prompt_text};

#[tokio::main]
async fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/hub"));
    let hub = FakeHub::start(FakeHubOptions::new(root.clone())).await;
    let server = FakeOpenAi::start(FakeOptions::responding(|body| {
        let text = prompt_text(body);
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        let roll = h.finish() % 12;
        if text.contains("multiple choice") {
            let letter = ["A", "B", "C", "D"][(roll % 4) as usize];
            match roll {
                11 => Reply::text("These options are all plausible; it depends on context."),
                _ => Reply::text(format!(
                    "Considering each option in turn...\nANSWER: {letter}"
                )),
            }
        } else {
            match roll {
                11 => Reply::text("Let me set up the equation: first we compute the")
                    .with_finish_reason("length"),
                10 => Reply::text("This problem needs more information."),
                _ => Reply::text(format!("Adding it all up gives \\boxed{{{}}}.", roll * 3)),
            }
        }
        .with_reasoning("The user wants a careful answer. <b>bold?</b>")
    }))
    .await;
    let cache = std::env::temp_dir().join("bench-fake-hub-cache");
    println!(
        "fake hub serving {} and a fake OpenAI server (model fake-model); in another shell:\n",
        root.display()
    );
    println!("export HF_ENDPOINT={}", hub.url());
    println!("export HF_HUB_CACHE={}", cache.display());
    println!("export BENCH_API_URL={}", server.url());
    println!("cargo run --release -- eval --model fake-model --datasets gsm8k arc --limit 20\n");
    println!(
        "(HF_HUB_CACHE is the fake's own cache: its fixture rows never mix with real datasets)"
    );
    println!("Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
}
