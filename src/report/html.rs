//! `report.html`: one self-contained page (no network): the summary table and
//! a per-item browser filtering correct / wrong / no answer / truncated /
//! failed, showing the prompt, response, reasoning and extracted answers.
//!
//! Size: the items travel gzip-compressed and base64-encoded, and the page
//! inflates them with the browser's own `DecompressionStream` (no network, no
//! library): a full run of 4867 items with long answers stays a few MB.
//!
//! Safety: model text is untrusted. Server-side text goes through
//! [`escape`]; the items block is base64 (no `<`, `>` or `&` in it), so no
//! response can close the block; the page script inserts text only through
//! `textContent`, never `innerHTML`.

use std::fmt::Write;

use super::{Format, Renderer, RunView};
use crate::record::Outcome;

/// Writes `report.html`.
pub struct HtmlRenderer;

/// Budget of the packed item list (the rest of the page is small), so that
/// `report.html` stays under 5 MB however long the answers are.
pub const MAX_ITEMS_BYTES: usize = 4_500_000;

/// `text` cut to `limit` characters when longer: the head and the tail
/// (where answers usually are) with a note of what was left out between.
pub(crate) fn shorten(text: &str, limit: Option<usize>) -> std::borrow::Cow<'_, str> {
    let Some(limit) = limit else {
        return text.into();
    };
    let n = text.chars().count();
    match limit {
        limit if n > limit => {
            let head: String = text.chars().take(limit * 2 / 3).collect();
            let tail: String = text.chars().skip(n - limit / 3).collect();
            format!(
                "{head}\n… [{} characters left out of this page; samples/*.jsonl has the full text] …\n{tail}",
                n - limit * 2 / 3 - limit / 3
            )
            .into()
        }
        _ => text.into(),
    }
}

/// Character limits applied to the texts of the HTML item list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    /// Limit on reasoning (cut first: the least needed to judge an item).
    reasoning: Option<usize>,
    /// Limit on prompts and responses.
    text: Option<usize>,
}

/// The shortest a shortened text gets.
const MIN_CUT: usize = 250;

/// The items as JSON, packed ([`pack`]) within `budget` bytes when possible.
/// When the full texts do not fit, reasoning is shortened first, then
/// prompts and responses, each to the largest limit whose estimated size
/// fits: the estimate scales the raw size by the compression ratio of the
/// last build, refined with each build (shortened texts change the mix of
/// what compresses well). Returns the packed data and the limits used.
fn packed_items(view: &RunView, budget: usize) -> (String, Option<Cut>) {
    let records: Vec<&crate::record::SampleRecord> = view
        .samples
        .iter()
        .flat_map(|(_, recs)| recs.iter())
        .collect();
    let sent: Vec<String> = records.iter().map(|r| r.sent_text()).collect();
    let shared = SharedPrefixes::find(&records, &sent);
    let build = |cut: Cut| {
        let items: Vec<PackedItem> = records
            .iter()
            .zip(&sent)
            .enumerate()
            .map(|(i, (r, sent))| {
                let (prompt_prefix, rest) = shared.split(i, sent);
                PackedItem {
                    benchmark: &r.benchmark,
                    error: r.error.as_ref().map(|e| e.to_string()),
                    extracted: &r.extracted,
                    finish_reason: r.finish_reason.as_deref(),
                    gold: &r.gold,
                    id: r.id.as_deref(),
                    index: r.index,
                    latency_ms: r.latency_ms,
                    outcome: r.outcome.as_str(),
                    prompt: shorten(rest, cut.text),
                    prompt_prefix,
                    reasoning: r.reasoning.as_deref().map(|t| shorten(t, cut.reasoning)),
                    repeat: r.repeat,
                    response: r.response.as_deref().map(|t| shorten(t, cut.text)),
                    split: &r.split,
                    subset: &r.subset,
                    verdicts: &r.verdicts,
                }
            })
            .collect();
        // Without shared prefixes the data stays the plain item array.
        let raw = if shared.prefixes.is_empty() {
            serde_json::to_vec(&items)
        } else {
            serde_json::to_vec(&WithPrefixes {
                items: &items,
                prefixes: &shared.prefixes,
            })
        }
        .expect("JSON into memory");
        (pack(&raw), raw.len())
    };
    let full = Cut {
        reasoning: None,
        text: None,
    };
    let (packed, raw_len) = build(full);
    if packed.len() <= budget {
        return (packed, None);
    }
    let reasoning: Vec<usize> = records
        .iter()
        .filter_map(|r| r.reasoning.as_ref().map(String::len))
        .collect();
    let texts: Vec<usize> = records
        .iter()
        .zip(&sent)
        .enumerate()
        .flat_map(|(i, (r, sent))| {
            [
                Some(shared.split(i, sent).1.len()),
                r.response.as_ref().map(String::len),
            ]
        })
        .flatten()
        .collect();
    let kept = |lengths: &[usize], limit: Option<usize>| -> usize {
        lengths
            .iter()
            .map(|&n| match limit {
                Some(l) if n > l => l + 100,
                _ => n,
            })
            .sum()
    };
    let other = raw_len.saturating_sub(kept(&reasoning, None) + kept(&texts, None));
    let raw_at = |c: Cut| other + kept(&reasoning, c.reasoning) + kept(&texts, c.text);
    // The largest limit on one group (the other fixed) whose raw size is under `target`.
    let largest = |lengths: &[usize], at: &dyn Fn(usize) -> usize, target: f64| -> usize {
        let (mut lo, mut hi) = (MIN_CUT, lengths.iter().copied().max().unwrap_or(MIN_CUT));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if at(mid) as f64 <= target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    let mut ratio = packed.len() as f64 / raw_len as f64;
    let mut best: Option<(String, Cut)> = None;
    for _ in 0..4 {
        let target = budget as f64 * 0.95 / ratio;
        let only_reasoning = |l: usize| {
            raw_at(Cut {
                reasoning: Some(l),
                text: None,
            })
        };
        let cut = if !reasoning.is_empty() && only_reasoning(MIN_CUT) as f64 <= target {
            Cut {
                reasoning: Some(largest(&reasoning, &only_reasoning, target)),
                text: None,
            }
        } else {
            let with_text = |l: usize| {
                raw_at(Cut {
                    reasoning: Some(MIN_CUT),
                    text: Some(l),
                })
            };
            Cut {
                reasoning: Some(MIN_CUT),
                text: Some(largest(&texts, &with_text, target)),
            }
        };
        let (packed, raw) = build(cut);
        ratio = packed.len() as f64 / raw as f64;
        let fits = packed.len() <= budget;
        if fits && best.as_ref().is_none_or(|(p, _)| packed.len() > p.len()) {
            best = Some((packed.clone(), cut));
        }
        let floor = cut.text == Some(MIN_CUT);
        // The first cut that fits is kept: each build serialises and
        // compresses every item again (a 14,042-item MMLU run spent most of
        // its time here when builds continued towards the budget).
        if fits {
            break;
        }
        if floor && !fits {
            // Even the shortest texts do not fit: this is as small as it gets.
            return (packed, Some(cut));
        }
    }
    match best {
        Some((packed, cut)) => (packed, Some(cut)),
        None => {
            let cut = Cut {
                reasoning: Some(MIN_CUT),
                text: Some(MIN_CUT),
            };
            (build(cut).0, Some(cut))
        }
    }
}

/// One item of the packed list. Fields in alphabetical order, the order the
/// page has always had them in; `None` is `null` (`repeat` and
/// `prompt_prefix` are left out instead, so a page without repeats or shared
/// prefixes keeps its old form).
#[derive(serde::Serialize)]
struct PackedItem<'a> {
    benchmark: &'a str,
    error: Option<String>,
    extracted: &'a std::collections::BTreeMap<String, Option<String>>,
    finish_reason: Option<&'a str>,
    gold: &'a str,
    id: Option<&'a str>,
    index: usize,
    latency_ms: Option<f64>,
    outcome: &'a str,
    prompt: std::borrow::Cow<'a, str>,
    /// Index into the shared prefixes: the prompt is that prefix + `prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_prefix: Option<usize>,
    reasoning: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<usize>,
    response: Option<std::borrow::Cow<'a, str>>,
    split: &'a str,
    subset: &'a str,
    verdicts: &'a std::collections::BTreeMap<String, bool>,
}

/// The packed list when prompts share prefixes.
#[derive(serde::Serialize)]
struct WithPrefixes<'a> {
    items: &'a [PackedItem<'a>],
    prefixes: &'a [String],
}

/// Prompt prefixes shared by every item of a (benchmark, subset): the
/// few-shot examples that a fixed-shot benchmark repeats in each prompt
/// (MMLU's five `dev` questions per subject). Stored once, they take a
/// 14,042-item run from ~45 MB of JSON to a fraction, so the page keeps
/// every text in full and is built in one pass.
struct SharedPrefixes {
    /// The distinct prefixes.
    prefixes: Vec<String>,
    /// Per record: (prefix index, its length in bytes).
    of: Vec<Option<(usize, usize)>>,
}

impl SharedPrefixes {
    /// Shorter common prefixes are not worth an indirection.
    const MIN_LEN: usize = 256;

    fn find(records: &[&crate::record::SampleRecord], sent: &[String]) -> Self {
        let mut groups: std::collections::BTreeMap<(&str, &str), Vec<usize>> = Default::default();
        for (i, r) in records.iter().enumerate() {
            groups.entry((&r.benchmark, &r.subset)).or_default().push(i);
        }
        let mut out = SharedPrefixes {
            prefixes: Vec::new(),
            of: vec![None; records.len()],
        };
        for members in groups.values() {
            if members.len() < 2 {
                continue;
            }
            let first = sent[members[0]].as_str();
            let mut len = first.len();
            for &m in &members[1..] {
                len = first.as_bytes()[..len]
                    .iter()
                    .zip(sent[m].as_bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
            }
            while !first.is_char_boundary(len) {
                len -= 1;
            }
            if len < Self::MIN_LEN {
                continue;
            }
            let k = out.prefixes.len();
            out.prefixes.push(first[..len].to_string());
            for &m in members {
                out.of[m] = Some((k, len));
            }
        }
        out
    }

    /// Record `i`'s prefix index and the rest of its prompt `sent`.
    fn split<'s>(&self, i: usize, sent: &'s str) -> (Option<usize>, &'s str) {
        match self.of[i] {
            Some((k, len)) => (Some(k), &sent[len..]),
            None => (None, sent),
        }
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// gzip (fast level: rendering time matters more than the last few %) then
/// base64: compact, and inert inside any HTML element.
fn pack(raw: &[u8]) -> String {
    use base64::Engine;
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(raw).expect("gzip into memory");
    let bytes = gz.finish().expect("gzip into memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// JSON safe to embed inside a `<script>` element.
pub fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The stylesheet shared by every HTML page (run and perf reports,
/// comparisons, the index): `assets/report.css`, inlined so that each page
/// stays one self-contained file.
pub const STYLE: &str = include_str!("../../assets/report.css");

/// The item browser.
const SCRIPT: &str = include_str!("../../assets/report.js");

/// Sorting of the per-group tables (also on the comparison page).
pub const SORT_SCRIPT: &str = include_str!("../../assets/sort.js");

impl Renderer for HtmlRenderer {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, view: &RunView) -> String {
        let d = &view.data;
        let m = &d.manifest;
        let s = &m.settings;
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
             <title>bench eval: {}</title><style>{STYLE}</style></head><body>",
            escape(&s.model)
        );
        let _ = write!(
            out,
            "<header><h1>bench eval: {}</h1><p>{} · {} API at {}{} · {} {} · status {}</p></header><main>",
            escape(&s.model),
            escape(&m.created_at),
            escape(&s.api),
            escape(&crate::redact::strip_userinfo(&s.api_base)),
            if s.stream { " (streaming)" } else { "" },
            escape(&m.tool.name),
            escape(&m.tool.version),
            escape(&m.status)
        );
        for w in &d.warnings {
            let _ = write!(
                out,
                "<p class=warning><strong>Warning:</strong> {}</p>",
                escape(w)
            );
        }
        out.push_str("<h2>Results</h2>");
        out.push_str(&super::results_table(d).render(Format::Html));
        out.push_str(
            "<p class=muted>Bold rows: primary extractor. Failed items count as not correct.</p>",
        );
        if let Some(t) = super::repeats_table(d) {
            out.push_str("<h2>Repeats</h2><p class=muted>Each item was asked several times; n in the results counts (item, repeat) pairs.</p>");
            out.push_str(&t.render(Format::Html));
        }
        let groups = super::group_tables(d);
        if !groups.is_empty() {
            out.push_str(
                "<h2>By group</h2><p class=muted>Primary extractor; click a header to sort.</p>",
            );
            for g in &groups {
                out.push_str(&g.render(Format::Html));
            }
        }
        if let Some(t) = super::instructions_table(d, false) {
            out.push_str("<h2>Instructions followed</h2><p class=muted>Per instruction: prompt-level accuracy is in the results above (strict is primary); click a header to sort.</p>");
            out.push_str(&t.render(Format::Html));
        }
        if !d.agreement.is_empty() {
            out.push_str("<h2>Extractor agreement</h2><p class=muted>How much the grading moves the score: answered items, each pair of extractors.</p>");
            out.push_str(&super::agreement_table(d).render(Format::Html));
        }
        if let Some(src) = &m.rescored_from {
            let modes: Vec<String> = src.modes.iter().map(|(b, m)| format!("{b}: {m}")).collect();
            let _ = write!(
                out,
                "<p class=muted>Re-graded without model calls from the responses in {} (generated with {}).</p>",
                escape(&src.dir),
                escape(&modes.join(", "))
            );
        }
        out.push_str("<h2>Settings</h2><table><tbody>");
        let mut kv = |k: &str, v: String| {
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            );
        };
        kv("Model", s.model.clone());
        kv("Served models", m.served_models.join(", "));
        if let Some(e) = &m.engine {
            kv("Engine", e.summary());
        }
        kv("Concurrency", m.concurrency.to_string());
        kv("Limit", m.limit.clone().unwrap_or_else(|| "none".into()));
        kv(
            "Generation config",
            serde_json::to_string(&s.generation).unwrap_or_default(),
        );
        kv("Duration", format!("{:.1} s", m.duration_s));
        for b in &s.benchmarks {
            kv(
                &b.benchmark,
                format!(
                    "mode {} ({}), {}-shot{}, subsets {}, template {} ({}), extractors {}",
                    b.mode,
                    b.provenance,
                    b.few_shot,
                    super::repeats_setting(b.repeats),
                    b.subsets.join(", "),
                    b.template,
                    b.template_sha256.get(..12).unwrap_or(""),
                    b.extractors.join(", ")
                ),
            );
        }
        for ds in &m.datasets {
            let files: Vec<String> = ds
                .files
                .iter()
                .map(|f| format!("{} (sha256 {})", f.path, f.sha256))
                .collect();
            let resolved: Vec<String> = ds
                .resolved_branches()
                .iter()
                .map(|(rev, commit)| format!("{rev} = {commit}"))
                .collect();
            let resolved = if resolved.is_empty() {
                String::new()
            } else {
                format!(" (resolved: {})", resolved.join(", "))
            };
            kv(
                &format!("Data: {}", ds.benchmark),
                format!(
                    "{}@{}{} {}",
                    ds.repo_id,
                    ds.revision,
                    resolved,
                    files.join(", ")
                ),
            );
        }
        out.push_str("</tbody></table>");

        // Item browser.
        out.push_str("<h2>Items</h2><div id=filters>");
        for o in Outcome::ALL {
            let _ = write!(
                out,
                "<label><input type=checkbox checked data-outcome=\"{}\"> {}</label>",
                o.as_str(),
                o.as_str().replace('_', " ")
            );
        }
        out.push_str("<select id=bench><option value=\"\">all benchmarks</option>");
        for (b, _) in &view.samples {
            let _ = write!(out, "<option value=\"{0}\">{0}</option>", escape(b));
        }
        out.push_str("</select> <input id=search type=search placeholder=\"search question / response\"> <span id=count class=muted></span></div>");
        out.push_str("<div id=list></div><button id=more>show more</button>");

        let (packed, cut) = packed_items(view, MAX_ITEMS_BYTES);
        if let Some(cut) = cut {
            let what = match (cut.reasoning, cut.text) {
                (Some(r), None) => format!("reasoning longer than {r} characters is"),
                (Some(r), Some(t)) => format!(
                    "reasoning longer than {r} characters and prompts and responses longer than {t} are"
                ),
                (None, Some(t)) => format!("prompts and responses longer than {t} characters are"),
                (None, None) => "nothing is".into(),
            };
            let _ = write!(
                out,
                "<p class=muted>To keep this page under 5 MB, {what} shortened in the middle here; samples/*.jsonl has every text in full.</p>"
            );
        }
        let _ = writeln!(
            out,
            "<script type=\"application/octet-stream\" id=items data-encoding=\"gzip+base64\">{packed}</script><script>{SCRIPT}</script><script>{SORT_SCRIPT}</script></main></body></html>"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unpack(packed: &str) -> serde_json::Value {
        use base64::Engine;
        let gz = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .unwrap();
        let data: serde_json::Value =
            serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
        // As the page does: shared prefixes put back in front of the prompts.
        let Some(prefixes) = data.get("prefixes").cloned() else {
            return data;
        };
        let mut items = data["items"].clone();
        for it in items.as_array_mut().unwrap() {
            if let Some(k) = it.get("prompt_prefix").and_then(|k| k.as_u64()) {
                let full = format!(
                    "{}{}",
                    prefixes[k as usize].as_str().unwrap(),
                    it["prompt"].as_str().unwrap()
                );
                let o = it.as_object_mut().unwrap();
                o.remove("prompt_prefix");
                o.insert("prompt".into(), full.into());
            }
        }
        items
    }

    /// A few-shot prefix repeated in every prompt of a subset is stored
    /// once; put back, every prompt is its sent text byte for byte. A subset
    /// whose prompts share less than 256 bytes keeps its prompts whole, and
    /// a run with no shared prefix keeps the plain item array.
    #[test]
    fn shared_prompt_prefixes_are_stored_once_and_restored_exactly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/eval-a");
        let mut view = super::super::load(&crate::record::RunDir::new(&dir)).unwrap();
        let shots = "Question: é 1+1?\nAnswer: 2\n\n".repeat(20);
        let mut n = 0;
        let (bench0, subset0) = {
            let r0 = &view.samples[0].1[0];
            (r0.benchmark.clone(), r0.subset.clone())
        };
        for (_, recs) in &mut view.samples {
            for (i, r) in recs.iter_mut().enumerate() {
                r.messages = None;
                r.prompt = Some(if r.benchmark == bench0 && r.subset == subset0 {
                    format!("{shots}Question: item {i} ü?\nAnswer:")
                } else {
                    format!("short {i}")
                });
                n += 1;
            }
        }
        let sent: Vec<String> = view
            .samples
            .iter()
            .flat_map(|(_, rs)| rs.iter().map(|r| r.sent_text()))
            .collect();
        let (packed, cut) = packed_items(&view, usize::MAX);
        assert!(cut.is_none());
        let raw = {
            use base64::Engine;
            let gz = base64::engine::general_purpose::STANDARD
                .decode(&packed)
                .unwrap();
            let v: serde_json::Value =
                serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
            v
        };
        assert_eq!(
            raw["prefixes"].as_array().unwrap().len(),
            1,
            "{}",
            raw["prefixes"]
        );
        assert!(raw["prefixes"][0].as_str().unwrap().starts_with(&shots));
        let items = unpack(&packed);
        let prompts: Vec<&str> = items
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["prompt"].as_str().unwrap())
            .collect();
        assert_eq!(prompts.len(), n);
        assert_eq!(prompts, sent.iter().map(String::as_str).collect::<Vec<_>>());
        // Nothing shared: the old form.
        for (_, recs) in &mut view.samples {
            for (i, r) in recs.iter_mut().enumerate() {
                r.prompt = Some(format!("{i} {shots}"));
            }
        }
        let (packed, _) = packed_items(&view, usize::MAX);
        assert!(unpack(&packed).is_array());
    }

    #[test]
    fn long_texts_are_shortened_to_fit_the_budget_reasoning_first() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/eval-a");
        let mut view = super::super::load(&crate::record::RunDir::new(&dir)).unwrap();
        // Text that compresses like prose, not like a repeated pattern.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut prose = |words: usize| {
            (0..words)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("w{}", x % 5000)
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (_, recs) in &mut view.samples {
            for r in recs.iter_mut() {
                r.reasoning = Some(prose(3000));
                r.response = Some(prose(400) + " \\boxed{1}");
            }
        }
        let (full, none) = packed_items(&view, usize::MAX);
        assert!(none.is_none());
        // A budget the reasoning alone can make room for.
        let budget = full.len() / 3;
        let (packed, cut) = packed_items(&view, budget);
        let cut = cut.unwrap();
        assert!(packed.len() <= budget, "{} > {budget}", packed.len());
        assert!(cut.reasoning.is_some() && cut.text.is_none(), "{cut:?}");
        let items = unpack(&packed);
        let r0 = items[0]["reasoning"].as_str().unwrap();
        assert!(r0.contains("characters left out of this page"), "{r0}");
        assert!(
            items[0]["response"]
                .as_str()
                .unwrap()
                .ends_with("\\boxed{1}")
        );
        // A budget that needs responses shortened too: still within it, answers' tails kept.
        let budget = full.len() / 12;
        let (packed, cut) = packed_items(&view, budget);
        let cut = cut.unwrap();
        assert!(packed.len() <= budget, "{} > {budget}", packed.len());
        assert_eq!(cut.reasoning, Some(MIN_CUT));
        assert!(cut.text.is_some(), "{cut:?}");
        let items = unpack(&packed);
        let resp = items[0]["response"].as_str().unwrap();
        assert!(
            resp.contains("left out") && resp.ends_with("\\boxed{1}"),
            "{resp}"
        );
    }

    #[test]
    fn shorten_keeps_head_and_tail() {
        let t: String = "a".repeat(100) + &"z".repeat(50);
        let s = shorten(&t, Some(30));
        assert!(
            s.starts_with(&"a".repeat(20)) && s.ends_with(&"z".repeat(10)),
            "{s}"
        );
        assert!(s.contains("[120 characters left out"), "{s}");
        assert_eq!(shorten("short", Some(30)), "short");
        assert_eq!(shorten(&t, None), t);
    }

    #[test]
    fn script_json_cannot_close_the_block() {
        let v = json!({"r": "</script><script>alert(1)</script> & <img src=x onerror=alert(1)>"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert_eq!(escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
    }
}
