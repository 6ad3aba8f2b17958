//! Trains the small byte-level BPE tokenizer in `fixtures/tokenizer/` that
//! the perf prompt tests use (exact-length random prompts need a real
//! `tokenizer.json`, and no model repo can be downloaded here).
//!
//! ```text
//! cargo run --release --example train_tokenizer [-- OUT_DIR]
//! ```
//!
//! `OUT_DIR` defaults to `fixtures/tokenizer`. The corpus is fixed: the
//! GSM8K and ARC rows in `fixtures/hub/` plus English-like text generated
//! from a word list with a seeded xoshiro256++ and a few fixed non-ASCII
//! lines (so multi-byte characters get merges and partial-UTF-8 tokens
//! exist, which the prompt generator must avoid). Training runs without
//! parallelism, so running it twice writes byte-identical files; the sha256
//! is printed to check that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

/// Target vocabulary size (base bytes + merges + special tokens).
const VOCAB_SIZE: usize = 3000;
/// Seed for the generated text.
const SEED: u64 = 20_250_601;
/// Generated English-like sentences.
const SENTENCES: usize = 12_000;
/// Special tokens, as a chat model's tokenizer has them: the generator must
/// never draw them.
const SPECIAL: &[&str] = &["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Common English words, roughly by frequency (the generator draws early
/// entries more often, so merges look like a real tokenizer's).
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "I",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "had",
    "by",
    "not",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "an",
    "each",
    "she",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "about",
    "many",
    "then",
    "them",
    "write",
    "would",
    "like",
    "so",
    "these",
    "her",
    "long",
    "make",
    "thing",
    "see",
    "him",
    "two",
    "has",
    "look",
    "more",
    "day",
    "could",
    "go",
    "come",
    "did",
    "number",
    "sound",
    "no",
    "most",
    "people",
    "my",
    "over",
    "know",
    "water",
    "than",
    "call",
    "first",
    "who",
    "may",
    "down",
    "side",
    "been",
    "now",
    "find",
    "any",
    "new",
    "work",
    "part",
    "take",
    "get",
    "place",
    "made",
    "live",
    "where",
    "after",
    "back",
    "little",
    "only",
    "round",
    "man",
    "year",
    "came",
    "show",
    "every",
    "good",
    "me",
    "give",
    "our",
    "under",
    "name",
    "very",
    "through",
    "just",
    "form",
    "sentence",
    "great",
    "think",
    "say",
    "help",
    "low",
    "line",
    "differ",
    "turn",
    "cause",
    "much",
    "mean",
    "before",
    "move",
    "right",
    "boy",
    "old",
    "too",
    "same",
    "tell",
    "does",
    "set",
    "three",
    "want",
    "air",
    "well",
    "also",
    "play",
    "small",
    "end",
    "put",
    "home",
    "read",
    "hand",
    "port",
    "large",
    "spell",
    "add",
    "even",
    "land",
    "here",
    "must",
    "big",
    "high",
    "such",
    "follow",
    "act",
    "why",
    "ask",
    "men",
    "change",
    "went",
    "light",
    "kind",
    "off",
    "need",
    "house",
    "picture",
    "try",
    "us",
    "again",
    "animal",
    "point",
    "mother",
    "world",
    "near",
    "build",
    "self",
    "earth",
    "father",
    "head",
    "stand",
    "own",
    "page",
    "should",
    "country",
    "found",
    "answer",
    "school",
    "grow",
    "study",
    "still",
    "learn",
    "plant",
    "cover",
    "food",
    "sun",
    "four",
    "between",
    "state",
    "keep",
    "eye",
    "never",
    "last",
    "let",
    "thought",
    "city",
    "tree",
    "cross",
    "farm",
    "hard",
    "start",
    "might",
    "story",
    "saw",
    "far",
    "sea",
    "draw",
    "left",
    "late",
    "run",
    "while",
    "press",
    "close",
    "night",
    "real",
    "life",
    "few",
    "north",
    "open",
    "seem",
    "together",
    "next",
    "white",
    "children",
    "begin",
    "got",
    "walk",
    "example",
    "ease",
    "paper",
    "group",
    "always",
    "music",
    "those",
    "both",
    "mark",
    "often",
    "letter",
    "until",
    "mile",
    "river",
    "car",
    "feet",
    "care",
    "second",
    "book",
    "carry",
    "took",
    "science",
    "eat",
    "room",
    "friend",
    "began",
    "idea",
    "fish",
    "mountain",
    "stop",
    "once",
    "base",
    "hear",
    "horse",
    "cut",
    "sure",
    "watch",
    "color",
    "face",
    "wood",
    "main",
    "enough",
    "plain",
    "girl",
    "usual",
    "young",
    "ready",
    "above",
    "ever",
    "red",
    "list",
    "though",
    "feel",
    "talk",
    "bird",
    "soon",
    "body",
    "dog",
    "family",
    "direct",
    "pose",
    "leave",
    "song",
    "measure",
    "door",
    "product",
    "black",
    "short",
    "numeral",
    "class",
    "wind",
    "question",
    "happen",
    "complete",
    "ship",
    "area",
    "half",
    "rock",
    "order",
    "fire",
    "south",
    "problem",
    "piece",
    "told",
    "knew",
    "pass",
    "since",
    "top",
    "whole",
    "king",
    "space",
    "heard",
    "best",
    "hour",
    "better",
    "true",
    "during",
    "hundred",
    "five",
    "remember",
    "step",
    "early",
    "hold",
    "west",
    "ground",
    "interest",
    "reach",
    "fast",
    "verb",
    "sing",
    "listen",
    "six",
    "table",
    "travel",
    "less",
    "morning",
    "ten",
    "simple",
    "several",
    "vowel",
    "toward",
    "war",
    "lay",
    "against",
    "pattern",
    "slow",
    "center",
    "love",
    "person",
    "money",
    "serve",
    "appear",
    "road",
    "map",
    "rain",
    "rule",
    "govern",
    "pull",
    "cold",
    "notice",
    "voice",
    "unit",
    "power",
    "town",
    "fine",
    "certain",
    "fly",
    "fall",
    "lead",
    "cry",
    "dark",
    "machine",
    "note",
    "wait",
    "plan",
    "figure",
    "star",
    "box",
    "noun",
    "field",
    "rest",
    "correct",
    "able",
    "pound",
    "done",
    "beauty",
    "drive",
    "stood",
    "contain",
    "front",
    "teach",
    "week",
    "final",
    "gave",
    "green",
    "quick",
    "develop",
    "ocean",
    "warm",
    "free",
    "minute",
    "strong",
    "special",
    "mind",
    "behind",
    "clear",
    "tail",
    "produce",
    "fact",
    "street",
    "inch",
    "multiply",
    "nothing",
    "course",
    "stay",
    "wheel",
    "full",
    "force",
    "blue",
    "object",
    "decide",
    "surface",
    "deep",
    "moon",
    "island",
    "foot",
    "system",
    "busy",
    "test",
    "record",
    "boat",
    "common",
    "gold",
    "possible",
    "plane",
    "stead",
    "dry",
    "wonder",
    "laugh",
    "thousand",
    "ago",
    "ran",
    "check",
    "game",
    "shape",
    "equate",
    "miss",
    "brought",
    "heat",
    "snow",
    "tire",
    "bring",
    "yes",
    "distant",
    "fill",
    "east",
    "paint",
    "language",
    "among",
    "energy",
    "temperature",
    "experiment",
    "student",
    "teacher",
    "dollars",
    "cents",
    "apples",
    "cookies",
    "minutes",
    "hours",
    "weeks",
    "percent",
    "total",
    "price",
    "cost",
    "each",
    "every",
    "twice",
    "half",
];

/// Fixed non-ASCII lines: accented Latin, Cyrillic, Greek, CJK and emoji.
const MULTILINGUAL: &[&str] = &[
    "Le café est très naïf, mais le résumé est prêt à l'été.",
    "Grüße aus München: Straße, Mädchen, über, schön.",
    "Привет, мир! Как дела? Хорошо, спасибо.",
    "Καλημέρα κόσμε, η θάλασσα είναι γαλάζια.",
    "今日は良い天気です。東京の空は青い。",
    "我们今天学习数学和科学，明天去公园。",
    "한국어 문장도 조금 있습니다.",
    "Emoji: 😀 🚀 ✨ 👍 — “quotes” and ‘apostrophes’ … ½ ¾ °C ±5%.",
];

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures").join("tokenizer"));

    let corpus = corpus(&root.join("fixtures").join("hub"))?;
    let corpus_bytes: usize = corpus.iter().map(String::len).sum();
    println!(
        "corpus: {} lines, {corpus_bytes} bytes",
        corpus.len(),
        corpus_bytes = corpus_bytes
    );

    // Rayon's reductions in the trainer could reorder equal-count work; one
    // thread keeps every run identical.
    tokenizers::utils::parallelism::set_parallelism(false);

    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(VOCAB_SIZE)
        .min_frequency(2)
        // All 256 byte symbols, so any text encodes without unknown tokens.
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect::<HashSet<char>>())
        .special_tokens(
            SPECIAL
                .iter()
                .map(|t| AddedToken::from(t.to_string(), true))
                .collect(),
        )
        .build();
    // GPT-2 / Qwen style: no normalizer, byte-level pre-tokenizer with the
    // GPT-2 split regex and no prefix space, byte-level decoder.
    let byte_level = ByteLevel::new(false, true, true);
    let mut tokenizer =
        TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(byte_level))
            .with_post_processor(Some(byte_level))
            .with_decoder(Some(byte_level))
            .build()
            .map_err(|e| anyhow!("building the tokenizer: {e}"))?;
    tokenizer
        .train(&mut trainer, corpus.iter())
        .map_err(|e| anyhow!("training: {e}"))?;

    let json = tokenizer
        .to_string(false)
        .map_err(|e| anyhow!("serializing: {e}"))?;
    // Round-trip through the generic loader the library uses.
    let loaded: Tokenizer = json
        .parse()
        .map_err(|e| anyhow!("the written tokenizer does not load: {e}"))?;
    let sample = "Natalia sold clips to 48 of her friends in April. 今日は 😀";
    let enc = loaded
        .encode(sample, false)
        .map_err(|e| anyhow!("encoding: {e}"))?;
    let back = loaded
        .decode(enc.get_ids(), false)
        .map_err(|e| anyhow!("decoding: {e}"))?;
    if back != sample {
        bail!("round trip changed the text: {back:?}");
    }

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join("tokenizer.json");
    std::fs::write(&path, json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {}: vocab {} (with special tokens), {} bytes, sha256 {}",
        path.display(),
        loaded.get_vocab_size(true),
        json.len(),
        hex::encode(Sha256::digest(json.as_bytes()))
    );
    println!(
        "sample: {} tokens for {} bytes",
        enc.get_ids().len(),
        sample.len()
    );
    Ok(())
}

/// The training text, in a fixed order.
fn corpus(hub: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let gsm8k = hub.join("datasets/openai/gsm8k/main");
    for split in ["train", "test"] {
        let path = gsm8k.join(format!("{split}-00000-of-00001.parquet"));
        for row in bench::dataset::read_parquet(&path)? {
            for field in ["question", "answer"] {
                lines.push(text_field(&row, field, &path)?);
            }
        }
    }
    let arc = hub.join("datasets/allenai/ai2_arc");
    for config in ["ARC-Challenge", "ARC-Easy"] {
        for split in ["train", "validation", "test"] {
            let path = arc
                .join(config)
                .join(format!("{split}-00000-of-00001.parquet"));
            for row in bench::dataset::read_parquet(&path)? {
                lines.push(text_field(&row, "question", &path)?);
                let choices = row
                    .get("choices")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_array)
                    .with_context(|| format!("{}: row without choices.text", path.display()))?;
                lines.extend(choices.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
    }
    // The real rows are few; repeat them so their words win merges over the
    // generated text's, as domain text would in a real tokenizer's corpus.
    let real = lines.clone();
    for _ in 0..20 {
        lines.extend(real.iter().cloned());
    }
    for _ in 0..40 {
        lines.extend(MULTILINGUAL.iter().map(|s| s.to_string()));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    lines.extend((0..SENTENCES).map(|_| sentence(&mut rng)));
    Ok(lines)
}

fn text_field(row: &bench::dataset::Row, field: &str, path: &Path) -> Result<String> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{}: row without string `{field}`", path.display()))
}

/// One English-like sentence: Zipf-ish word choice, some numbers, commas,
/// capitalised first word, varied end punctuation.
fn sentence(rng: &mut Xoshiro256PlusPlus) -> String {
    let len = rng.random_range(5..=18);
    let mut s = String::new();
    for i in 0..len {
        if i > 0 {
            s.push(if rng.random_range(0..12) == 0 {
                ','
            } else {
                ' '
            });
            if s.ends_with(',') {
                s.push(' ');
            }
        }
        if rng.random_range(0..10) == 0 {
            // Numbers as in word problems: small counts, prices, years.
            match rng.random_range(0..3) {
                0 => s.push_str(&rng.random_range(2..100).to_string()),
                1 => s.push_str(&format!(
                    "${}.{:02}",
                    rng.random_range(1..500),
                    rng.random_range(0..100)
                )),
                _ => s.push_str(&rng.random_range(1900..2030).to_string()),
            }
            continue;
        }
        // Squaring a uniform draw favours the front of the list.
        let u: f64 = rng.random();
        let word = WORDS[((u * u) * WORDS.len() as f64) as usize % WORDS.len()];
        if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                s.extend(first.to_uppercase());
                s.push_str(chars.as_str());
            }
        } else {
            s.push_str(word);
        }
    }
    s.push(match rng.random_range(0..10) {
        0 => '?',
        1 => '!',
        _ => '.',
    });
    s
}
