//! SVG charts, written by hand (a few lines of SVG need no plotting crate):
//! diff time against table size on log-log axes, and plugin/native ratios
//! as bars.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// One line of a log-log chart.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed line.
    pub dashed: bool,
    /// (x, y) points, both positive.
    pub points: Vec<(f64, f64)>,
}

/// One bar of a ratio chart.
pub struct Bar {
    /// Label left of the bar.
    pub label: String,
    /// The ratio.
    pub value: f64,
}

const W: f64 = 760.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        width / 2.0,
        escape(title)
    );
}

/// Decades covering `lo..=hi` (both positive).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    (lo.log10().floor() as i32, hi.log10().ceil() as i32)
}

fn decade_label(exp: i32, unit: &str) -> String {
    match unit {
        "µs" if exp >= 6 => format!("{} s", 10f64.powi(exp - 6)),
        "µs" if exp >= 3 => format!("{} ms", 10f64.powi(exp - 3)),
        "µs" if exp >= 0 => format!("{} µs", 10f64.powi(exp)),
        "µs" => format!("{} ns", 10f64.powi(exp + 3)),
        _ => crate::table::count(10f64.powi(exp) as usize),
    }
}

/// A log-log line chart of `series`; `y_unit` is `µs` for times (labels
/// in ns/µs/ms/s) or empty for plain counts.
pub fn log_log(
    title: &str,
    x_label: &str,
    y_label: &str,
    y_unit: &str,
    series: &[Series],
) -> String {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let fold = |f: fn(f64, f64) -> f64, init: f64, get: fn(&(f64, f64)) -> f64| {
        pts().map(get).filter(|v| *v > 0.0).fold(init, f)
    };
    let (x0, x1) = decades(
        fold(f64::min, f64::MAX, |p| p.0),
        fold(f64::max, 1.0, |p| p.0),
    );
    let (y0, y1) = decades(
        fold(f64::min, f64::MAX, |p| p.1),
        fold(f64::max, 1.0, |p| p.1),
    );
    let (x1, y1) = (x1.max(x0 + 1), y1.max(y0 + 1));
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x.log10() - f64::from(x0)) / f64::from(x1 - x0) * pw;
    let py = |y: f64| TOP + ph - (y.log10() - f64::from(y0)) / f64::from(y1 - y0) * ph;

    let mut out = String::new();
    header(&mut out, W, H, title);
    for e in x0..=x1 {
        let x = px(10f64.powi(e));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + ph
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 18.0,
            decade_label(e, "")
        );
    }
    for e in y0..=y1 {
        let y = py(10f64.powi(e));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            escape(&decade_label(e, y_unit))
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 16.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            s.color
        );
        for p in &path {
            if let Some((x, y)) = p.split_once(',') {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                    s.color
                );
            }
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#,
            lx + 24.0,
            s.color
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Horizontal bars of plugin/native ratios, with the 1.0 line and the
/// latency targets (1.05 and 1.10) marked.
pub fn ratio_bars(title: &str, bars: &[Bar]) -> String {
    let row = 22.0;
    let label_w = 290.0;
    let height = TOP + BOTTOM + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.value).fold(1.2f64, f64::max) * 1.1;
    let pw = W - label_w - 40.0;
    let px = |v: f64| label_w + v / max * pw;
    let mut out = String::new();
    header(&mut out, W, height, title);
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + row * i as f64;
        let color = if b.value <= 1.05 {
            "#4a90d9"
        } else {
            "#d9734a"
        };
        bar_row(
            &mut out,
            (label_w, y, row),
            &b.label,
            px(b.value),
            color,
            &format!("{:.2}×", b.value),
        );
    }
    let bottom = TOP + row * bars.len() as f64;
    // Labels of the three lines at staggered heights: they are only a few
    // pixels apart.
    for (v, dash, label, label_y) in [
        (1.0, "", "1.0", bottom + 14.0),
        (1.05, "4 3", "1.05", TOP - 16.0),
        (1.10, "2 3", "1.10", TOP - 4.0),
    ] {
        let x = px(v);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom:.1}" stroke="#222" stroke-dasharray="{dash}"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{label_y:.1}" text-anchor="middle" font-size="10">{label}</text>"#
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">plugin time / native time (lower is better; e2e targets 1.05 at p50, 1.10 at p99)</text>"#,
        label_w + pw / 2.0,
        bottom + 36.0
    );
    out.push_str("</svg>\n");
    out
}

/// One horizontal bar in a row of height `row` at `y`: its label right
/// aligned before `label_w`, the bar to `end`, `value` printed after it.
fn bar_row(
    out: &mut String,
    (label_w, y, row): (f64, f64, f64),
    label: &str,
    end: f64,
    color: &str,
    value: &str,
) {
    let text_y = y + row / 2.0 + 4.0;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{text_y:.1}" text-anchor="end">{}</text>"#,
        label_w - 8.0,
        escape(label)
    );
    let _ = writeln!(
        out,
        r#"<rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
        y + 3.0,
        (end - label_w).max(1.0),
        row - 6.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{text_y:.1}">{}</text>"#,
        end + 4.0,
        escape(value)
    );
}

/// Horizontal bars of times on a log scale (decade grid), value printed
/// beside each bar: for times that span orders of magnitude (a floor, our
/// host, the wasmCloud host).
pub fn time_bars(title: &str, bars: &[Bar]) -> String {
    let row = 26.0;
    let label_w = 300.0;
    let height = TOP + BOTTOM + row * bars.len() as f64;
    let values = bars.iter().map(|b| b.value).filter(|v| *v > 0.0);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(0.0f64, f64::max);
    let mut out = String::new();
    header(&mut out, W, height, title);
    if !(lo.is_finite() && hi > 0.0) {
        out.push_str("</svg>\n");
        return out;
    }
    // Seconds in, microseconds for the decade labels.
    let (d0, d1) = decades(lo * 1e6, hi * 1e6);
    let (d0, d1) = (d0, d1.max(d0 + 1));
    let pw = W - label_w - 90.0;
    let px = |v: f64| {
        let t = ((v * 1e6).log10() - f64::from(d0)) / f64::from(d1 - d0);
        label_w + t.clamp(0.0, 1.0) * pw
    };
    let bottom = TOP + row * bars.len() as f64;
    for exp in d0..=d1 {
        let x = px(10f64.powi(exp) / 1e6);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
            bottom + 14.0,
            decade_label(exp, "µs")
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + row * i as f64;
        bar_row(
            &mut out,
            (label_w, y, row),
            &b.label,
            px(b.value),
            "#4a90d9",
            &crate::table::time(b.value * 1e6),
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (log; lower is better)</text>"#,
        label_w + pw / 2.0,
        bottom + 36.0
    );
    out.push_str("</svg>\n");
    out
}

/// Writes `svg` to `dir/name`.
pub fn write(dir: &Path, name: &str, svg: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))
}
