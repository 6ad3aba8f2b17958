//! Writes the small hub fixtures in `fixtures/hub/` from the full datasets.
//!
//! ```text
//! cargo run --example make_fixtures [-- SOURCE_HUB_DIR]
//! ```
//!
//! `SOURCE_HUB_DIR` (default `/work/shared/datasets/hub`, or the env var
//! `BENCH_HUB_SOURCE`) is laid out like the hub:
//! `datasets/<owner>/<name>/<path in repo>`. The rows picked are fixed by
//! index (see `fixtures/README.md` for why each special row is there), the
//! schema (including pyarrow's `huggingface` metadata and `element` list item
//! names) is copied from the source file, and the writer settings are fixed,
//! so running it twice gives byte-identical files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

/// One fixture file: which rows of which source file.
struct Pick {
    /// Path inside the repo, e.g. `main/test-00000-of-00001.parquet`.
    path: String,
    /// Row indices in the source file, in fixture order.
    rows: Vec<u32>,
}

/// The first `n` rows (past the first 4) whose `answer` has a leading zero.
fn leading_zero_rows(src: &Path, n: usize) -> Result<Vec<u32>> {
    let rows = bench::dataset::read_parquet(src)?;
    Ok(rows
        .iter()
        .enumerate()
        .skip(4)
        .filter(|(_, r)| {
            r.get("answer")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.len() > 1 && a.starts_with('0'))
        })
        .map(|(i, _)| i as u32)
        .take(n)
        .collect())
}

fn first(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn main() -> Result<()> {
    let source = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BENCH_HUB_SOURCE").ok())
        .unwrap_or_else(|| "/work/shared/datasets/hub".to_string());
    let source = PathBuf::from(source);
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("hub");

    let gsm8k = [
        Pick {
            // Rows 0-5 as they come; 146 ends in `#### 2,125` (thousands
            // comma); 489 ends in `#### -10` (negative).
            path: "main/test-00000-of-00001.parquet".into(),
            rows: vec![0, 1, 2, 3, 4, 5, 146, 489],
        },
        Pick {
            // Few-shot needs rows 0..3 plus random draws.
            path: "main/train-00000-of-00001.parquet".into(),
            rows: first(12),
        },
    ];
    let arc = [
        Pick {
            // 0-2 ordinary A-D; 14 labels 1-4 (key "2"); 93 three options
            // A-C; 1441 five options with key "E".
            path: "ARC-Easy/test-00000-of-00001.parquet".into(),
            rows: vec![0, 1, 2, 14, 93, 1441],
        },
        Pick {
            // Row 4 has labels 1-4 (key "3").
            path: "ARC-Easy/train-00000-of-00001.parquet".into(),
            rows: first(6),
        },
        Pick {
            path: "ARC-Easy/validation-00000-of-00001.parquet".into(),
            rows: first(6),
        },
        Pick {
            // 0-2 ordinary A-D; 44 labels 1-4 (key "2"); 121 three options
            // A-C; 385 three options labelled 1-3; 836 five options A-E.
            path: "ARC-Challenge/test-00000-of-00001.parquet".into(),
            rows: vec![0, 1, 2, 44, 121, 385, 836],
        },
        Pick {
            path: "ARC-Challenge/train-00000-of-00001.parquet".into(),
            rows: first(6),
        },
        Pick {
            path: "ARC-Challenge/validation-00000-of-00001.parquet".into(),
            rows: first(6),
        },
    ];

    let aime24_train = "data/train-00000-of-00001.parquet";
    let mut aime24_rows = first(4);
    // The first two answers written with leading zeros (`025`), which
    // must match `25`.
    aime24_rows.extend(leading_zero_rows(
        &source
            .join("datasets/HuggingFaceH4/aime_2024")
            .join(aime24_train),
        2,
    )?);
    let aime24 = [Pick {
        path: aime24_train.into(),
        rows: aime24_rows,
    }];
    let aime25 = [Pick {
        // The convert branch (main holds only test.jsonl), as the shared
        // layout keeps it; row 4 ends with the source quirk `$2025$.$`.
        path: "_refs_convert_parquet/default/test/0000.parquet".into(),
        rows: first(6),
    }];

    let math500 = [Pick {
        // The hub's parquet lives only on `refs/convert/parquet`, kept in
        // the `_refs_convert_parquet` folder. Rows 0-2 as they come (a
        // `\left( \right)` pair, `p - q`, `\frac{14}{3}`), then one row per
        // answer form (see fixtures/README.md).
        path: "_refs_convert_parquet/default/test/0000.parquet".into(),
        rows: vec![
            0, 1, 2, 4, 7, 23, 25, 30, 103, 166, 176, 198, 242, 248, 257, 305, 422, 454,
        ],
    }];
    // MMLU: every subject's first three test rows (the e2e tests ask three
    // items per subset) and its whole dev split (the five few-shot rows).
    let mmlu: Vec<Pick> = bench::benchmarks::mmlu::SUBJECTS
        .iter()
        .flat_map(|(subject, _, _)| {
            [
                Pick {
                    path: format!("{subject}/test-00000-of-00001.parquet"),
                    rows: first(3),
                },
                Pick {
                    path: format!("{subject}/dev-00000-of-00001.parquet"),
                    rows: first(5),
                },
            ]
        })
        .collect();
    let mmlu_pro = [Pick {
        // The first row of each of the 14 categories (in file order:
        // business, law, psychology, biology, chemistry, history, other,
        // health, economics, math, physics, computer science, philosophy,
        // engineering); 3859 is question_id 3983, whose `answer` (C)
        // disagrees with its `answer_index` (1); 357 has 4 options, 974 has 3;
        // 2 has answer J.
        path: "data/test-00000-of-00001.parquet".into(),
        rows: vec![
            0, 789, 1890, 2688, 3405, 4537, 4918, 5842, 6660, 7504, 8855, 10154, 10564, 11063,
            3859, 357, 974, 2,
        ],
    }];
    let truthfulqa = [Pick {
        // 0-5 as they come; 13 has 2 MC1 choices; 468 has 13 (the most).
        path: "multiple_choice/validation-00000-of-00001.parquet".into(),
        rows: vec![0, 1, 2, 3, 4, 5, 13, 468],
    }];

    let ifeval = [Pick {
        // The convert branch (main holds only jsonl). Rows 1, 32, 40, 63
        // first: one instruction each that a test response can follow (no
        // comma twice, so the generic `ANSWER: ...` oracle of the
        // end-to-end tests follows the first two; quotation; title), then
        // the first row of each of the 25 instruction kinds (file order),
        // so every kind is loaded.
        path: "_refs_convert_parquet/default/train/0000.parquet".into(),
        rows: vec![
            1, 32, 40, 63, 0, 2, 3, 4, 5, 6, 7, 9, 11, 12, 16, 18, 19, 20, 25, 30, 33, 39, 112, 234,
        ],
    }];

    for (repo, picks) in [
        ("datasets/openai/gsm8k", &gsm8k[..]),
        ("datasets/allenai/ai2_arc", &arc[..]),
        ("datasets/HuggingFaceH4/aime_2024", &aime24[..]),
        ("datasets/math-ai/aime25", &aime25[..]),
        ("datasets/HuggingFaceH4/MATH-500", &math500[..]),
        ("datasets/cais/mmlu", &mmlu[..]),
        ("datasets/TIGER-Lab/MMLU-Pro", &mmlu_pro[..]),
        ("datasets/truthfulqa/truthful_qa", &truthfulqa[..]),
        ("datasets/google/IFEval", &ifeval[..]),
    ] {
        for pick in picks {
            let src = source.join(repo).join(&pick.path);
            let dst = out.join(repo).join(&pick.path);
            let batch = pick_rows(&src, &pick.rows)?;
            write_parquet(&dst, &batch)?;
            report(&dst, &out, batch.num_rows())?;
            if repo.ends_with("ai2_arc") {
                describe_arc(&batch, &pick.rows);
            }
        }
        // The dataset card carries the `configs:` block that maps config
        // names (`main`, `ARC-Easy`) to these paths.
        // The gsm8k and ARC sources are that block and a note; the others
        // also describe the full files (hashes, provenance), so only their
        // YAML front matter is kept.
        let card_src = source.join(repo).join("README.md");
        let card_dst = out.join(repo).join("README.md");
        let card = std::fs::read_to_string(&card_src)
            .with_context(|| format!("reading {}", card_src.display()))?;
        let card = if repo.ends_with("gsm8k") || repo.ends_with("ai2_arc") {
            card
        } else {
            front_matter(&card)
        };
        std::fs::write(&card_dst, card)
            .with_context(|| format!("writing {}", card_dst.display()))?;
        report(&card_dst, &out, 0)?;
    }
    write_sciq(&out)?;
    write_gpqa(&out)?;
    write_hellaswag(&out)?;
    Ok(())
}

/// HellaSwag (`Rowan/hellaswag`): no copy here, so four invented rows in
/// the real columns (`ind`, `activity_label`, `ctx_a`, `ctx_b`, `ctx`,
/// `endings`, `source_id`, `split`, `split_type`, `label` as a string),
/// at the parquet conversion's paths; WikiHow-style `[header]`/`[title]`
/// artifacts and a capitalised `ctx_b` exercise lm-eval's cleanup.
fn write_hellaswag(out: &Path) -> Result<()> {
    use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    type Row = (
        i64,
        &'static str,
        &'static str,
        &'static str,
        [&'static str; 4],
        &'static str,
    );
    let validation: &[Row] = &[
        (
            24,
            "Roof shingle removal",
            "A man is sitting on a roof.",
            "HE starts pulling up roofing on a roof.",
            [
                "is using wrap to wrap a pair of skis.",
                "is ripping level tiles off.",
                "is holding a rubik's cube.",
                "starts pulling up roofing on a roof.",
            ],
            "3",
        ),
        (
            92,
            "Clean and jerk",
            "A lady walks to a barbell. She bends down and grabs the pole.",
            "the lady",
            [
                "swings and lands in her arms.",
                "pulls the barbell forward.",
                "pulls a rope attached to the barbell.",
                "stands and lifts the weight over her head.",
            ],
            "3",
        ),
        (
            106,
            "Home and Garden",
            "[header] How to clean a grill [title] Heat the grill.",
            "",
            [
                "[step] Let it burn for  ten minutes.",
                "Scrub it [substeps] with a brush.",
                "Throw it away.",
                "[title] Paint it blue.",
            ],
            "1",
        ),
        (
            115,
            "Canoeing",
            "Two women in a child are shown in a canoe while a man pulls the canoe while standing in the water, with other individuals visible in the background.",
            "the child and a different man",
            [
                "are then shown paddling down a river in a boat while a woman talks.",
                "are driving the canoe, they go down the river flowing side to side.",
                "sit in a canoe while the man paddles.",
                "walking go down the rapids, while the man in his helicopter almost falls and goes out of canoehood.",
            ],
            "2",
        ),
    ];
    let train: &[Row] = &[
        (
            0,
            "Removing ice from car",
            "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.",
            "then",
            [
                ", the man adds wax to the windshield and cuts it.",
                ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.",
                ", the man puts on a christmas coat, knitted with netting.",
                ", the man continues removing the snow on his car.",
            ],
            "3",
        ),
        (
            1,
            "Baking cookies",
            "A female chef in white uniform shows a stack of baking pans in a large kitchen presenting them.",
            "the pans",
            [
                "contain egg yolks and baking soda.",
                "are then sprinkled with brown sugar.",
                "are placed in a strainer on the counter.",
                "are filled with pastries and loaded into the oven.",
            ],
            "3",
        ),
        (
            2,
            "Personal Care and Style",
            "[header] How to get long nails [title] Soak your nails.",
            "",
            [
                "[step] Use warm water.",
                "Buy a car.",
                "Sing loudly.",
                "Sleep all day.",
            ],
            "0",
        ),
    ];
    let names = [
        "ind",
        "activity_label",
        "ctx_a",
        "ctx_b",
        "ctx",
        "endings",
        "source_id",
        "split",
        "split_type",
        "label",
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new(names[0], DataType::Int64, true),
        Field::new(names[1], DataType::Utf8, true),
        Field::new(names[2], DataType::Utf8, true),
        Field::new(names[3], DataType::Utf8, true),
        Field::new(names[4], DataType::Utf8, true),
        Field::new(
            names[5],
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new(names[6], DataType::Utf8, true),
        Field::new(names[7], DataType::Utf8, true),
        Field::new(names[8], DataType::Utf8, true),
        Field::new(names[9], DataType::Utf8, true),
    ]));
    for (split, rows) in [("validation", validation), ("train", train)] {
        let mut endings = ListBuilder::new(StringBuilder::new());
        for r in rows {
            for e in r.4 {
                endings.values().append_value(e);
            }
            endings.append(true);
        }
        let ctx: Vec<String> = rows
            .iter()
            .map(|r| {
                if r.3.is_empty() {
                    r.2.to_string()
                } else {
                    format!("{} {}", r.2, r.3)
                }
            })
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(ctx)),
            Arc::new(endings.finish()),
            Arc::new(StringArray::from(vec!["fixture"; rows.len()])),
            Arc::new(StringArray::from(vec![split; rows.len()])),
            Arc::new(StringArray::from(vec!["indomain"; rows.len()])),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let dst = out.join(format!(
            "datasets/Rowan/hellaswag/_refs_convert_parquet/default/{split}/0000.parquet"
        ));
        write_parquet(&dst, &batch)?;
        report(&dst, out, batch.num_rows())?;
    }
    Ok(())
}

/// `allenai/sciq` (the non-built-in example of `benchmarks/examples/`): no
/// real copy exists here, so the rows are written by hand in the real
/// layout: `data/<split>-00000-of-00001.parquet` with the string columns
/// `question, distractor3, distractor1, distractor2, correct_answer,
/// support` in that order, and the `huggingface` features metadata.
fn write_sciq(out: &Path) -> Result<()> {
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    const COLUMNS: [&str; 6] = [
        "question",
        "distractor3",
        "distractor1",
        "distractor2",
        "correct_answer",
        "support",
    ];
    // (question, distractor3, distractor1, distractor2, correct_answer, support)
    type Row = [&'static str; 6];
    let test: &[Row] = &[
        [
            "What gas do plants take in from the air to make sugar during photosynthesis?",
            "nitrogen",
            "oxygen",
            "helium",
            "carbon dioxide",
            "Plants take in carbon dioxide and water and, using light energy, make glucose and release oxygen.",
        ],
        [
            "Which organelle is known as the powerhouse of the cell?",
            "ribosome",
            "nucleus",
            "vacuole",
            "mitochondrion",
            "",
        ],
        [
            "What is the SI unit of electric charge?",
            "volt",
            "ampere",
            "ohm",
            "coulomb",
            "Charge is measured in coulombs; current, the flow of charge, in amperes.",
        ],
        [
            "Water boils at what temperature, in degrees Celsius, at sea level?",
            "50",
            "90",
            "212",
            "100",
            "At standard atmospheric pressure pure water boils at 100 degrees Celsius (212 degrees Fahrenheit).",
        ],
    ];
    let train: &[Row] = &[
        [
            "What kind of rock forms when lava cools?",
            "sedimentary",
            "metamorphic",
            "limestone",
            "igneous",
            "Igneous rock forms when magma or lava cools and hardens.",
        ],
        [
            "What is the closest star to Earth?",
            "Sirius",
            "Polaris",
            "Betelgeuse",
            "the sun",
            "",
        ],
    ];
    let features: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("\"{c}\": {{\"dtype\": \"string\", \"_type\": \"Value\"}}"))
        .collect();
    let meta = format!(
        "{{\"info\": {{\"features\": {{{}}}}}}}",
        features.join(", ")
    );
    let schema = Arc::new(
        Schema::new(
            COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        )
        .with_metadata([("huggingface".to_string(), meta)]),
    );
    let repo = out.join("datasets/allenai/sciq");
    for (split, rows) in [("test", test), ("train", train)] {
        let cols: Vec<Arc<dyn Array>> = (0..COLUMNS.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i]).collect::<Vec<_>>(),
                )) as Arc<dyn Array>
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
        let dst = repo.join(format!("data/{split}-00000-of-00001.parquet"));
        write_parquet(&dst, &batch)?;
        report(&dst, out, batch.num_rows())?;
    }
    Ok(())
}

/// GPQA has no public copy to pick rows from (the repo is gated and its
/// terms ask that examples not be revealed online), so its fixture is four
/// invented questions in the real column names and types, at the path the
/// hub's parquet conversion serves (`gpqa_diamond/train/0000.parquet` on
/// `refs/convert/parquet`, the fake hub's `_refs_convert_parquet/`). Only
/// the columns bench reads and a few others are written.
fn write_gpqa(out: &Path) -> Result<()> {
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let rows: [[&str; 8]; 4] = [
        [
            "What is the SI unit of force?",
            "newton",
            "joule",
            "watt",
            "pascal",
            "recFIXTURE0001",
            "Physics (general)",
            "Physics",
        ],
        [
            "Which element has atomic number 6?",
            "carbon",
            "nitrogen",
            "oxygen",
            "boron",
            "recFIXTURE0002",
            "Chemistry (general)",
            "Chemistry",
        ],
        [
            "Which organelle makes most of a eukaryotic cell's ATP?",
            "the mitochondrion",
            "the ribosome",
            "the Golgi apparatus",
            "the lysosome",
            "recFIXTURE0003",
            "Molecular Biology",
            "Biology",
        ],
        [
            "  What is the charge of an electron, in units of e?  ",
            "-1",
            "+1",
            "0",
            "-1/3",
            "recFIXTURE0004",
            "Quantum Mechanics",
            "Physics",
        ],
    ];
    let names = [
        "Question",
        "Correct Answer",
        "Incorrect Answer 1",
        "Incorrect Answer 2",
        "Incorrect Answer 3",
        "Record ID",
        "Subdomain",
        "High-level domain",
    ];
    let mut fields: Vec<Field> = names
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, true))
        .collect();
    let mut columns: Vec<ArrayRef> = (0..names.len())
        .map(|c| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[c]).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    fields.push(Field::new("Explanation", DataType::Utf8, true));
    columns.push(Arc::new(StringArray::from(vec!["(fixture)"; 4])));
    fields.push(Field::new(
        "Expert Validator Accuracy",
        DataType::Float64,
        true,
    ));
    columns.push(Arc::new(Float64Array::from(vec![1.0; 4])));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let repo = "datasets/Idavidrein/gpqa";
    let dst = out
        .join(repo)
        .join("_refs_convert_parquet/gpqa_diamond/train/0000.parquet");
    write_parquet(&dst, &batch)?;
    report(&dst, out, batch.num_rows())?;
    Ok(())
}

/// The `---` YAML block a dataset card opens with (the whole card if it
/// has none).
fn front_matter(card: &str) -> String {
    let Some(rest) = card.strip_prefix("---\n") else {
        return card.to_string();
    };
    match rest.find("\n---\n") {
        Some(end) => format!("---\n{}\n---\n", &rest[..end]),
        None => card.to_string(),
    }
}

/// Reads `src` whole and returns the rows at `rows`, keeping the schema
/// (with its metadata) exactly.
fn pick_rows(src: &Path, rows: &[u32]) -> Result<RecordBatch> {
    let file = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("reading parquet {}", src.display()))?;
    // The builder's schema carries the file's metadata (pyarrow's
    // `huggingface` features entry); the reader's own schema drops it.
    let schema = Arc::clone(builder.schema());
    let reader = builder.build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let all = concat_batches(&schema, &batches)?;
    if let Some(&max) = rows.iter().max()
        && max as usize >= all.num_rows()
    {
        bail!(
            "{} has {} rows, row {max} asked for",
            src.display(),
            all.num_rows()
        );
    }
    Ok(take_record_batch(&all, &UInt32Array::from(rows.to_vec()))?)
}

/// One row group, snappy (as pyarrow writes the hub's files), no timestamps
/// or other varying fields, so the bytes depend only on the rows.
fn write_parquet(dst: &Path, batch: &RecordBatch) -> Result<()> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // pyarrow also writes each schema metadata entry (`huggingface`) as a
    // plain parquet key/value, which is where non-arrow readers look.
    let mut kv: Vec<KeyValue> = batch
        .schema()
        .metadata()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    kv.sort_by(|a, b| a.key.cmp(&b.key));
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(batch.num_rows().max(1)))
        .build();
    let file = std::fs::File::create(dst).with_context(|| format!("creating {}", dst.display()))?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&batch.schema()), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(())
}

fn report(path: &Path, root: &Path, rows: usize) -> Result<()> {
    let data = std::fs::read(path)?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let sha = hex::encode(Sha256::digest(&data));
    if rows > 0 {
        println!(
            "{:>6} B  {rows:>2} rows  {}  {}",
            data.len(),
            &sha[..12],
            rel.display()
        );
    } else {
        println!(
            "{:>6} B           {}  {}",
            data.len(),
            &sha[..12],
            rel.display()
        );
    }
    Ok(())
}

/// Prints each ARC row's id, labels and key, to check the special rows.
fn describe_arc(batch: &RecordBatch, rows: &[u32]) {
    let (Some(ids), Some(choices), Some(keys)) = (
        batch.column_by_name("id"),
        batch.column_by_name("choices"),
        batch.column_by_name("answerKey"),
    ) else {
        return;
    };
    let (ids, keys) = (ids.as_string::<i32>(), keys.as_string::<i32>());
    let Some(labels) = choices.as_struct().column_by_name("label") else {
        return;
    };
    let labels = labels.as_list::<i32>();
    for (i, src_row) in rows.iter().enumerate() {
        let l = labels.value(i);
        let l = l.as_string::<i32>();
        let l: Vec<&str> = (0..l.len()).map(|j| l.value(j)).collect();
        println!(
            "            row {i} (source {src_row}): {} labels {} key {}",
            ids.value(i),
            l.join(","),
            keys.value(i)
        );
    }
}
