//! Inline SVG charts for self-contained HTML reports (no scripts, no
//! network): line charts of metrics against a sweep variable, and CDFs.
//!
//! Owns layout (axes, ticks, legend, colours); callers give numbers. Text
//! is escaped; values that are not finite are skipped.

use std::fmt::Write;

use super::html::escape;

/// One line on a chart.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (x, y) points; drawn in the order given.
    pub points: Vec<(f64, f64)>,
    /// Palette index; `None` takes the series' position. Overlaid runs
    /// share a colour per run and tell their lines apart by `dash`.
    pub colour: Option<usize>,
    /// Dashed line (`0` solid, `1` dashed, `2` dotted).
    pub dash: u8,
}

impl Series {
    /// A solid line in the colour of its position.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            ..Default::default()
        }
    }

    fn colour(&self, i: usize) -> &'static str {
        COLOURS[self.colour.unwrap_or(i) % COLOURS.len()]
    }

    fn dash_attr(&self) -> &'static str {
        match self.dash {
            0 => "",
            1 => " stroke-dasharray=\"6 3\"",
            _ => " stroke-dasharray=\"2 3\"",
        }
    }
}

/// Colours that stay apart for the colour-blind (Okabe–Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

/// A chart's frame.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// Use a log scale on x (for concurrency sweeps like 1, 10, 100).
    pub log_x: bool,
    /// Width in px.
    pub width: f64,
    /// Height in px.
    pub height: f64,
}

impl Default for Chart<'_> {
    fn default() -> Self {
        Self {
            title: "",
            x_label: "",
            y_label: "",
            log_x: false,
            width: 520.0,
            height: 300.0,
        }
    }
}

/// "Nice" tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut t = start;
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// Short number label.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Render a line chart as an `<svg>` element.
pub fn line_chart(chart: &Chart, series: &[Series]) -> String {
    let (ml, mr, mt, mb) = (64.0, 12.0, 28.0, 44.0);
    let (w, h) = (chart.width, chart.height);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let fx = |x: f64| if chart.log_x { x.max(1e-9).log10() } else { x };
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" font-family=\"sans-serif\" font-size=\"11\"><title>{}</title>",
        escape(chart.title)
    );
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"16\" font-size=\"13\" font-weight=\"600\">{}</text>",
        ml,
        escape(chart.title)
    );
    if pts.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\">no data</text></svg>",
            ml + 10.0,
            mt + ph / 2.0
        );
        return out;
    }
    let (mut x0, mut x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(fx(p.0)), b.max(fx(p.0)))
    });
    let y1 = pts.iter().fold(f64::MIN, |a, p| a.max(p.1)) * 1.05;
    let y0 = pts.iter().fold(f64::MAX, |a, p| a.min(p.1)).min(0.0);
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let y1 = if y1 <= y0 { y0 + 1.0 } else { y1 };
    let sx = |x: f64| ml + (fx(x) - x0) / (x1 - x0) * pw;
    let sy = |y: f64| mt + ph - (y - y0) / (y1 - y0) * ph;
    // Axes and grid.
    let _ = write!(
        out,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fff\" stroke=\"#d0d7de\"/>"
    );
    for t in ticks(y0, y1, 5) {
        let y = sy(t);
        let _ = write!(
            out,
            "<line x1=\"{ml}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            ml + pw,
            ml - 4.0,
            y + 4.0,
            fmt_num(t)
        );
    }
    // Few distinct x values (sweep levels): tick exactly those.
    let mut distinct: Vec<f64> = pts.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let xt: Vec<f64> = if chart.log_x || distinct.len() <= 12 {
        distinct
    } else {
        ticks(x0, x1, 6)
    };
    for t in xt {
        let x = sx(t);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            mt + ph,
            mt + ph + 4.0,
            mt + ph + 16.0,
            fmt_num(t)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        ml + pw / 2.0,
        h - 8.0,
        escape(chart.x_label),
        mt + ph / 2.0,
        escape(chart.y_label)
    );
    // Lines and points first, then the legend on a white box above them.
    for (i, s) in series.iter().enumerate() {
        let c = s.colour(i);
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if path.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{} points=\"{}\"/>",
            s.dash_attr(),
            path.join(" ")
        );
        if s.points.len() <= 40 {
            for p in &path {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{c}\"/>"
                );
            }
        }
    }
    // The legend grows to fit its longest label (run names can be long).
    let longest = series
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    let legend_w = (longest as f64 * 6.2 + 30.0).clamp(80.0, pw * 0.8);
    let legend_h = series.len() as f64 * 14.0 + 4.0;
    let _ = write!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{legend_w:.0}\" height=\"{legend_h}\" fill=\"#fff\" fill-opacity=\"0.9\" stroke=\"#eaeef2\"/>",
        ml + pw - legend_w - 8.0,
        mt + 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let c = s.colour(i);
        let ly = mt + 12.0 + i as f64 * 14.0;
        let lx = ml + pw - legend_w - 4.0;
        let _ = write!(
            out,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"2\"{}/><text x=\"{:.1}\" y=\"{}\">{}</text>",
            lx + 16.0,
            ly - 2.0,
            ly - 2.0,
            s.dash_attr(),
            lx + 20.0,
            ly + 1.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>");
    out
}

/// Points of an empirical CDF of `values` (sorted copy), at most `max_points`.
pub fn cdf_points(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return vec![];
    }
    let step = (n / max_points.max(1)).max(1);
    let mut out: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (v[i], (i + 1) as f64 / n as f64))
        .collect();
    if out.last().map(|p| p.1) != Some(1.0) {
        out.push((v[n - 1], 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn chart_is_svg_with_escaped_text() {
        let s = line_chart(
            &Chart {
                title: "<b>t</b>",
                x_label: "c",
                y_label: "ms",
                log_x: true,
                ..Default::default()
            },
            &[Series::new(
                "p99 <x>",
                vec![(1.0, 5.0), (10.0, 7.0), (100.0, f64::NAN)],
            )],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(!s.contains("<b>") && s.contains("&lt;b&gt;") && s.contains("p99 &lt;x&gt;"));
        assert!(s.contains("<polyline"));
        assert!(line_chart(&Chart::default(), &[]).contains("no data"));
    }

    #[test]
    fn cdf_ends_at_one() {
        let p = cdf_points(&[3.0, 1.0, 2.0], 100);
        assert_eq!(p, vec![(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]);
        assert!(cdf_points(&[], 10).is_empty());
    }
}
