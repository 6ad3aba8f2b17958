//! The HTML pages in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`) opens the eval report, the perf
//! report, both comparison pages and the index from `file://`.
//!
//! Each page is loaded inside a harness page (same folder, read with
//! `--allow-file-access-from-files`) whose script clicks the real controls
//! and writes what it saw into the DOM that `--dump-dom` prints; console
//! messages come from `--enable-logging=stderr`. A screenshot of each page
//! is checked not to be blank.
//!
//! Without chromium these tests print SKIPPED (and fail when
//! `BENCH_REQUIRE_BROWSER` is set, as `.ci/run` does after installing it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Script payloads planted in model text: they must show as text and never run.
const HOSTILE: &str = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(b))
                    .find(|c| c.is_file())
            })
        });
    if found.is_none() {
        crate::support::skip(
            "browser test",
            "no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)",
            "BENCH_REQUIRE_BROWSER",
        );
    }
    found
}

/// Run chromium headless with `extra` flags on `url`; returns (stdout, stderr).
fn run_chromium(bin: &Path, profile: &Path, extra: &[String], url: &str) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let pid = child.id();
    // A hung browser must not hang the suite: end it (our own child) after a minute.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(o) => o.expect("chromium output"),
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("chromium did not finish within 90 s on {url}");
        }
    };
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the harness saw, and the page's console lines.
struct Visit {
    result: Value,
    console: Vec<String>,
}

/// Open `page` in a harness iframe and run `step` (a JS function
/// `(w, d, loads, done)` called on every load of the frame; `done(obj)`
/// records the result).
fn visit(bin: &Path, page: &Path, step: &str) -> Visit {
    let dir = page.parent().unwrap();
    let name = page.file_name().unwrap().to_string_lossy();
    let harness = dir.join(format!("harness-{name}"));
    std::fs::write(
        &harness,
        format!(
            r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<iframe id=f src="{name}" width=1280 height=900></iframe><pre id=result>pending</pre>
<script>
var f = document.getElementById('f'), loads = 0;
function done(r){{ document.getElementById('result').textContent = JSON.stringify(r); }}
f.addEventListener('load', function(){{
  loads++;
  var n = loads, tries = 0;
  // The eval report inflates its items asynchronously and marks the page ready.
  (function wait(){{
    var d = f.contentDocument;
    if(d.getElementById('items') && !d.documentElement.dataset.ready && tries++ < 500) {{ setTimeout(wait, 20); return; }}
    try {{ ({step})(f.contentWindow, d, n, done); }}
    catch(e) {{ done({{harness_error: String(e) + ' ' + e.stack}}); }}
  }})();
}});
</script></body></html>"#
        ),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", harness.display());
    let (dom, log) = run_chromium(
        bin,
        profile.path(),
        &[
            "--allow-file-access-from-files".into(),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--virtual-time-budget=15000".into(),
            "--dump-dom".into(),
        ],
        &url,
    );
    let raw = dom
        .split_once("<pre id=\"result\">")
        .and_then(|(_, r)| r.split_once("</pre>"))
        .map(|(r, _)| r)
        .unwrap_or_else(|| panic!("no result in the dumped DOM:\n{dom}\n{log}"));
    let json = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let result: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("harness result {json:?}: {e}\n{log}"));
    assert!(
        result.get("harness_error").is_none(),
        "harness script failed: {result}\n{log}"
    );
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") && !l.contains("harness-"))
        .map(str::to_string)
        .collect();
    Visit { result, console }
}

/// Screenshot `page` and check it is not blank: many colours, and a good
/// share of pixels away from the background.
fn screenshot_not_blank(bin: &Path, page: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let png_path = profile.path().join("shot.png");
    let (_, log) = run_chromium(
        bin,
        profile.path(),
        &[
            "--window-size=1280,1000".into(),
            format!("--screenshot={}", png_path.display()),
        ],
        &format!("file://{}", page.display()),
    );
    let file = std::fs::File::open(&png_path)
        .unwrap_or_else(|e| panic!("no screenshot of {}: {e}\n{log}", page.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(info.width >= 1000 && info.height >= 800, "{info:?}");
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(&p[..3]).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let away = pixels.len() - background;
    assert!(
        counts.len() > 50 && away * 100 / pixels.len() >= 3,
        "{} looks blank: {} colours, {away} of {} pixels off the background",
        page.display(),
        counts.len(),
        pixels.len()
    );
}

/// Copy the fixed runs to a temp folder, with [`HOSTILE`] appended to every
/// eval response and question, and fresh reports rendered by this build.
fn runs() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs");
    crate::support::copy_runs(&outputs, &["eval-a", "eval-b", "perf-a", "perf-b"]);
    for run in ["eval-a", "eval-b"] {
        let samples = outputs.join(run).join("samples");
        for f in std::fs::read_dir(&samples).unwrap().flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let mut out = String::new();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let mut v: Value = serde_json::from_str(line).unwrap();
                if let Some(r) = v["response"].as_str() {
                    v["response"] = Value::String(format!("{HOSTILE}\n{r}"));
                }
                if let Some(ms) = v["messages"].as_array_mut()
                    && let Some(last) = ms.last_mut()
                    && let Some(c) = last["content"].as_str()
                {
                    last["content"] = Value::String(format!("{c}\n{HOSTILE}"));
                }
                out.push_str(&serde_json::to_string(&v).unwrap());
                out.push('\n');
            }
            std::fs::write(f.path(), out).unwrap();
        }
    }
    for run in ["eval-a", "eval-b", "perf-a", "perf-b"] {
        let o = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(["report", outputs.join(run).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    (tmp, outputs)
}

fn bench(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Outcome counts of a run's primary verdicts, from its journals.
fn outcomes(run: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for f in std::fs::read_dir(run.join("samples")).unwrap().flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                *m.entry(v["outcome"].as_str().unwrap_or("?").to_string())
                    .or_insert(0) += 1;
            }
        }
    }
    m
}

fn no_console(v: &Visit, what: &str) {
    assert!(
        v.console.is_empty(),
        "{what}: console messages:\n{}",
        v.console.join("\n")
    );
}

/// JS shared by the hostile-text checks: nothing ran, no element was made
/// from model text, and the text itself is on the page.
const HOSTILE_CHECK: &str = r#"function(w, d){
  return { pwned: w.__pwned === undefined ? null : w.__pwned,
           imgs: d.querySelectorAll('main img, #list img, article img').length,
           scripts_in_items: d.querySelectorAll('#list script, article script, pre script').length,
           shown: d.body.textContent.indexOf('\u003cscript>window.__pwned=1\u003c/script>') >= 0 };
}"#;

fn assert_inert(r: &Value, what: &str) {
    assert_eq!(
        r["safety"]["pwned"],
        Value::Null,
        "{what}: a payload ran: {r}"
    );
    assert_eq!(r["safety"]["imgs"], 0, "{what}: {r}");
    assert_eq!(r["safety"]["scripts_in_items"], 0, "{what}: {r}");
    assert_eq!(
        r["safety"]["shown"], true,
        "{what}: payload not shown as text: {r}"
    );
}

#[test]
fn eval_report_filters_and_keeps_model_text_inert() {
    let Some(bin) = chromium() else { return };
    let (_tmp, outputs) = runs();
    let run = outputs.join("eval-a");
    let counts = outcomes(&run);
    let total: usize = counts.values().sum();
    let step = format!(
        r#"function(w, d, loads, done){{
  var safety = ({HOSTILE_CHECK})(w, d);
  var count0 = d.getElementById('count').textContent, items0 = d.querySelectorAll('#list .item').length;
  // Keep only "wrong": untick every other outcome box.
  Array.prototype.forEach.call(d.querySelectorAll('#filters input[data-outcome]'), function(b){{
    if(b.dataset.outcome !== 'wrong' && b.checked) b.click();
  }});
  var wrongClasses = Array.prototype.map.call(d.querySelectorAll('#list .item'), function(e){{ return e.className; }});
  var count1 = d.getElementById('count').textContent;
  // Back to all, then a benchmark and a search.
  Array.prototype.forEach.call(d.querySelectorAll('#filters input[data-outcome]'), function(b){{ if(!b.checked) b.click(); }});
  var sel = d.getElementById('bench'); sel.value = 'arc_easy'; sel.dispatchEvent(new Event('change'));
  var benches = Array.prototype.map.call(d.querySelectorAll('#list .item h3'), function(h){{ return h.firstChild.textContent.split(' / ')[0]; }});
  sel.value = ''; sel.dispatchEvent(new Event('change'));
  var s = d.getElementById('search'); s.value = 'no such text anywhere 123'; s.dispatchEvent(new Event('input'));
  var none = d.querySelectorAll('#list .item').length;
  done({{ safety: safety, count0: count0, items0: items0, count1: count1, wrongClasses: wrongClasses, benches: benches, none: none }});
}}"#
    );
    let v = visit(&bin, &run.join("report.html"), &step);
    no_console(&v, "eval report");
    let r = &v.result;
    assert_inert(r, "eval report");
    assert_eq!(r["count0"], format!("{total} of {total} items"), "{r}");
    assert_eq!(r["items0"], total.min(200), "{r}");
    let wrong = counts.get("wrong").copied().unwrap_or(0);
    assert!(wrong > 0, "the fixture has wrong answers: {counts:?}");
    assert_eq!(r["count1"], format!("{wrong} of {total} items"), "{r}");
    let classes = r["wrongClasses"].as_array().unwrap();
    assert_eq!(classes.len(), wrong);
    assert!(classes.iter().all(|c| c == "item wrong"), "{r}");
    let benches = r["benches"].as_array().unwrap();
    assert!(
        !benches.is_empty() && benches.iter().all(|b| b == "arc_easy"),
        "{r}"
    );
    assert_eq!(r["none"], 0);
    screenshot_not_blank(&bin, &run.join("report.html"));
}

#[test]
fn perf_report_draws_its_charts() {
    let Some(bin) = chromium() else { return };
    let (_tmp, outputs) = runs();
    let page = outputs.join("perf-a").join("report.html");
    let step = r#"function(w, d, loads, done){
  var svgs = d.querySelectorAll('svg');
  var lines = d.querySelectorAll('svg polyline').length;
  var box = svgs.length ? svgs[0].getBoundingClientRect() : {width: 0, height: 0};
  done({ svgs: svgs.length, lines: lines, w: box.width, h: box.height, rows: d.querySelectorAll('table tbody tr').length });
}"#;
    let v = visit(&bin, &page, step);
    no_console(&v, "perf report");
    let r = &v.result;
    assert!(r["svgs"].as_u64().unwrap() >= 7, "{r}");
    assert!(r["lines"].as_u64().unwrap() >= 7, "{r}");
    assert!(
        r["w"].as_f64().unwrap() > 300.0 && r["h"].as_f64().unwrap() > 200.0,
        "{r}"
    );
    assert!(r["rows"].as_u64().unwrap() >= 2, "{r}");
    screenshot_not_blank(&bin, &page);
}

#[test]
fn eval_comparison_filters_links_and_keeps_model_text_inert() {
    let Some(bin) = chromium() else { return };
    let (_tmp, outputs) = runs();
    let page = outputs.join("cmp.html");
    bench(&[
        "compare",
        outputs.join("eval-a").to_str().unwrap(),
        outputs.join("eval-b").to_str().unwrap(),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let json = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            outputs.join("eval-a").to_str().unwrap(),
            outputs.join("eval-b").to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let cs: Value = serde_json::from_slice(&json.stdout).unwrap();
    let items = cs[0]["items"].as_array().unwrap();
    let rw = items
        .iter()
        .filter(|i| i["flips"].as_array().unwrap().iter().any(|f| f[1] == true))
        .count();
    let wr = items
        .iter()
        .filter(|i| i["flips"].as_array().unwrap().iter().any(|f| f[1] == false))
        .count();
    assert!(rw > 0 && wr > 0, "the fixtures flip both ways: {rw} {wr}");
    let step = r##"function(w, d, loads, done){
  var sec = d.querySelector('section.cmp');
  var visible = function(){ return Array.prototype.filter.call(sec.querySelectorAll('.flip'), function(e){ return !e.hidden; }); };
  var all = visible().length, count0 = sec.querySelector('.count').textContent;
  sec.querySelector('input[data-dir=rw]').click();
  var onlyWr = visible().map(function(e){ return e.dataset.dir; });
  // A link in the table to a hidden item clears the filters and shows it.
  var hiddenTarget = Array.prototype.filter.call(sec.querySelectorAll('.flip'), function(e){ return e.hidden; })[0];
  var link = sec.querySelector('a[href="#' + hiddenTarget.id + '"]');
  link.click();
  // hashchange fires after this task: look a moment later.
  setTimeout(function(){
    var shownAfterLink = !hiddenTarget.hidden, hash = w.location.hash;
    var sel = sec.querySelector('select.bench'), pick = sel.options[sel.options.length - 1].value;
    sel.value = pick; sel.dispatchEvent(new Event('change'));
    var benches = visible().map(function(e){ return e.dataset.bench; });
    done({ safety: (%HOSTILE%)(w, d), all: all, count0: count0, onlyWr: onlyWr, linked: !!link,
           shownAfterLink: shownAfterLink, hash: hash, target: hiddenTarget.id, benches: benches, pick: pick,
           forest: sec.querySelectorAll('table svg').length, links: sec.querySelectorAll('h2 a').length });
  }, 100);
}"##
    .replace("%HOSTILE%", HOSTILE_CHECK);
    let v = visit(&bin, &page, &step);
    no_console(&v, "eval comparison");
    let r = &v.result;
    assert_inert(r, "eval comparison");
    assert_eq!(r["all"], items.len(), "{r}");
    assert_eq!(
        r["count0"],
        format!("{0} of {0} flipped items", items.len()),
        "{r}"
    );
    let only_wr = r["onlyWr"].as_array().unwrap();
    assert_eq!(only_wr.len(), wr, "{r}");
    assert!(
        only_wr.iter().all(|d| d.as_str().unwrap().contains("wr")),
        "{r}"
    );
    assert_eq!(r["linked"], true, "{r}");
    assert_eq!(r["shownAfterLink"], true, "{r}");
    assert_eq!(
        r["hash"],
        format!("#{}", r["target"].as_str().unwrap()),
        "{r}"
    );
    let benches = r["benches"].as_array().unwrap();
    assert!(
        !benches.is_empty() && benches.iter().all(|b| *b == r["pick"]),
        "{r}"
    );
    assert!(r["forest"].as_u64().unwrap() > 0, "{r}");
    // Both run names link to their reports, relative to the page.
    assert_eq!(r["links"], 2, "{r}");
    screenshot_not_blank(&bin, &page);
}

#[test]
fn perf_comparison_overlays_both_runs() {
    let Some(bin) = chromium() else { return };
    let (_tmp, outputs) = runs();
    let page = outputs.join("perf-cmp.html");
    bench(&[
        "compare",
        outputs.join("perf-a").to_str().unwrap(),
        outputs.join("perf-b").to_str().unwrap(),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let step = r#"function(w, d, loads, done){
  var charts = Array.prototype.map.call(d.querySelectorAll('.charts svg'), function(s){
    return { title: s.querySelector('title').textContent, lines: s.querySelectorAll('polyline').length };
  });
  done({ charts: charts, rows: d.querySelectorAll('section.cmp tbody tr').length,
         up: d.querySelectorAll('td.up').length, down: d.querySelectorAll('td.down').length });
}"#;
    let v = visit(&bin, &page, step);
    no_console(&v, "perf comparison");
    let r = &v.result;
    let charts = r["charts"].as_array().unwrap();
    let get = |t: &str| {
        charts
            .iter()
            .find(|c| c["title"] == t)
            .unwrap_or_else(|| panic!("no chart {t}: {r}"))["lines"]
            .as_u64()
            .unwrap()
    };
    // One line per run; p50 and p99 per run on the percentile charts.
    assert_eq!(get("Output throughput"), 2, "{r}");
    assert_eq!(get("TTFT"), 4, "{r}");
    assert_eq!(get("TPOT"), 4, "{r}");
    assert!(
        charts
            .iter()
            .any(|c| c["title"].as_str().unwrap().starts_with("TTFT CDF") && c["lines"] == 2),
        "{r}"
    );
    assert!(r["rows"].as_u64().unwrap() >= 12, "{r}");
    assert!(r["down"].as_u64().unwrap() > 0, "B is slower: {r}");
    screenshot_not_blank(&bin, &page);
}

#[test]
fn index_picks_two_runs_and_opens_their_comparison() {
    let Some(bin) = chromium() else { return };
    let (_tmp, outputs) = runs();
    bench(&["report", "--index", outputs.to_str().unwrap()]);
    let step = r#"function(w, d, loads, done){
  if(loads === 1){
    var rows = Array.prototype.slice.call(d.querySelectorAll('tbody tr'));
    var row = function(name){ return rows.filter(function(r){ return r.lastElementChild.textContent === name; })[0]; };
    var go = d.getElementById('go');
    var before = go.disabled;
    // Runs of different kinds have no comparison.
    row('eval-a').querySelector('input[name=a]').click();
    row('perf-b').querySelector('input[name=b]').click();
    var mixed = go.disabled, msg = d.getElementById('pick-msg').textContent;
    row('eval-b').querySelector('input[name=b]').click();
    w.__state = { before: before, mixed: mixed, msg: msg, enabled: !go.disabled, runs: rows.length };
    w.parent.__state = w.__state;
    go.click();
  } else {
    var s = window.__state;
    done({ state: s, title: d.title, path: w.location.pathname, heading: d.querySelector('h2') ? d.querySelector('h2').textContent : '',
           flips: d.querySelectorAll('.flip').length });
  }
}"#;
    let v = visit(&bin, &outputs.join("index.html"), step);
    no_console(&v, "index");
    let r = &v.result;
    let s = &r["state"];
    assert_eq!(s["runs"], 4, "{r}");
    assert_eq!(s["before"], true, "{r}");
    assert_eq!(s["mixed"], true, "{r}");
    assert!(
        s["msg"].as_str().unwrap().contains("different kinds"),
        "{r}"
    );
    assert_eq!(s["enabled"], true, "{r}");
    assert_eq!(r["title"], "bench compare", "{r}");
    assert!(r["path"].as_str().unwrap().contains("/compare/"), "{r}");
    let h = r["heading"].as_str().unwrap();
    assert!(h.contains("eval-a") && h.contains("eval-b"), "{r}");
    assert!(r["flips"].as_u64().unwrap() > 0, "{r}");
    screenshot_not_blank(&bin, &outputs.join("index.html"));
}
