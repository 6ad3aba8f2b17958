//! Benchmarks defined in a TOML file (`bench eval --benchmark-file F`): a
//! hub parquet dataset, a column mapping and one of the shared recipes, no
//! Rust.
//!
//! Owns the file format ([`FileSpec`] and its parts, every table
//! `deny_unknown_fields`), its checks (each error one line naming the file,
//! the key and its line) and turning a file into a [`Benchmark`] whose row
//! parser maps columns to [`SampleFields`]. A column name can only be
//! checked against the data, so the row parser's error for a missing column
//! names the file, the key, its line and the real columns.
//!
//! It does not own the recipes (the shared constructors in [`super::mcq`]
//! and [`super::math`], plus two small generic ones here, and the recipe
//! sets of built-in benchmarks a file can name, [`BUILTIN_RECIPES`]) nor
//! the record
//! (the file's text and sha256 go to `run.json` as a
//! [`BenchmarkFileRecord`], from which [`from_record`] rebuilds the
//! benchmark without the file).
//!
//! Built-in benchmarks whose data the format can express are defined this
//! way too ([`BUILTIN_FILES`], embedded with `include_str!` from
//! `benchmarks/builtin/` and read by [`builtin`]): the same parser, no file
//! record (their definition is bench's own, like the Rust ones), and their
//! recipes from the named built-in set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use sha2::Digest;
use toml::Spanned;

use super::recipe::{Extractor, Recipe, Scorer};
use super::{Benchmark, Dataset, Registry, SampleFields, SubsetSource, math, mcq};
use crate::dataset::Row;
use crate::extract;
use crate::record::{BenchmarkFileRecord, TemplateFileRecord};

/// A bad benchmark file: one line naming the file, the line and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct FileError {
    /// The file as given.
    pub file: String,
    /// 1-based line of the key at fault, when known.
    pub line: Option<usize>,
    /// Dotted key (`columns.answer`), empty for the file as a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A benchmark file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Registry name (`--datasets NAME`).
    pub name: Spanned<String>,
    /// One line for `bench list`.
    #[serde(default)]
    pub summary: Option<String>,
    /// Hub dataset `owner/name`.
    pub repo: String,
    /// Commit sha (or a branch, resolved at each run).
    pub revision: String,
    /// Subsets (hub configs); one `default` subset on `data/` when absent.
    #[serde(default)]
    pub subsets: Vec<SubsetSpec>,
    /// Column mapping.
    pub columns: ColumnsSpec,
    /// Regex replacements applied to fields, in order.
    #[serde(default)]
    pub preprocess: Vec<PreprocessSpec>,
    /// How items are asked and graded.
    pub recipe: RecipeSpec,
}

/// One subset: a hub config and its eval and few-shot files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetSpec {
    /// Config name (`default` when the dataset has one config).
    #[serde(default)]
    pub name: Option<String>,
    /// Split evaluated (default `test`).
    #[serde(default)]
    pub eval_split: Option<String>,
    /// Its parquet path (default `<name or data>/<split>-00000-of-00001.parquet`).
    #[serde(default)]
    pub eval_path: Option<String>,
    /// Split few-shot examples come from (default `train`).
    #[serde(default)]
    pub fewshot_split: Option<String>,
    /// Its parquet path (same default rule).
    #[serde(default)]
    pub fewshot_path: Option<String>,
}

/// What the answer column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// A position in the options (`index_base` 0 or 1).
    Index,
    /// A letter `A`.. .
    Letter,
    /// One of the labels in the `labels` list column (ARC's `answerKey`).
    Label,
    /// The text of one of the options.
    Text,
    /// The answer itself (numeric, exact match, regex recipes).
    Value,
}

/// The column mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsSpec {
    /// The question column.
    pub question: Spanned<String>,
    /// The options (multiple choice): one list column (`choices.text`
    /// reaches into a struct column) or a list of columns, in order.
    #[serde(default)]
    pub choices: Option<Spanned<toml::Value>>,
    /// The answer column.
    pub answer: Spanned<String>,
    /// What the answer column holds (default `value`; multiple choice must say).
    #[serde(default)]
    pub answer_format: Option<Spanned<AnswerFormat>>,
    /// With `answer_format = "label"`: the list column of labels.
    #[serde(default)]
    pub labels: Option<Spanned<String>>,
    /// With `answer_format = "index"`: the first option's index (0 or 1).
    #[serde(default)]
    pub index_base: Option<Spanned<i64>>,
    /// Shuffle the options of every item with this seed (datasets whose
    /// right answer is always in the same column).
    #[serde(default)]
    pub shuffle_seed: Option<u64>,
    /// An id column.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// Worked reasoning, shown in few-shot examples.
    #[serde(default)]
    pub reasoning: Option<Spanned<String>>,
    /// Columns kept as item metadata (templates see them).
    #[serde(default)]
    pub metadata: Vec<Spanned<String>>,
    /// Metadata columns the reports group items by.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
}

/// Which sample field a preprocessing step rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The question.
    Question,
    /// Every option.
    Choices,
    /// The answer, before it is matched to an option.
    Answer,
    /// The reasoning.
    Reasoning,
}

/// One regex replacement (lm-eval's `preprocess`: `re.sub(pattern, replace, text)`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// Field rewritten.
    pub field: Field,
    /// Regular expression (Rust `regex` syntax).
    pub pattern: Spanned<String>,
    /// Replacement (`$1` names a group).
    #[serde(default)]
    pub replace: String,
}

/// The recipe kinds a file can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipeKind {
    /// Lettered options, `ANSWER: X` (modes `native`, `evalscope`).
    MultipleChoice,
    /// A number (modes `native`, `evalscope`, `evalscope-1.12`).
    Numeric,
    /// The text after the last `ANSWER:` equals the answer (mode `native`).
    ExactMatch,
    /// A regex group equals the answer (mode `native`).
    Regex,
}

/// How items are asked and graded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    /// Recipe kind.
    #[serde(rename = "type")]
    pub kind: RecipeKind,
    /// A jinja template file, relative to the TOML file, for the default mode.
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    /// The modes of a built-in benchmark, built in Rust, instead of the
    /// generic modes of `type` (`"arc"`; see [`BUILTIN_RECIPES`]).
    #[serde(default)]
    pub recipes: Option<Spanned<String>>,
    /// Few-shot examples by default.
    #[serde(default)]
    pub few_shot: Option<usize>,
    /// `regex`: the pattern.
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
    /// `regex`: the capture group holding the answer (default 1, or 0 without groups).
    #[serde(default)]
    pub group: Option<Spanned<usize>>,
    /// `regex`: which match counts, `first` (lm-eval's default) or `last`.
    #[serde(default)]
    pub select: Option<Spanned<String>>,
    /// `exact_match` and `regex`: compare ignoring case.
    #[serde(default)]
    pub ignore_case: bool,
    /// `regex`: how a right answer looks (`{answer}` is replaced), for
    /// oracle tests; default `ANSWER: {answer}`.
    #[serde(default)]
    pub answer_example: Option<String>,
    /// Generation parameters merged over the mode's defaults.
    #[serde(default)]
    pub generation: Option<toml::Table>,
}

/// Builds a built-in benchmark's recipes, the default mode first.
pub type RecipeSet = fn() -> Vec<Recipe>;

/// Recipe sets a file can name with `recipe.recipes`: name, the recipe
/// kind they grade (`type` must say it), constructor.
pub const BUILTIN_RECIPES: &[(&str, RecipeKind, RecipeSet)] =
    &[("arc", RecipeKind::MultipleChoice, super::arc::recipes)];

/// The built-in benchmarks defined as benchmark files: path in the
/// repository (as errors name it), text.
pub const BUILTIN_FILES: &[(&str, &str)] = &[(super::arc::FILE_PATH, super::arc::FILE)];

/// A built-in benchmark from its embedded file (`file` names it in
/// errors): no template file, no file record in runs, provenance as the
/// recipes give it.
pub fn builtin(file: &str, text: &str) -> Result<Benchmark, FileError> {
    let no_template =
        |_: &str| -> Result<String, String> { Err("a built-in file takes no template".into()) };
    parse_text(file, text, &no_template, true)
}

/// A recipe kind as the file writes it.
fn kind_name(kind: RecipeKind) -> &'static str {
    match kind {
        RecipeKind::MultipleChoice => "multiple_choice",
        RecipeKind::Numeric => "numeric",
        RecipeKind::ExactMatch => "exact_match",
        RecipeKind::Regex => "regex",
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The dotted key whose key or value span holds `offset`, innermost.
fn key_at(table: &toml::de::DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (k, v) in table.iter() {
        let name = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if k.span().contains(&offset) {
            return Some(name);
        }
        // A `[table]`'s span is its header, not its body: look inside
        // tables and arrays whatever their span says.
        if let Some(inner) = value_key(v.get_ref(), offset, &name) {
            return Some(inner);
        }
        if v.span().contains(&offset) || v.span().start == offset {
            return Some(name);
        }
    }
    None
}

fn value_key(v: &toml::de::DeValue<'_>, offset: usize, name: &str) -> Option<String> {
    match v {
        toml::de::DeValue::Table(t) => key_at(t, offset, name),
        toml::de::DeValue::Array(a) => a.iter().enumerate().find_map(|(i, item)| {
            let here = format!("{name}[{i}]");
            value_key(item.get_ref(), offset, &here).or_else(|| {
                (item.span().contains(&offset) || item.span().start == offset).then_some(here)
            })
        }),
        _ => None,
    }
}

/// Where a template file comes from: the disk next to the TOML file, or the
/// run record.
pub type TemplateSource<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parse a benchmark file's text (`file` names it in errors) into a
/// benchmark; `template` reads a template path given in the file.
pub fn from_text(
    file: &str,
    text: &str,
    template: TemplateSource<'_>,
) -> Result<Benchmark, FileError> {
    parse_text(file, text, template, false)
}

fn parse_text(
    file: &str,
    text: &str,
    template: TemplateSource<'_>,
    builtin: bool,
) -> Result<Benchmark, FileError> {
    let err = |span: Option<std::ops::Range<usize>>, key: &str, message: String| FileError {
        file: file.to_string(),
        line: span.map(|s| line_of(text, s.start)),
        key: key.to_string(),
        message,
    };
    let spec: FileSpec = toml::from_str(text).map_err(|e| {
        let key = e
            .span()
            .and_then(|s| {
                let doc = toml::de::DeTable::parse(text).ok()?;
                key_at(doc.get_ref(), s.start, "")
            })
            .unwrap_or_default();
        err(e.span(), &key, e.message().trim().replace('\n', " "))
    })?;
    build(file, text, spec, template, builtin, &err)
}

type ErrFn<'a> = dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> FileError + 'a;

fn build(
    file: &str,
    text: &str,
    spec: FileSpec,
    template: TemplateSource<'_>,
    builtin: bool,
    err: &ErrFn<'_>,
) -> Result<Benchmark, FileError> {
    let name = spec.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(err(
            Some(spec.name.span()),
            "name",
            format!("`{name}` is not a benchmark name (letters, digits, `_`, `-`, `.`)"),
        ));
    }
    // Subsets.
    let subsets = if spec.subsets.is_empty() {
        vec![subset(SubsetSpec {
            name: None,
            eval_split: None,
            eval_path: None,
            fewshot_split: None,
            fewshot_path: None,
        })]
    } else {
        let n = spec.subsets.len();
        let mut out: Vec<SubsetSource> = Vec::new();
        for (i, s) in spec.subsets.into_iter().enumerate() {
            if n > 1 && s.name.is_none() {
                return Err(err(
                    None,
                    &format!("subsets[{i}].name"),
                    "missing: name every subset when there are several".into(),
                ));
            }
            let s = subset(s);
            if out.iter().any(|o| o.name == s.name) {
                return Err(err(
                    None,
                    &format!("subsets[{i}].name"),
                    format!("subset `{}` twice", s.name),
                ));
            }
            out.push(s);
        }
        out
    };

    // Columns.
    let c = &spec.columns;
    let kind = spec.recipe.kind;
    let format = c.answer_format.as_ref().map(|f| *f.get_ref());
    let mcq = kind == RecipeKind::MultipleChoice;
    let format = match (mcq, format) {
        (true, None) => {
            return Err(err(
                Some(c.answer.span()),
                "columns.answer_format",
                "missing: a multiple_choice recipe needs index, letter, label or text".into(),
            ));
        }
        (true, Some(AnswerFormat::Value)) => {
            return Err(err(
                c.answer_format.as_ref().map(Spanned::span),
                "columns.answer_format",
                "`value` is not a multiple-choice answer: use index, letter, label or text".into(),
            ));
        }
        (false, Some(f)) if f != AnswerFormat::Value => {
            return Err(err(
                c.answer_format.as_ref().map(Spanned::span),
                "columns.answer_format",
                "only multiple_choice recipes map answers to options; use `value`".into(),
            ));
        }
        (_, f) => f.unwrap_or(AnswerFormat::Value),
    };
    if mcq && c.choices.is_none() {
        return Err(err(
            None,
            "columns.choices",
            "missing: a multiple_choice recipe needs the options".into(),
        ));
    }
    if format == AnswerFormat::Label && c.labels.is_none() {
        return Err(err(
            c.answer_format.as_ref().map(Spanned::span),
            "columns.labels",
            "missing: answer_format = \"label\" needs the list column of labels".into(),
        ));
    }
    let index_base = c.index_base.as_ref().map_or(0, |b| *b.get_ref());
    if !(0..=1).contains(&index_base) {
        return Err(err(
            c.index_base.as_ref().map(Spanned::span),
            "columns.index_base",
            format!("{index_base}: must be 0 or 1"),
        ));
    }
    for (i, g) in c.groups.iter().enumerate() {
        if !c.metadata.iter().any(|m| m.get_ref() == g.get_ref()) {
            return Err(err(
                Some(g.span()),
                &format!("columns.groups[{i}]"),
                format!("`{}` is not one of columns.metadata", g.get_ref()),
            ));
        }
    }
    let col = |key: &str, s: &Spanned<String>| Column {
        key: key.to_string(),
        name: s.get_ref().clone(),
        line: line_of(text, s.span().start),
    };
    let choices = match &c.choices {
        None => Choices::None,
        Some(v) => {
            let at = |key: &str, name: &str| Column {
                key: key.to_string(),
                name: name.to_string(),
                line: line_of(text, v.span().start),
            };
            match v.get_ref() {
                toml::Value::String(name) => Choices::List(at("columns.choices", name)),
                toml::Value::Array(items) if items.len() >= 2 => Choices::Columns(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| match x {
                            toml::Value::String(name) => {
                                Ok(at(&format!("columns.choices[{i}]"), name))
                            }
                            other => Err(err(
                                Some(v.span()),
                                &format!("columns.choices[{i}]"),
                                format!("expected a column name, found {}", other.type_str()),
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(err(
                        Some(v.span()),
                        "columns.choices",
                        "expected one list column (\"choices.text\") or at least two columns ([\"a\", \"b\"])".into(),
                    ));
                }
            }
        }
    };
    let mut steps = Vec::new();
    for (i, p) in spec.preprocess.iter().enumerate() {
        let re = regex::Regex::new(p.pattern.get_ref()).map_err(|e| {
            err(
                Some(p.pattern.span()),
                &format!("preprocess[{i}].pattern"),
                format!("bad regex: {}", one_line(&e.to_string())),
            )
        })?;
        steps.push((p.field, re, p.replace.clone()));
    }
    let mapping = Arc::new(Mapping {
        file: file.to_string(),
        question: col("columns.question", &c.question),
        choices,
        answer: col("columns.answer", &c.answer),
        format,
        labels: c.labels.as_ref().map(|s| col("columns.labels", s)),
        index_base: index_base as usize,
        shuffle_seed: c.shuffle_seed,
        id: c.id.as_ref().map(|s| col("columns.id", s)),
        reasoning: c.reasoning.as_ref().map(|s| col("columns.reasoning", s)),
        metadata: c
            .metadata
            .iter()
            .enumerate()
            .map(|(i, s)| col(&format!("columns.metadata[{i}]"), s))
            .collect(),
        steps,
    });

    // Recipe.
    let r = &spec.recipe;
    let only = |set: bool, key: &str, span: Option<std::ops::Range<usize>>| {
        if set && kind != RecipeKind::Regex {
            Err(err(
                span,
                &format!("recipe.{key}"),
                "only a `regex` recipe takes it".into(),
            ))
        } else {
            Ok(())
        }
    };
    only(
        r.pattern.is_some(),
        "pattern",
        r.pattern.as_ref().map(Spanned::span),
    )?;
    only(
        r.group.is_some(),
        "group",
        r.group.as_ref().map(Spanned::span),
    )?;
    only(
        r.select.is_some(),
        "select",
        r.select.as_ref().map(Spanned::span),
    )?;
    let named = match &r.recipes {
        None => None,
        Some(n) => {
            let (_, want, make) = BUILTIN_RECIPES
                .iter()
                .find(|(id, _, _)| id == n.get_ref())
                .ok_or_else(|| {
                    let known: Vec<&str> = BUILTIN_RECIPES.iter().map(|(id, _, _)| *id).collect();
                    err(
                        Some(n.span()),
                        "recipe.recipes",
                        format!(
                            "`{}`: no such recipe set (known: {})",
                            n.get_ref(),
                            known.join(", ")
                        ),
                    )
                })?;
            if *want != kind {
                return Err(err(
                    Some(n.span()),
                    "recipe.recipes",
                    format!(
                        "`{}` is a set of {} recipes, not {}",
                        n.get_ref(),
                        kind_name(*want),
                        kind_name(kind)
                    ),
                ));
            }
            Some(make())
        }
    };
    let mut recipes = match (named, kind) {
        (Some(set), _) => set,
        (None, RecipeKind::MultipleChoice) => vec![
            mcq::native().with_summary("0-shot chat, positional letters, last valid 'ANSWER: X'"),
            mcq::evalscope(),
        ],
        (None, RecipeKind::Numeric) => {
            let t = "gsm8k_boxed.jinja";
            vec![
                math::native(t).with_summary("\\boxed{} answer, compared as a number"),
                math::evalscope(t)
                    .with_summary("EvalScope 1.14.1: Math-Verify extraction and comparison"),
                math::evalscope_1_12(t)
                    .with_summary("EvalScope 1.0-1.12: Qwen-Math extraction, math_equal"),
            ]
        }
        (None, RecipeKind::ExactMatch) => vec![exact_match(r.ignore_case)],
        (None, RecipeKind::Regex) => {
            let pattern = r.pattern.as_ref().ok_or_else(|| {
                err(
                    None,
                    "recipe.pattern",
                    "missing: a `regex` recipe needs a pattern".into(),
                )
            })?;
            let re = regex::Regex::new(pattern.get_ref()).map_err(|e| {
                err(
                    Some(pattern.span()),
                    "recipe.pattern",
                    format!("bad regex: {}", one_line(&e.to_string())),
                )
            })?;
            let groups = re.captures_len() - 1;
            let group = match &r.group {
                Some(g) if *g.get_ref() > groups => {
                    return Err(err(
                        Some(g.span()),
                        "recipe.group",
                        format!("{}: the pattern has {groups} group(s)", g.get_ref()),
                    ));
                }
                Some(g) => *g.get_ref(),
                None => usize::from(groups > 0),
            };
            let last = match r.select.as_ref().map(|s| s.get_ref().as_str()) {
                None | Some("first") => false,
                Some("last") => true,
                Some(other) => {
                    return Err(err(
                        r.select.as_ref().map(Spanned::span),
                        "recipe.select",
                        format!("`{other}`: expected `first` or `last`"),
                    ));
                }
            };
            let example = r
                .answer_example
                .clone()
                .unwrap_or_else(|| "ANSWER: {answer}".into());
            vec![regex_recipe(re, group, last, r.ignore_case, example)]
        }
    };
    let mut template_record = None;
    if let Some(t) = &r.template {
        let rel = t.get_ref();
        let content = template(rel).map_err(|e| {
            err(
                Some(t.span()),
                "recipe.template",
                format!("{rel}: {}", one_line(&e)),
            )
        })?;
        // Checked now, so a broken template fails before any request.
        let mut env = minijinja::Environment::new();
        env.add_template("t", &content).map_err(|e| {
            err(
                Some(t.span()),
                "recipe.template",
                format!("{rel}: {}", one_line(&format!("{e:#}"))),
            )
        })?;
        let registered = format!("{name}/{rel}");
        recipes[0] = recipes[0].clone().with_template(registered.clone());
        template_record = Some(TemplateFileRecord {
            path: rel.clone(),
            name: registered,
            sha256: sha256(&content),
            content,
        });
    }
    if let Some(n) = r.few_shot {
        if n > crate::range::limits::FEW_SHOT.max as usize {
            return Err(err(
                None,
                "recipe.few_shot",
                format!("{n}: at most {}", crate::range::limits::FEW_SHOT.max),
            ));
        }
        recipes = recipes
            .into_iter()
            .map(|x| x.with_default_few_shot(n))
            .collect();
    }
    if let Some(g) = &r.generation {
        let json = serde_json::to_value(g)
            .map_err(|e| err(None, "recipe.generation", one_line(&e.to_string())))?;
        if let Value::Object(m) = json {
            for k in m.keys() {
                if ["model", "messages", "prompt"].contains(&k.as_str()) {
                    return Err(err(
                        None,
                        &format!("recipe.generation.{k}"),
                        "set by bench, not by the benchmark".into(),
                    ));
                }
            }
            for x in recipes.iter_mut() {
                x.generation.extend(m.clone());
            }
        }
    }
    if !builtin {
        for x in recipes.iter_mut() {
            x.provenance = format!("{} (benchmark file {file})", x.provenance);
        }
    }

    let groups: Vec<&str> = c.groups.iter().map(|g| g.get_ref().as_str()).collect();
    let m = mapping.clone();
    let dataset = Dataset::new(&spec.repo, &spec.revision, subsets, move |row: &Row| {
        m.fields(row)
    })
    .with_groups(&groups);
    let summary = spec
        .summary
        .clone()
        .unwrap_or_else(|| format!("{} (from {file})", spec.repo));
    let mut b = Benchmark::new(&name, &summary, dataset, recipes);
    if builtin {
        return Ok(b);
    }
    b.file = Some(Arc::new(BenchmarkFileRecord {
        benchmark: name,
        path: file.to_string(),
        sha256: sha256(text),
        content: text.to_string(),
        template: template_record,
    }));
    Ok(b)
}

fn subset(s: SubsetSpec) -> SubsetSource {
    let name = s.name.unwrap_or_else(|| "default".into());
    let dir = if name == "default" {
        "data".to_string()
    } else {
        name.clone()
    };
    let eval_split = s.eval_split.unwrap_or_else(|| "test".into());
    let fewshot_split = s.fewshot_split.unwrap_or_else(|| "train".into());
    let path = |split: &str| format!("{dir}/{split}-00000-of-00001.parquet");
    SubsetSource {
        eval_path: s.eval_path.unwrap_or_else(|| path(&eval_split)),
        fewshot_path: s.fewshot_path.unwrap_or_else(|| path(&fewshot_split)),
        name,
        eval_split,
        fewshot_split,
        convert: None,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hex sha256 of a text.
pub fn sha256(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `exact_match`: the text after the last `ANSWER:` (else the whole
/// response), trimmed, equals the answer (whitespace runs collapsed).
fn exact_match(ignore_case: bool) -> Recipe {
    Recipe::generate(
        "native",
        "answer_line.jinja",
        vec![Extractor::new(
            "answer-line",
            |_: &super::Sample, r: &str| {
                extract::last_answer_line(r).or_else(|| {
                    let t = r.trim();
                    (!t.is_empty()).then(|| t.to_string())
                })
            },
        )],
        text_scorer("exact_match", ignore_case),
        |s| format!("Let me work it out.\nANSWER: {}", s.target),
    )
    .with_summary("last 'ANSWER:' line (else the whole response) equals the answer")
}

fn text_scorer(name: &str, ignore_case: bool) -> Scorer {
    Scorer::new(name, move |s: &super::Sample, e: &str| {
        let (a, b) = (one_line(e), one_line(&s.target));
        if ignore_case {
            a.to_lowercase() == b.to_lowercase()
        } else {
            a == b
        }
    })
}

/// `regex`: group `group` of the first (or last) match equals the answer.
fn regex_recipe(
    re: regex::Regex,
    group: usize,
    last: bool,
    ignore_case: bool,
    example: String,
) -> Recipe {
    let summary = format!(
        "group {group} of the {} match of /{}/ equals the answer",
        if last { "last" } else { "first" },
        re.as_str()
    );
    Recipe::generate(
        "native",
        "answer_line.jinja",
        vec![Extractor::new(
            "regex",
            move |_: &super::Sample, r: &str| {
                let mut it = re.captures_iter(r);
                let caps = if last { it.last() } else { it.next() }?;
                caps.get(group).map(|m| m.as_str().trim().to_string())
            },
        )],
        text_scorer("regex", ignore_case),
        move |s| example.replace("{answer}", &s.target),
    )
    .with_summary(summary)
}

/// A column named in the file, with where it was named.
#[derive(Debug, Clone)]
struct Column {
    key: String,
    name: String,
    line: usize,
}

#[derive(Debug)]
enum Choices {
    None,
    List(Column),
    Columns(Vec<Column>),
}

/// A file's column mapping, applied to each row.
#[derive(Debug)]
struct Mapping {
    file: String,
    question: Column,
    choices: Choices,
    answer: Column,
    format: AnswerFormat,
    labels: Option<Column>,
    index_base: usize,
    shuffle_seed: Option<u64>,
    id: Option<Column>,
    reasoning: Option<Column>,
    metadata: Vec<Column>,
    steps: Vec<(Field, regex::Regex, String)>,
}

/// A JSON value as text (strings as they are).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Mapping {
    /// The value of a column (a dotted name reaches into a struct column).
    fn get<'r>(&self, row: &'r Row, c: &Column) -> Result<&'r Value, String> {
        if let Some(v) = row.get(&c.name) {
            return Ok(v);
        }
        let mut parts = c.name.split('.');
        let first = parts.next().unwrap_or_default();
        let mut v = row.get(first);
        for p in parts {
            v = v.and_then(|x| x.get(p));
        }
        v.ok_or_else(|| {
            let mut cols: Vec<String> = Vec::new();
            for (k, v) in row {
                cols.push(k.clone());
                if let Value::Object(m) = v {
                    cols.extend(m.keys().map(|s| format!("{k}.{s}")));
                }
            }
            format!(
                "{}:{}: {}: no column `{}` in the data (columns: {})",
                self.file,
                c.line,
                c.key,
                c.name,
                cols.join(", ")
            )
        })
    }

    fn text(&self, row: &Row, c: &Column) -> Result<String, String> {
        self.get(row, c).map(as_text)
    }

    fn list(&self, row: &Row, c: &Column) -> Result<Vec<String>, String> {
        match self.get(row, c)? {
            Value::Array(a) => Ok(a.iter().map(as_text).collect()),
            other => Err(format!(
                "{}:{}: {}: column `{}` is not a list: {}",
                self.file,
                c.line,
                c.key,
                c.name,
                short(other)
            )),
        }
    }

    fn apply(&self, field: Field, mut s: String) -> String {
        for (f, re, rep) in &self.steps {
            if *f == field {
                s = re.replace_all(&s, rep.as_str()).into_owned();
            }
        }
        s
    }

    fn fields(&self, row: &Row) -> Result<SampleFields, String> {
        let question = self.apply(Field::Question, self.text(row, &self.question)?);
        let mut choices = match &self.choices {
            Choices::None => vec![],
            Choices::List(c) => self.list(row, c)?,
            Choices::Columns(cs) => cs
                .iter()
                .map(|c| self.text(row, c))
                .collect::<Result<_, _>>()?,
        };
        choices = choices
            .into_iter()
            .map(|c| self.apply(Field::Choices, c))
            .collect();
        let answer_value = self.get(row, &self.answer)?;
        let answer = self.apply(Field::Answer, as_text(answer_value));
        let bad = |msg: String| {
            format!(
                "{}:{}: {}: {msg}",
                self.file, self.answer.line, self.answer.key
            )
        };
        let mut target = match self.format {
            AnswerFormat::Value => answer.trim().to_string(),
            _ if !(2..=26).contains(&choices.len()) => {
                return Err(bad(format!(
                    "{} options; multiple choice needs 2 to 26",
                    choices.len()
                )));
            }
            AnswerFormat::Index => {
                let i = answer
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(self.index_base))
                    .filter(|i| *i < choices.len())
                    .ok_or_else(|| {
                        bad(format!(
                            "`{answer}` is not an option index ({} options, first {})",
                            choices.len(),
                            self.index_base
                        ))
                    })?;
                letter(i)
            }
            AnswerFormat::Letter => {
                let a = answer.trim().to_ascii_uppercase();
                let i = extract::letters(choices.len())
                    .iter()
                    .position(|l| a.len() == 1 && a.starts_with(*l))
                    .ok_or_else(|| {
                        bad(format!(
                            "`{answer}` is not one of the letters A-{}",
                            letter(choices.len() - 1)
                        ))
                    })?;
                letter(i)
            }
            AnswerFormat::Label => {
                // Checked at load time: a label answer has a labels column.
                let c = self.labels.as_ref().ok_or("no labels column")?;
                let labels = self.list(row, c)?;
                if labels.len() != choices.len() {
                    return Err(format!(
                        "{}:{}: {}: {} labels but {} options",
                        self.file,
                        c.line,
                        c.key,
                        labels.len(),
                        choices.len()
                    ));
                }
                let i = labels
                    .iter()
                    .position(|l| *l == answer.trim())
                    .ok_or_else(|| {
                        bad(format!("`{answer}` is not one of the labels {labels:?}"))
                    })?;
                letter(i)
            }
            AnswerFormat::Text => {
                let i = choices
                    .iter()
                    .position(|c| *c == answer)
                    .or_else(|| choices.iter().position(|c| c.trim() == answer.trim()))
                    .ok_or_else(|| bad(format!("`{answer}` is not one of the options")))?;
                letter(i)
            }
        };
        let id = self.id.as_ref().map(|c| self.text(row, c)).transpose()?;
        // Only a multiple-choice answer (a gold letter) moves with its option.
        if let (Some(seed), false) = (self.shuffle_seed, self.format == AnswerFormat::Value) {
            // The order depends on the seed and the item (its id, else its
            // question), never on the row's position, so a subset or a
            // reordered file gives the same options.
            let key = id.clone().unwrap_or_else(|| question.clone());
            let gold = target
                .bytes()
                .next()
                .map_or(0, |b| usize::from(b.saturating_sub(b'A')));
            let order = shuffle(choices.len(), seed, &key);
            choices = order.iter().map(|&i| choices[i].clone()).collect();
            target = letter(order.iter().position(|&i| i == gold).unwrap_or(0));
        }
        let reasoning = self
            .reasoning
            .as_ref()
            .map(|c| self.text(row, c).map(|t| self.apply(Field::Reasoning, t)))
            .transpose()?;
        let mut metadata = BTreeMap::new();
        for c in &self.metadata {
            metadata.insert(c.name.clone(), self.get(row, c)?.clone());
        }
        Ok(SampleFields {
            id,
            question,
            choices,
            target,
            reference: None,
            reasoning,
            metadata,
        })
    }
}

fn letter(i: usize) -> String {
    extract::letters(26)
        .get(i)
        .map_or_else(String::new, char::to_string)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// A permutation of `0..n` from the seed and the item key: Fisher-Yates
/// driven by splitmix64 over an FNV-1a hash, written out so the order never
/// changes with a dependency's version.
fn shuffle(n: usize, seed: u64, key: &str) -> Vec<usize> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = seed ^ h;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Read one benchmark file from disk (templates next to it).
pub fn load_file(path: &Path) -> Result<Benchmark, FileError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        file: label.clone(),
        line: None,
        key: String::new(),
        message: e.to_string(),
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let read = move |rel: &str| -> Result<String, String> {
        std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string())
    };
    from_text(&label, &text, &read)
}

/// The benchmark files a `--benchmark-file` names: the file, or every
/// `*.toml` in a folder (sorted by name).
pub fn files_in(path: &Path) -> Result<Vec<PathBuf>, FileError> {
    let label = path.display().to_string();
    let io = |e: std::io::Error| FileError {
        file: label.clone(),
        line: None,
        key: String::new(),
        message: e.to_string(),
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(io)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(FileError {
            file: label,
            line: None,
            key: String::new(),
            message: "no *.toml file in this folder".into(),
        });
    }
    Ok(out)
}

/// Add a file's benchmark to `registry`, refusing a name already taken
/// (a built-in or another file's).
pub fn add_to(registry: &mut Registry, b: Benchmark) -> Result<(), FileError> {
    let Some(file) = b.file.clone() else {
        return registry.add(b).map_err(|message| FileError {
            file: String::new(),
            line: None,
            key: String::new(),
            message,
        });
    };
    let name_line = || {
        file.content
            .lines()
            .position(|l| l.trim_start().starts_with("name"))
            .map(|i| i + 1)
    };
    if let Some(other) = registry.get(&b.name) {
        let what = match &other.file {
            Some(f) => format!("also defined in {}", f.path),
            None => "a built-in benchmark has this name; choose another".into(),
        };
        return Err(FileError {
            file: file.path.clone(),
            line: name_line(),
            key: "name".into(),
            message: format!("`{}`: {what}", b.name),
        });
    }
    registry.add(b).map_err(|message| FileError {
        file: file.path.clone(),
        line: None,
        key: String::new(),
        message,
    })
}

/// The built-in registry plus the benchmarks of `paths` (files or folders).
pub fn registry_with(paths: &[PathBuf]) -> Result<Registry, FileError> {
    let mut r = Registry::builtin();
    for p in paths {
        for f in files_in(p)? {
            add_to(&mut r, load_file(&f)?)?;
        }
    }
    Ok(r)
}

/// A benchmark rebuilt from its run record (the file itself may be gone).
pub fn from_record(rec: &BenchmarkFileRecord) -> Result<Benchmark, FileError> {
    let tpl = rec.template.clone();
    let read = move |rel: &str| -> Result<String, String> {
        match &tpl {
            Some(t) if t.path == rel => Ok(t.content.clone()),
            _ => Err("not in the run record".into()),
        }
    };
    from_text(&rec.path, &rec.content, &read)
}

/// The built-in registry plus the benchmarks a run record keeps.
pub fn registry_from_records(records: &[BenchmarkFileRecord]) -> Result<Registry, FileError> {
    let mut r = Registry::builtin();
    for rec in records {
        add_to(&mut r, from_record(rec)?)?;
    }
    Ok(r)
}

/// The template sources of file benchmarks: (registered name, text).
pub fn templates(b: &Benchmark) -> Option<(String, String)> {
    let t = b.file.as_ref()?.template.as_ref()?;
    Some((t.name.clone(), t.content.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Benchmark, FileError> {
        from_text("t.toml", text, &|_| Err("no templates here".into()))
    }

    const OK: &str = r#"
name = "t"
repo = "o/n"
revision = "main"
[columns]
question = "q"
choices = ["a", "b", "c"]
answer = "b"
answer_format = "text"
[recipe]
type = "multiple_choice"
"#;

    /// Every embedded built-in file parses (an error there is a bug) into
    /// a registered benchmark with no file record.
    #[test]
    fn builtin_files_parse() {
        assert!(!BUILTIN_FILES.is_empty());
        for (path, text) in BUILTIN_FILES {
            let b = builtin(path, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(b.file.is_none(), "{path}");
            let registered = crate::benchmarks::get(&b.name).unwrap();
            assert_eq!(registered.recipe_ids(), b.recipe_ids(), "{path}");
            assert_eq!(registered.summary, b.summary, "{path}");
        }
    }

    /// `recipe.recipes` names a built-in recipe set of the file's type.
    #[test]
    fn recipe_sets_are_named_and_typed() {
        let set = |name: &str| {
            OK.replace(
                "type = \"multiple_choice\"",
                &format!("type = \"multiple_choice\"\nrecipes = \"{name}\""),
            )
        };
        let b = parse(&set("arc")).unwrap();
        assert_eq!(
            b.recipe_ids(),
            [
                "native",
                "evalscope",
                "lm-eval",
                "lm-eval-ll",
                "lm-eval-ll-norm"
            ]
        );
        // A user file's recipes say where they were defined.
        assert!(b.recipes[2].provenance.ends_with("(benchmark file t.toml)"));
        let e = parse(&set("nope")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str(), e.message.as_str()),
            (
                Some(12),
                "recipe.recipes",
                "`nope`: no such recipe set (known: arc)"
            )
        );
        let numeric = "name = \"t\"\nrepo = \"o/n\"\nrevision = \"main\"\n[columns]\nquestion = \"q\"\nanswer = \"a\"\n[recipe]\ntype = \"numeric\"\nrecipes = \"arc\"\n";
        let e = parse(numeric).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str(), e.message.as_str()),
            (
                Some(9),
                "recipe.recipes",
                "`arc` is a set of multiple_choice recipes, not numeric"
            )
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        parse(OK).unwrap();
        let cases = [
            (OK.replace("repo =", "rpo ="), 3, "", "unknown field `rpo`"),
            (
                OK.replace("[recipe]", "[recipe]\nbogus = 1"),
                11,
                "recipe.bogus",
                "unknown field",
            ),
            (
                OK.replace("\"b\"\n", "3\n"),
                8,
                "columns.answer",
                "invalid type",
            ),
            (
                OK.replace("multiple_choice", "mcq"),
                11,
                "recipe.type",
                "unknown variant `mcq`",
            ),
            (
                format!("{OK}[[preprocess]]\nfield = \"question\"\npattern = \"(\"\n"),
                14,
                "preprocess[0].pattern",
                "bad regex",
            ),
        ];
        for (text, line, key, msg) in cases {
            let e = parse(&text).unwrap_err();
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
            assert_eq!(e.line, Some(line), "{s}");
            if !key.is_empty() {
                assert_eq!(e.key, key, "{s}");
            }
            assert!(s.starts_with(&format!("t.toml:{line}: ")), "{s}");
            assert!(s.contains(msg), "{s}");
        }
    }

    #[test]
    fn answers_map_to_letters() {
        let b = parse(OK).unwrap();
        let row: Row = serde_json::from_value(serde_json::json!({
            "q": "Which?", "a": "x", "b": "y", "c": "z"
        }))
        .unwrap();
        let f = b.dataset.fields(&row).unwrap();
        assert_eq!((f.choices.len(), f.target.as_str()), (3, "B"));
        let e = b
            .dataset
            .fields(
                &serde_json::from_value(serde_json::json!({"q": "?", "a": "x", "c": "z"})).unwrap(),
            )
            .unwrap_err();
        assert!(
            e.starts_with(
                // Columns in the data's order (serde_json's `preserve_order`,
                // which the langdetect dependency turns on).
                "t.toml:7: columns.choices[1]: no column `b` in the data (columns: q, a, c)"
            ),
            "{e}"
        );
    }

    #[test]
    fn shuffle_is_a_stable_permutation() {
        let p = shuffle(4, 7, "item");
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, vec![0, 1, 2, 3]);
        assert_eq!(p, shuffle(4, 7, "item"));
        assert!((0..20).any(|k| shuffle(4, 7, &k.to_string()) != p));
    }
}
