//! `report.md`: GitHub-flavoured markdown that fits a PR comment — the
//! headline table, then settings, model and dataset revisions.

use std::fmt::Write;

use super::{Format, Renderer, RunView};
use crate::record::Outcome;

/// Writes `report.md`.
pub struct MarkdownRenderer;

// Escaping. Everything a report shows that bench did not write itself (model
// names, what the server lists, run records that may have been edited, file
// paths, messages) goes through one of these, so that GitHub renders it as
// the text it is: never as HTML (`<script>`), never as a link or image, and
// never splitting a table row.

/// `s` as markdown text, safe in a paragraph or a table cell: `&`, `<`, `>`
/// and `\` as HTML entities; `|`, `` ` ``, `[` and `]` backslash-escaped;
/// line breaks as spaces. A backslash never precedes an escaped `|`, which
/// GitHub's table parser would read ambiguously.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' => out.push_str("&#92;"),
            '|' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s` as an inline code span outside a table: fenced with more backticks
/// than it contains in a row, so it cannot close early. Inside a code span
/// GitHub shows `<`, `>` and `&` literally.
pub fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c })
        .collect();
    let mut run = 0;
    let mut longest = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // One space each side is stripped by the parser when both are there.
    let pad = s.is_empty() || s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']);
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// `s` as an inline code span in a table cell: as [`code`], with `|`
/// escaped (GitHub unescapes `\|` in cells before reading the span). A
/// backslash right before a `|` cannot be written unambiguously in a code
/// span, so such a value is shown as [`text`] instead.
pub fn code_cell(s: &str) -> String {
    if s.contains("\\|") {
        return text(s);
    }
    code(&s.replace('|', "\\|"))
}

/// `s` percent-encoded for a link target: only unreserved characters and
/// `/` are left as they are.
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Renderer for MarkdownRenderer {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, view: &RunView) -> String {
        let d = &view.data;
        let m = &d.manifest;
        let s = &m.settings;
        // A run written before URLs lost their userinfo in records.
        let api_base = crate::redact::strip_userinfo(&s.api_base);
        let mut out = String::new();
        let _ = writeln!(out, "## bench eval: {}\n", code(&s.model));
        let status = if m.status == "complete" {
            String::new()
        } else {
            format!(" — **{}**", text(&m.status))
        };
        let _ = writeln!(
            out,
            "{} via {} API at {}{}; {} {}{}\n",
            text(&m.created_at),
            text(&s.api),
            code(&api_base),
            if s.stream { " (streaming)" } else { "" },
            text(&m.tool.name),
            text(&m.tool.version),
            status
        );
        if !d.warnings.is_empty() {
            let _ = writeln!(out, "> [!WARNING]");
            for w in &d.warnings {
                let _ = writeln!(out, "> {}", text(w));
            }
            out.push('\n');
        }
        out.push_str(&super::results_table(d).render(Format::Markdown));
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
        if let Some(t) = super::repeats_table(d) {
            let _ = writeln!(
                out,
                "\n**Repeats**: each item was asked several times; n above counts (item, repeat) pairs.\n"
            );
            out.push_str(&t.render(Format::Markdown));
        }
        for g in super::group_tables(d) {
            out.push('\n');
            out.push_str(&g.render(Format::Markdown));
        }
        if let Some(t) = super::instructions_table(d, false) {
            out.push('\n');
            out.push_str(&t.render(Format::Markdown));
        }
        if !d.agreement.is_empty() {
            let _ = writeln!(
                out,
                "\n**How much the grading moves the score** (answered items; each pair of extractors):\n"
            );
            out.push_str(&super::agreement_table(d).render(Format::Markdown));
        }
        if let Some(src) = &m.rescored_from {
            let modes: Vec<String> = src.modes.iter().map(|(b, m)| format!("{b}: {m}")).collect();
            let _ = writeln!(
                out,
                "\n> [!NOTE]\n> Re-graded without model calls from the responses in {} (generated with {}).",
                code(&src.dir),
                text(&modes.join(", "))
            );
        }
        let _ = writeln!(out, "\n<details><summary>Settings</summary>\n");
        let _ = writeln!(out, "| Setting | Value |\n|---|---|");
        let _ = writeln!(out, "| Model | {} |", code_cell(&s.model));
        let _ = writeln!(
            out,
            "| Served models | {} |",
            text(&m.served_models.join(", "))
        );
        let _ = writeln!(out, "| API | {} ({}) |", text(&s.api), code_cell(&api_base));
        if let Some(e) = &m.engine {
            let _ = writeln!(out, "| Engine | {} |", text(&e.summary()));
        }
        let _ = writeln!(out, "| Concurrency | {} |", m.concurrency);
        let _ = writeln!(
            out,
            "| Limit | {} |",
            text(m.limit.as_deref().unwrap_or("none"))
        );
        let generation = serde_json::to_string(&s.generation).unwrap_or_default();
        let _ = writeln!(out, "| Generation config | {} |", code_cell(&generation));
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
            text(&m.tool.name),
            text(&m.tool.version),
            text(m.tool.git_sha.as_deref().unwrap_or(""))
        );
        for b in &s.benchmarks {
            let _ = writeln!(
                out,
                "| {} | mode {} ({}), {}-shot{}, subsets {}, template {} (sha256 {}), extractors {} |",
                text(&b.benchmark),
                code_cell(&b.mode),
                text(&b.provenance),
                b.few_shot,
                super::repeats_setting(b.repeats),
                text(&b.subsets.join(", ")),
                code_cell(&b.template),
                text(b.template_sha256.get(..12).unwrap_or("")),
                text(&b.extractors.join(", "))
            );
        }
        for ds in &m.datasets {
            let files: Vec<String> = ds
                .files
                .iter()
                .map(|f| {
                    format!(
                        "{} ({})",
                        code_cell(&f.path),
                        text(f.sha256.get(..12).unwrap_or(""))
                    )
                })
                .collect();
            // A branch is shown with the commit it resolved to, and the link
            // goes to that commit, so the line names the exact data.
            let resolved: Vec<String> = ds
                .resolved_branches()
                .iter()
                .map(|(rev, commit)| {
                    format!(
                        "{} = {}",
                        code_cell(rev),
                        code_cell(commit.get(..12).unwrap_or(commit))
                    )
                })
                .collect();
            let resolved = if resolved.is_empty() {
                String::new()
            } else {
                format!(" (resolved: {})", resolved.join(", "))
            };
            let _ = writeln!(
                out,
                "| Data: {} | [{}@{}](https://huggingface.co/datasets/{}/tree/{}){} {} |",
                text(&ds.benchmark),
                code_cell(&ds.repo_id),
                code_cell(ds.revision.get(..12).unwrap_or(&ds.revision)),
                url_part(&ds.repo_id),
                url_part(ds.commit()),
                resolved,
                files.join(", ")
            );
        }
        let _ = writeln!(out, "\n</details>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_model_name_is_not_html_in_text() {
        assert_eq!(
            text("<script>alert(1)</script> & co"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
        );
    }

    #[test]
    fn pipe_in_a_cell_does_not_split_the_row() {
        assert_eq!(text("a|b"), "a\\|b");
        // A backslash before the pipe becomes an entity, so the `\|` that
        // follows is unambiguous.
        assert_eq!(text("a\\|b"), "a&#92;\\|b");
        assert_eq!(text("x\ny"), "x y");
        assert_eq!(text("[img](http://x)"), "\\[img\\](http://x)");
    }

    #[test]
    fn backticks_cannot_close_a_code_span_early() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`<b>`"), "`` `<b>` ``");
        assert_eq!(code("a``b`"), "``` a``b` ```");
        assert_eq!(code_cell("a|b"), "`a\\|b`");
        assert_eq!(code_cell("a\\|b"), "a&#92;\\|b");
    }

    #[test]
    fn link_targets_are_percent_encoded() {
        assert_eq!(url_part("openai/gsm8k"), "openai/gsm8k");
        assert_eq!(url_part("a) <x>"), "a%29%20%3Cx%3E");
    }
}
