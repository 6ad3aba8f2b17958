//! One table model for every report: a [`Table`] is defined once (columns,
//! rows, emphasis, notes) and written as GitHub markdown, HTML or aligned
//! plain text by [`Table::render`].
//!
//! Owns the layout rules every format shares (alignment, which cells carry
//! a row's emphasis, escaping of cell text) so that a new table (say, one
//! row per MMLU subject) is one function building a `Table`, not three
//! hand-written renderers. It does not own the documents around the tables
//! (headings, settings, item browsers): those stay in each renderer.
//!
//! What differs between formats is said in the model, not in the writers'
//! callers: a column may have a `short` header for the terminal, may exist
//! in HTML only (a bar, a forest plot), and a cell may carry raw HTML, a CSS
//! class (colour) and a `mark` (the symbol formats without colour show).

use std::fmt::Write;

use super::Format;
use super::html::escape;
use super::markdown;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// Names and free text.
    #[default]
    Left,
    /// Numbers.
    Right,
}

/// One column: its header and how its cells are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// Header (markdown and HTML).
    pub header: String,
    /// Header in aligned text, where width is short (`None`: [`Self::header`]).
    pub short: Option<String>,
    /// Alignment.
    pub align: Align,
    /// In a [`Row::strong`] row, this column's cell carries the emphasis
    /// (bold in markdown; a `*` after the first such cell in text; HTML
    /// marks the whole row).
    pub emphasis: bool,
    /// Shown only in this format (a visual extra such as a bar).
    pub only: Option<Format>,
}

impl Column {
    /// A left-aligned column.
    pub fn left(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            ..Self::default()
        }
    }

    /// A right-aligned (numeric) column.
    pub fn right(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            align: Align::Right,
            ..Self::default()
        }
    }

    /// With a short header for aligned text.
    pub fn short(mut self, short: impl Into<String>) -> Self {
        self.short = Some(short.into());
        self
    }

    /// Carries its row's emphasis.
    pub fn emphasis(mut self) -> Self {
        self.emphasis = true;
        self
    }

    /// Shown only in `format`.
    pub fn only(mut self, format: Format) -> Self {
        self.only = Some(format);
        self
    }

    fn shown_in(&self, format: Format) -> bool {
        self.only.is_none_or(|f| f == format)
    }
}

/// One cell: text, escaped by each writer for its format, plus what only
/// some formats can show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell {
    /// The value as text.
    pub text: String,
    /// Raw HTML written instead of the escaped text (the caller escapes
    /// what it puts in).
    pub html: Option<String>,
    /// CSS class in HTML (replaces the alignment class).
    pub class: Option<String>,
    /// Suffix shown in formats without colour (markdown, text), e.g. ` ⬇`
    /// where HTML colours the cell through [`Self::class`].
    pub mark: Option<String>,
}

impl Cell {
    /// A cell with raw HTML for the HTML writer and `text` elsewhere.
    pub fn html(text: impl Into<String>, html: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            html: Some(html.into()),
            ..Self::default()
        }
    }

    /// With a CSS class in HTML.
    pub fn class(mut self, class: impl Into<String>) -> Self {
        self.class = Some(class.into());
        self
    }

    /// With a suffix for formats without colour.
    pub fn mark(mut self, mark: impl Into<String>) -> Self {
        self.mark = Some(mark.into());
        self
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Cells, one per column (HTML-only columns included).
    pub cells: Vec<Cell>,
    /// Emphasised (e.g. the primary extractor's row).
    pub strong: bool,
}

/// A table defined once, written in any [`Format`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Title shown above the table (`None`: none).
    pub caption: Option<String>,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows.
    pub rows: Vec<Row>,
    /// Footnotes shown under the table.
    pub notes: Vec<String>,
    /// Collapsed behind this summary (`<details>`) in markdown and HTML,
    /// for long tables.
    pub collapsed: Option<String>,
    /// In HTML, a click on a header sorts the rows by that column
    /// (`class=sortable`, handled by `assets/sort.js`).
    pub sortable: bool,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            ..Self::default()
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row {
            cells,
            strong: false,
        });
    }

    /// Add an emphasised row.
    pub fn strong_row(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row {
            cells,
            strong: true,
        });
    }

    /// Add a footnote.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Collapse behind `summary`.
    pub fn collapsed(mut self, summary: impl Into<String>) -> Self {
        self.collapsed = Some(summary.into());
        self
    }

    /// Sortable by column in HTML.
    pub fn sortable(mut self) -> Self {
        self.sortable = true;
        self
    }

    /// With a caption.
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Write the table in `format`. JSON has no table form; it is written
    /// as aligned text there (JSON renderers serialise the data instead).
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Html => self.html(),
            Format::Text | Format::Json => self.text(),
        }
    }

    /// The shown columns of `format` with their index.
    fn shown(&self, format: Format) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.shown_in(format))
    }

    /// GitHub-flavoured markdown: a pipe table, every cell escaped
    /// ([`markdown::text`]), emphasis in bold, notes as paragraphs.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if let Some(s) = &self.collapsed {
            let _ = writeln!(out, "<details><summary>{}</summary>\n", escape(s));
        }
        if let Some(c) = &self.caption {
            let _ = writeln!(out, "**{}**\n", markdown::text(c));
        }
        let cols: Vec<(usize, &Column)> = self.shown(Format::Markdown).collect();
        let head: Vec<String> = cols
            .iter()
            .map(|(_, c)| markdown::text(&c.header))
            .collect();
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let rule: Vec<&str> = cols
            .iter()
            .map(|(_, c)| match c.align {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = cols
                .iter()
                .map(|&(i, c)| {
                    let cell = row.cells.get(i).cloned().unwrap_or_default();
                    let v = markdown::text(&(cell.text + cell.mark.as_deref().unwrap_or("")));
                    if row.strong && c.emphasis {
                        format!("**{v}**")
                    } else {
                        v
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        for n in &self.notes {
            let _ = writeln!(out, "\n{}", markdown::text(n));
        }
        if self.collapsed.is_some() {
            let _ = writeln!(out, "\n</details>");
        }
        out
    }

    /// An HTML `<table>`: numbers in `class=n` cells, emphasised rows as
    /// `class=primary`, notes as `<p class=muted>`.
    pub fn html(&self) -> String {
        let mut out = String::new();
        if let Some(s) = &self.collapsed {
            let _ = write!(out, "<details><summary>{}</summary>", escape(s));
        }
        let cols: Vec<(usize, &Column)> = self.shown(Format::Html).collect();
        out.push_str(if self.sortable {
            "<table class=sortable>"
        } else {
            "<table>"
        });
        if let Some(c) = &self.caption {
            let _ = write!(out, "<caption>{}</caption>", escape(c));
        }
        out.push_str("<thead><tr>");
        for (_, c) in &cols {
            let _ = write!(out, "<th>{}</th>", escape(&c.header));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str(if row.strong {
                "<tr class=primary>"
            } else {
                "<tr>"
            });
            for &(i, c) in &cols {
                let cell = row.cells.get(i).cloned().unwrap_or_default();
                let class = cell.class.as_deref().or(match c.align {
                    Align::Right => Some("n"),
                    Align::Left => None,
                });
                match class {
                    Some(k) if is_token(k) => {
                        let _ = write!(out, "<td class={k}>");
                    }
                    Some(k) => {
                        let _ = write!(out, "<td class=\"{}\">", escape(k));
                    }
                    None => out.push_str("<td>"),
                }
                match &cell.html {
                    Some(h) => out.push_str(h),
                    None => out.push_str(&escape(&cell.text)),
                }
                out.push_str("</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        for n in &self.notes {
            let _ = write!(out, "<p class=muted>{}</p>", escape(n));
        }
        if self.collapsed.is_some() {
            out.push_str("</details>");
        }
        out
    }

    /// Aligned plain text for the terminal: the header underlined with
    /// dashes, columns two spaces apart, the first emphasis cell of a
    /// strong row followed by `*`, notes as lines.
    pub fn text(&self) -> String {
        let cols: Vec<(usize, &Column)> = self.shown(Format::Text).collect();
        let first_emphasis = cols.iter().position(|(_, c)| c.emphasis);
        let mut grid: Vec<Vec<String>> = vec![
            cols.iter()
                .map(|(_, c)| c.short.clone().unwrap_or_else(|| c.header.clone()))
                .collect(),
        ];
        for row in &self.rows {
            grid.push(
                cols.iter()
                    .enumerate()
                    .map(|(k, &(i, _))| {
                        let cell = row.cells.get(i).cloned().unwrap_or_default();
                        let star = row.strong && first_emphasis == Some(k);
                        format!(
                            "{}{}{}",
                            cell.text,
                            cell.mark.as_deref().unwrap_or(""),
                            if star { "*" } else { "" }
                        )
                    })
                    .collect(),
            );
        }
        let widths: Vec<usize> = (0..cols.len())
            .map(|c| grid.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        if let Some(c) = &self.caption {
            let _ = writeln!(out, "{c}");
        }
        for (n, row) in grid.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&cols)
                .zip(&widths)
                .map(|((v, (_, c)), &w)| match c.align {
                    Align::Left => format!("{v:<w$}"),
                    Align::Right => format!("{v:>w$}"),
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&rule.join("  "));
                out.push('\n');
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        out
    }
}

/// Whether `s` can be an unquoted HTML attribute value.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-category table as the next benchmarks need (MMLU categories):
    /// one definition, three formats.
    fn categories() -> Table {
        let mut t = Table::new(vec![
            Column::left("Category").emphasis(),
            Column::right("n"),
            Column::right("Accuracy (%)").short("acc").emphasis(),
            Column::left("").only(Format::Html),
        ])
        .note("Bold: the best category.");
        t.row(vec![
            "humanities".into(),
            "12".into(),
            "41.7".into(),
            Cell::html("", "<span class=bar></span>"),
        ]);
        t.strong_row(vec![
            "STEM <b>".into(),
            "8".into(),
            "87.5".into(),
            Cell::html("", "<span class=bar></span>"),
        ]);
        t
    }

    #[test]
    fn one_definition_renders_markdown_html_and_text() {
        let t = categories();
        assert_eq!(
            t.render(Format::Markdown),
            "| Category | n | Accuracy (%) |\n|---|---:|---:|\n\
             | humanities | 12 | 41.7 |\n| **STEM &lt;b&gt;** | 8 | **87.5** |\n\
             \nBold: the best category.\n"
        );
        assert_eq!(
            t.render(Format::Html),
            "<table><thead><tr><th>Category</th><th>n</th><th>Accuracy (%)</th><th></th></tr></thead><tbody>\
             <tr><td>humanities</td><td class=n>12</td><td class=n>41.7</td><td><span class=bar></span></td></tr>\
             <tr class=primary><td>STEM &lt;b&gt;</td><td class=n>8</td><td class=n>87.5</td><td><span class=bar></span></td></tr>\
             </tbody></table><p class=muted>Bold: the best category.</p>"
        );
        assert_eq!(
            t.render(Format::Text),
            "Category     n   acc\n\
             ----------  --  ----\n\
             humanities  12  41.7\n\
             STEM <b>*    8  87.5\n\
             Bold: the best category.\n"
        );
    }

    #[test]
    fn collapsed_tables_and_marks() {
        let mut t = Table::new(vec![Column::left("Level"), Column::right("Δ")])
            .collapsed("Every level")
            .caption("Levels");
        t.row(vec!["1".into(), Cell::from("+1.0").class("up").mark(" ⬆")]);
        let md = t.render(Format::Markdown);
        assert!(md.starts_with("<details><summary>Every level</summary>\n\n**Levels**\n\n"));
        assert!(
            md.contains("| 1 | +1.0 ⬆ |") && md.ends_with("\n</details>\n"),
            "{md}"
        );
        let html = t.render(Format::Html);
        assert!(html.contains("<caption>Levels</caption>"), "{html}");
        assert!(html.contains("<td class=up>+1.0</td>"), "{html}");
        assert!(html.starts_with("<details><summary>Every level</summary><table>"));
        assert!(t.render(Format::Text).contains("+1.0 ⬆"));
    }

    #[test]
    fn pipes_in_cells_do_not_split_markdown_rows() {
        let mut t = Table::new(vec![Column::left("a|b")]);
        t.row(vec!["x|y".into()]);
        assert_eq!(t.markdown(), "| a\\|b |\n|---|\n| x\\|y |\n");
        let mut q = Table::new(vec![Column::left("k")]);
        q.row(vec![Cell::from("v").class("a b\"")]);
        assert!(q.html().contains("<td class=\"a b&quot;\">v</td>"));
    }
}
