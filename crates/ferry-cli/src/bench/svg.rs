//! A latency-over-time plot as hand-written SVG: one panel per benchmark row, time after the
//! warm-up across, latency (log scale) up, with p50, p99 and max per interval.

use std::fmt::Write as _;

/// One row's series.
pub(crate) struct Panel {
    pub(crate) title: String,
    /// The width of a point in seconds.
    pub(crate) bucket_secs: f64,
    /// p50, p99 and max in microseconds for each interval; `None` where nothing arrived.
    pub(crate) points: Vec<Option<[f64; 3]>>,
}

const WIDTH: f64 = 900.0;
const PANEL: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const GAP: f64 = 60.0;
const SERIES: [(&str, &str); 3] = [("p50", "#1f77b4"), ("p99", "#ff7f0e"), ("max", "#d62728")];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A latency in words: 850 µs, 12 ms, 1.5 s.
fn duration_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{} ms", us / 1e3)
    } else {
        format!("{us} µs")
    }
}

pub(crate) fn plot(title: &str, panels: &[Panel]) -> String {
    let height = TOP + panels.len().max(1) as f64 * (PANEL + GAP);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="22" font-size="15">{}</text>"#, escape(title));
    for (i, (name, color)) in SERIES.iter().enumerate() {
        let x = WIDTH - RIGHT - 200.0 + i as f64 * 65.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="36" x2="{}" y2="36" stroke="{color}" stroke-width="2"/><text x="{}" y="40">{name}</text>"#,
            x + 18.0,
            x + 22.0
        );
    }
    if panels.is_empty() {
        let _ = writeln!(s, r#"<text x="{LEFT}" y="{}">no latency samples</text>"#, TOP + 30.0);
    }
    for (n, p) in panels.iter().enumerate() {
        let top = TOP + n as f64 * (PANEL + GAP) + 20.0;
        panel(&mut s, p, top);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, p: &Panel, top: f64) {
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, top + PANEL - 30.0, top);
    let _ = writeln!(s, r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#, top - 6.0, escape(&p.title));
    let values = p.points.iter().flatten().flat_map(|v| v.iter().copied()).filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        let _ = writeln!(s, r#"<text x="{x0}" y="{}">no latency samples</text>"#, top + 30.0);
        return;
    }
    // Whole decades on a log scale.
    let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let y = |us: f64| y0 - (us.max(1e-3).log10() - dlo) / (dhi - dlo) * (y0 - y1);
    let span = p.points.len().max(1) as f64 * p.bucket_secs;
    let x = |t: f64| x0 + t / span * (x1 - x0);
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        x1 - x0,
        y0 - y1
    );
    let mut d = dlo;
    while d <= dhi {
        let v = 10f64.powf(d);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{yy:.1}" x2="{x1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 5.0,
            yy + 4.0,
            duration_label(v)
        );
        d += 1.0;
    }
    // About eight time ticks at round steps.
    let raw = span / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|st| *st >= raw).unwrap_or(mag * 10.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let xx = x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{y0}" x2="{xx:.1}" y2="{}" stroke="#888"/><text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y0 + 4.0,
            y0 + 17.0,
            format_secs(t)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds after the warm-up (by time of receipt)</text>"#,
        (x0 + x1) / 2.0,
        y0 + 30.0
    );
    for (k, (_, color)) in SERIES.iter().enumerate() {
        // A gap (an interval without receipts) breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, point) in p.points.iter().enumerate() {
            match point {
                Some(v) => {
                    let at = (i as f64 + 0.5) * p.bucket_secs;
                    if let Some(run) = runs.last_mut() {
                        run.push((x(at), y(v[k])));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let mut pts = String::new();
            for (px, py) in run {
                let _ = write!(pts, "{px:.1},{py:.1} ");
            }
            if run.len() == 1 {
                let (px, py) = run[0];
                let _ = writeln!(s, r#"<circle cx="{px:.1}" cy="{py:.1}" r="2" fill="{color}"/>"#);
            } else {
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                    pts.trim_end()
                );
            }
        }
    }
}

fn format_secs(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_one_svg_document_with_a_line_per_series() {
        let panel = Panel {
            title: "queue 64 B <fsync>".into(),
            bucket_secs: 0.1,
            points: vec![
                Some([100.0, 900.0, 2_000.0]),
                Some([120.0, 1_000.0, 5_000.0]),
                None,
                Some([90.0, 800.0, 900.0]),
            ],
        };
        let svg = plot("t & t", &[panel]);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("queue 64 B &lt;fsync&gt;") && svg.contains("t &amp; t"));
        // Two points, a gap, one point: a polyline and a dot for each of the three series.
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("1 ms") && svg.contains("100 µs"));
        assert!(plot("empty", &[]).contains("no latency samples"));
    }
}
