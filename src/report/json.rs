//! `report.json`: the [`ReportData`](crate::record::ReportData) as pretty
//! JSON, versioned by `schema_version` and described by
//! `schema/report.schema.json` (a test validates output against it).

use super::{Renderer, RunView};

/// Writes `report.json`.
pub struct JsonRenderer;

impl Renderer for JsonRenderer {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, view: &RunView) -> String {
        let mut s = serde_json::to_string_pretty(&view.data)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }
}
