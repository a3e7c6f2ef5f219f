//! Inline SVG charts for the self-contained HTML reports of `demo` and `simulate`: no script, no
//! font, no external reference, so that a report opens in any browser with no network.

use std::fmt::Write as _;

use staunch::breaker::State;

/// The width of every chart, in SVG units (it scales to the page).
pub(crate) const WIDTH: f64 = 960.0;
/// Room for the value axis on the left.
pub(crate) const LEFT: f64 = 64.0;
/// Margin on the right.
pub(crate) const RIGHT: f64 = 16.0;

/// The style sheet of a report: a readable column, compact tables, small axis labels, colour
/// keys.
pub(crate) const STYLE: &str = concat!(
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:1em auto;padding:0 1em;color:#222}",
    "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}",
    "table{border-collapse:collapse;font-size:0.85em}td,th{padding:2px 8px;text-align:right}td{white-space:nowrap}",
    "th{border-bottom:1px solid #999}td.l,th.l{text-align:left}tr.phase td{text-align:left;",
    "background:#eef;font-weight:600;padding-top:6px}",
    ".phase{font-size:11px;fill:#555}.axis{font-size:11px;fill:#555}",
    ".key{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 12px}",
);

/// The colour of a breaker state in a timeline.
pub(crate) fn state_colour(state: State) -> &'static str {
    match state {
        State::Closed => "#4caf50",
        State::HalfOpen => "#f2b01e",
        _ => "#d7301f",
    }
}

/// Escapes text for HTML and SVG.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" axis maximum at or above `x`: 1, 2 or 5 times a power of ten.
pub(crate) fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    // Each candidate divides into quarters with round labels.
    for step in [1.0, 1.2, 1.6, 2.0, 2.4, 3.2, 4.0, 6.0, 8.0, 10.0] {
        if step * power >= x {
            return step * power;
        }
    }
    10.0 * power
}

/// A step for time ticks at or above `x`: 1, 2 or 5 times a power of ten.
pub(crate) fn nice_step(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= x)
        .unwrap_or(10.0 * power)
}

/// A named stretch of the run, shaded behind the chart (a phase).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Band<'a> {
    /// Shown at its top left.
    pub(crate) name: &'a str,
    /// Start, in seconds since the start of the run.
    pub(crate) start: f64,
    /// End, in seconds.
    pub(crate) end: f64,
}

/// One chart's frame: maps run time and values to SVG coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) height: f64,
    pub(crate) top: f64,
    pub(crate) bottom: f64,
    /// The run time at the right edge, in seconds.
    pub(crate) end: f64,
    pub(crate) y_max: f64,
}

impl Frame {
    pub(crate) fn x(&self, secs: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (secs / self.end).clamp(0.0, 1.0)
    }

    pub(crate) fn y(&self, value: f64) -> f64 {
        let plot = self.height - self.top - self.bottom;
        self.top + plot * (1.0 - (value / self.y_max).clamp(0.0, 1.0))
    }

    /// The opening tag, phase bands with names, axes and ticks.
    pub(crate) fn open(
        &self,
        svg: &mut String,
        bands: &[Band<'_>],
        label: &str,
        y_label: impl Fn(f64) -> String,
    ) {
        let _ = write!(
            svg,
            r#"<svg viewBox="0 0 {WIDTH} {h}" width="100%" role="img" aria-label="{label}">"#,
            h = self.height,
            label = esc(label)
        );
        for (i, band) in bands.iter().enumerate() {
            let (x0, x1) = (self.x(band.start), self.x(band.end));
            let fill = if i % 2 == 0 { "#f4f4f4" } else { "#e9eef5" };
            let _ = write!(
                svg,
                r#"<rect x="{x0:.1}" y="{top}" width="{w:.1}" height="{ph:.1}" fill="{fill}"/><text x="{tx:.1}" y="{ty}" class="phase">{name}</text>"#,
                top = self.top,
                w = x1 - x0,
                ph = self.height - self.top - self.bottom,
                tx = x0 + 4.0,
                ty = self.top + 12.0,
                name = esc(band.name)
            );
        }
        for i in 0..=4 {
            let value = self.y_max * f64::from(i) / 4.0;
            let y = self.y(value);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ccc" stroke-width="0.5"/><text x="{tx}" y="{ty:.1}" class="axis" text-anchor="end">{v}</text>"##,
                x2 = WIDTH - RIGHT,
                tx = LEFT - 4.0,
                ty = y + 4.0,
                v = y_label(value)
            );
        }
        let step = nice_step(self.end / 10.0);
        let decimals = if step >= 1.0 { 0 } else { 1 };
        for k in 0.. {
            let t = step * f64::from(k);
            if t > self.end + 1e-9 {
                break;
            }
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="middle">{t:.decimals$} s</text>"#,
                x = self.x(t),
                y = self.height - self.bottom + 14.0,
            );
        }
    }

    /// A step line through `values`, one per bucket of `bucket` seconds from 0; `None` leaves a
    /// gap.
    pub(crate) fn steps(
        &self,
        svg: &mut String,
        values: &[Option<f64>],
        bucket: f64,
        colour: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let mut points = String::new();
        let mut flush = |points: &mut String| {
            if !points.is_empty() {
                let _ = write!(
                    svg,
                    r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="{width}"{}/>"#,
                    dash.map_or_else(String::new, |d| format!(r#" stroke-dasharray="{d}""#))
                );
                points.clear();
            }
        };
        for (i, value) in values.iter().enumerate() {
            match value {
                Some(v) => {
                    let (x0, x1) = (self.x(i as f64 * bucket), self.x((i as f64 + 1.0) * bucket));
                    let y = self.y(*v);
                    let _ = write!(points, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
                }
                None => flush(&mut points),
            }
        }
        flush(&mut points);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_axis_ceilings() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1900.0), 2000.0);
        assert_eq!(nice_ceiling(2001.0), 2400.0);
        assert_eq!(nice_ceiling(7.5), 8.0);
        assert_eq!(nice_ceiling(45.0), 60.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(4.4), 5.0);
        assert_eq!(nice_step(0.3), 0.5);
    }

    #[test]
    fn a_step_line_breaks_at_gaps() {
        let frame = Frame {
            height: 100.0,
            top: 0.0,
            bottom: 0.0,
            end: 4.0,
            y_max: 10.0,
        };
        let mut svg = String::new();
        frame.steps(
            &mut svg,
            &[Some(1.0), None, Some(5.0), Some(10.0)],
            1.0,
            "red",
            1.0,
            None,
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    }
}
