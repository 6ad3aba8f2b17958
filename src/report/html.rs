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

use serde_json::json;

use super::{Renderer, RunView, pct};
use crate::record::Outcome;

/// Writes `report.html`.
pub struct HtmlRenderer;

/// Budget of the packed item list (the rest of the page is small), so that
/// `report.html` stays under 5 MB however long the answers are.
pub const MAX_ITEMS_BYTES: usize = 4_500_000;

/// `text` cut to `limit` characters when longer: the head and the tail
/// (where answers usually are) with a note of what was left out between.
pub(crate) fn shorten(text: &str, limit: Option<usize>) -> String {
    let n = text.chars().count();
    match limit {
        Some(limit) if n > limit => {
            let head: String = text.chars().take(limit * 2 / 3).collect();
            let tail: String = text.chars().skip(n - limit / 3).collect();
            format!(
                "{head}\n… [{} characters left out of this page; samples/*.jsonl has the full text] …\n{tail}",
                n - limit * 2 / 3 - limit / 3
            )
        }
        _ => text.to_string(),
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
    let build = |cut: Cut| {
        let items: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let s = |t: &Option<String>, l| t.as_deref().map(|t| shorten(t, l));
                json!({
                    "benchmark": r.benchmark, "subset": r.subset, "split": r.split, "index": r.index, "id": r.id,
                    "outcome": r.outcome.as_str(), "gold": r.gold, "extracted": r.extracted, "verdicts": r.verdicts,
                    "prompt": shorten(&r.sent_text(), cut.text), "response": s(&r.response, cut.text),
                    "reasoning": s(&r.reasoning, cut.reasoning),
                    "finish_reason": r.finish_reason, "latency_ms": r.latency_ms,
                    "error": r.error.as_ref().map(|e| e.to_string()),
                })
            })
            .collect();
        let raw = serde_json::to_vec(&items).expect("JSON into memory");
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
        .flat_map(|r| {
            [
                Some(r.sent_text().len()),
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
        if fits && packed.len() as f64 >= budget as f64 * 0.85 {
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

/// The stylesheet shared by the HTML pages (reports, comparisons).
pub(crate) const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1d9}
main{padding:16px 24px;max-width:1400px}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.primary td{font-weight:600}
.bar{display:inline-block;height:10px;background:#2da44e;vertical-align:middle}
#filters{position:sticky;top:0;background:#f6f8fa;padding:8px 0;border-bottom:1px solid #d0d7de;z-index:1}
#filters label{margin-right:12px}#filters input[type=search]{width:260px}
.item{background:#fff;border:1px solid #d0d7de;border-left:6px solid #8c959f;margin:8px 0;padding:8px 12px}
.item.correct{border-left-color:#2da44e}.item.wrong{border-left-color:#cf222e}.item.no_answer{border-left-color:#bf8700}
.item.truncated{border-left-color:#8250df}.item.failed{border-left-color:#57606a}
.item h3{margin:0 0 4px;font-size:14px}.tag{font-size:12px;padding:1px 6px;border-radius:10px;background:#eaeef2;margin-left:6px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;margin:4px 0;max-height:320px;overflow:auto}
details summary{cursor:pointer;color:#0969da}.muted{color:#57606a}
.warning{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;margin:8px 0}
"#;

const SCRIPT: &str = r#"
(function(){
  // Items are gzip + base64 (see the module docs): inflate, then start.
  var packed = document.getElementById('items').textContent.trim();
  var bin = atob(packed), bytes = new Uint8Array(bin.length);
  for(var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  if(!window.DecompressionStream){
    document.getElementById('count').textContent = 'This browser cannot inflate the item list (needs DecompressionStream); report.json and samples/*.jsonl hold every item.';
    return;
  }
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function(t){
    start(JSON.parse(t));
    document.documentElement.dataset.ready = '1';
  });
})();
function start(data){
  var list = document.getElementById('list'), count = document.getElementById('count');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#filters input[data-outcome]'));
  var bench = document.getElementById('bench'), search = document.getElementById('search');
  var more = document.getElementById('more');
  var PAGE = 200, shown = PAGE;
  function el(tag, cls, text){ var e = document.createElement(tag); if(cls) e.className = cls; if(text !== undefined && text !== null) e.textContent = String(text); return e; }
  function section(parent, title, text, open){
    if(text === undefined || text === null || text === '') return;
    var d = el('details'); if(open) d.open = true; d.appendChild(el('summary', null, title)); d.appendChild(el('pre', null, text)); parent.appendChild(d);
  }
  function matches(it){
    var on = boxes.filter(function(b){return b.checked;}).map(function(b){return b.dataset.outcome;});
    if(on.indexOf(it.outcome) < 0) return false;
    if(bench.value && it.benchmark !== bench.value) return false;
    var q = search.value.toLowerCase();
    if(q){ var hay = (it.prompt + '\n' + (it.response||'') + '\n' + (it.id||'')).toLowerCase(); if(hay.indexOf(q) < 0) return false; }
    return true;
  }
  function render(){
    var sel = data.filter(matches);
    count.textContent = sel.length + ' of ' + data.length + ' items';
    list.textContent = '';
    sel.slice(0, shown).forEach(function(it){
      var d = el('div', 'item ' + it.outcome);
      var h = el('h3', null, it.benchmark + ' / ' + it.subset + ' / ' + it.split + ' #' + it.index + (it.id ? ' (' + it.id + ')' : ''));
      h.appendChild(el('span', 'tag', it.outcome.replace('_', ' ')));
      if(it.finish_reason) h.appendChild(el('span', 'tag', 'finish: ' + it.finish_reason));
      if(it.latency_ms !== null && it.latency_ms !== undefined) h.appendChild(el('span', 'tag', Math.round(it.latency_ms) + ' ms'));
      d.appendChild(h);
      var p = el('div', 'muted'); p.textContent = 'gold: ' + it.gold + '   extracted: ' + Object.keys(it.extracted).map(function(k){ return k + '=' + (it.extracted[k] === null ? '(none)' : it.extracted[k]) + (it.verdicts[k] ? ' \u2713' : ' \u2717'); }).join('   ');
      d.appendChild(p);
      if(it.error) d.appendChild(el('pre', null, 'error: ' + it.error));
      section(d, 'prompt', it.prompt, (it.prompt || '').length < 1500);
      section(d, 'response', it.response, true);
      section(d, 'reasoning', it.reasoning, false);
      list.appendChild(d);
    });
    more.style.display = sel.length > shown ? '' : 'none';
  }
  boxes.forEach(function(b){ b.addEventListener('change', function(){ shown = PAGE; render(); }); });
  bench.addEventListener('change', function(){ shown = PAGE; render(); });
  search.addEventListener('input', function(){ shown = PAGE; render(); });
  more.addEventListener('click', function(){ shown += PAGE; render(); });
  render();
}
"#;

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
        out.push_str("<h2>Results</h2><table><thead><tr><th>Benchmark</th><th>Subset</th><th>Mode</th><th>Extractor</th><th>n</th><th>Accuracy %</th><th></th><th>± stderr</th><th>95% CI</th>");
        for o in Outcome::ALL {
            let _ = write!(out, "<th>{}</th>", o.as_str().replace('_', " "));
        }
        out.push_str("</tr></thead><tbody>");
        for r in &d.results {
            let _ = write!(
                out,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td><span class=bar style=\"width:{}px\"></span></td><td class=n>{}</td><td class=n>{}–{}</td>",
                if r.primary { " class=primary" } else { "" },
                escape(&r.benchmark),
                escape(&r.subset),
                escape(&r.mode),
                escape(&r.extractor),
                r.stats.n,
                pct(r.stats.accuracy),
                (r.stats.accuracy * 120.0).round(),
                pct(r.stats.stderr),
                pct(r.stats.ci_low),
                pct(r.stats.ci_high)
            );
            for o in Outcome::ALL {
                let _ = write!(
                    out,
                    "<td class=n>{}</td>",
                    r.outcomes.get(&o).copied().unwrap_or(0)
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table><p class=muted>Bold rows: primary extractor. Failed items count as not correct.</p>");

        if !d.agreement.is_empty() {
            out.push_str("<h2>Extractor agreement</h2><p class=muted>How much the grading moves the score: answered items, each pair of extractors.</p><table><thead><tr><th>Benchmark</th><th>A</th><th>B</th><th>n</th><th>both correct</th><th>only A</th><th>only B</th><th>neither</th><th>extracted differ</th></tr></thead><tbody>");
            for a in &d.agreement {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                    escape(&a.benchmark),
                    escape(&a.a),
                    escape(&a.b),
                    a.n,
                    a.both_correct,
                    a.only_a,
                    a.only_b,
                    a.neither,
                    a.extracted_differ
                );
            }
            out.push_str("</tbody></table>");
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
                    "mode {} ({}), {}-shot, subsets {}, template {} ({}), extractors {}",
                    b.mode,
                    b.provenance,
                    b.few_shot,
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
            kv(
                &format!("Data: {}", ds.benchmark),
                format!("{}@{} {}", ds.repo_id, ds.revision, files.join(", ")),
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
            "<script type=\"application/octet-stream\" id=items data-encoding=\"gzip+base64\">{packed}</script><script>{SCRIPT}</script></main></body></html>"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(packed: &str) -> serde_json::Value {
        use base64::Engine;
        let gz = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .unwrap();
        serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap()
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
