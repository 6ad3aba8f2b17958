//! `report.md`: GitHub-flavoured markdown that fits a PR comment — the
//! headline table, then settings, model and dataset revisions.

use std::fmt::Write;

use super::{Renderer, RunView, pct};
use crate::record::Outcome;

/// Writes `report.md`.
pub struct MarkdownRenderer;

/// Escape text for a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Renderer for MarkdownRenderer {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, view: &RunView) -> String {
        let d = &view.data;
        let m = &d.manifest;
        let s = &m.settings;
        let mut out = String::new();
        let _ = writeln!(out, "## bench eval: `{}`\n", cell(&s.model));
        let status = if m.status == "complete" {
            String::new()
        } else {
            format!(" — **{}**", m.status)
        };
        let _ = writeln!(
            out,
            "{} via {} API at `{}`{}; {} {}{}\n",
            m.created_at,
            s.api,
            cell(&s.api_base),
            if s.stream { " (streaming)" } else { "" },
            m.tool.name,
            m.tool.version,
            status
        );
        if !d.warnings.is_empty() {
            let _ = writeln!(out, "> [!WARNING]");
            for w in &d.warnings {
                let w = w
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('\n', " ");
                let _ = writeln!(out, "> {w}");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "| Benchmark | Subset | Mode | Extractor | n | Accuracy (%) | ± stderr | 95% CI (Wilson) | Correct | Wrong | No answer | Truncated | Failed |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
        );
        for r in &d.results {
            let o = |k: Outcome| r.outcomes.get(&k).copied().unwrap_or(0);
            let ex = if r.primary {
                format!("**{}**", cell(&r.extractor))
            } else {
                cell(&r.extractor)
            };
            let acc = if r.primary {
                format!("**{}**", pct(r.stats.accuracy))
            } else {
                pct(r.stats.accuracy)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} |",
                cell(&r.benchmark),
                cell(&r.subset),
                cell(&r.mode),
                ex,
                r.stats.n,
                acc,
                pct(r.stats.stderr),
                pct(r.stats.ci_low),
                pct(r.stats.ci_high),
                o(Outcome::Correct),
                o(Outcome::Wrong),
                o(Outcome::NoAnswer),
                o(Outcome::Truncated),
                o(Outcome::Failed)
            );
        }
        let failed: u64 = d
            .results
            .iter()
            .filter(|r| r.primary && r.subset != "all")
            .map(|r| r.outcomes.get(&Outcome::Failed).copied().unwrap_or(0))
            .sum();
        if failed > 0 {
            let _ = writeln!(
                out,
                "\n> [!WARNING]\n> {failed} item(s) failed after retries and count as not correct. Re-run the same command to retry only those."
            );
        }
        if !d.agreement.is_empty() {
            let _ = writeln!(
                out,
                "\n**How much the grading moves the score** (answered items; each pair of extractors):\n"
            );
            let _ = writeln!(
                out,
                "| Benchmark | Extractor A | Extractor B | n | Both correct | Only A | Only B | Neither | Extracted answers differ |"
            );
            let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|");
            for a in &d.agreement {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(&a.benchmark),
                    cell(&a.a),
                    cell(&a.b),
                    a.n,
                    a.both_correct,
                    a.only_a,
                    a.only_b,
                    a.neither,
                    a.extracted_differ
                );
            }
        }
        if let Some(src) = &m.rescored_from {
            let modes: Vec<String> = src.modes.iter().map(|(b, m)| format!("{b}: {m}")).collect();
            let _ = writeln!(
                out,
                "\n> [!NOTE]\n> Re-graded without model calls from the responses in `{}` (generated with {}).",
                cell(&src.dir),
                modes.join(", ")
            );
        }
        let _ = writeln!(out, "\n<details><summary>Settings</summary>\n");
        let _ = writeln!(out, "| Setting | Value |\n|---|---|");
        let _ = writeln!(out, "| Model | `{}` |", cell(&s.model));
        let _ = writeln!(
            out,
            "| Served models | {} |",
            cell(&m.served_models.join(", "))
        );
        let _ = writeln!(out, "| API | {} (`{}`) |", s.api, cell(&s.api_base));
        let _ = writeln!(out, "| Concurrency | {} |", m.concurrency);
        let _ = writeln!(out, "| Limit | {} |", m.limit.as_deref().unwrap_or("none"));
        let generation = serde_json::to_string(&s.generation).unwrap_or_default();
        let _ = writeln!(out, "| Generation config | `{}` |", cell(&generation));
        let _ = writeln!(out, "| Duration | {:.1} s |", m.duration_s);
        if d.usage.items_with_usage > 0 {
            let _ = writeln!(
                out,
                "| Tokens | {} prompt + {} completion over {} items |",
                d.usage.prompt_tokens, d.usage.completion_tokens, d.usage.items_with_usage
            );
        }
        if let Some(l) = d.usage.mean_latency_ms {
            let _ = writeln!(out, "| Mean latency | {l:.0} ms |");
        }
        let _ = writeln!(
            out,
            "| Tool | {} {} {} |",
            m.tool.name,
            m.tool.version,
            m.tool.git_sha.as_deref().unwrap_or("")
        );
        for b in &s.benchmarks {
            let _ = writeln!(
                out,
                "| {} | mode `{}` ({}), {}-shot, subsets {}, template `{}` (sha256 {}), extractors {} |",
                cell(&b.benchmark),
                b.mode,
                cell(&b.provenance),
                b.few_shot,
                b.subsets.join(", "),
                b.template,
                &b.template_sha256.get(..12).unwrap_or(""),
                b.extractors.join(", ")
            );
        }
        for ds in &m.datasets {
            let files: Vec<String> = ds
                .files
                .iter()
                .map(|f| format!("`{}` ({})", f.path, &f.sha256.get(..12).unwrap_or("")))
                .collect();
            let _ = writeln!(
                out,
                "| Data: {} | [`{}`@`{}`](https://huggingface.co/datasets/{}/tree/{}) {} |",
                cell(&ds.benchmark),
                ds.repo_id,
                &ds.revision.get(..12).unwrap_or(&ds.revision),
                ds.repo_id,
                ds.revision,
                files.join(", ")
            );
        }
        let _ = writeln!(out, "\n</details>");
        out
    }
}
