//! The self-contained HTML report of a simulation: the verdicts, inline SVG charts of the load on
//! the dependency, latency, the breakers' states and the goodput over time, every policy side by
//! side in its own colour, and the per-phase table. No script, no font, no external resource.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use staunch::breaker::State;

use super::duration::format_duration;
use super::report::{Point, PolicyReport, Report, share_text};
use crate::chart::{Band, Frame, LEFT, STYLE, esc, nice_ceiling, state_colour};

/// The colours of the policies, in order (a colour-blind-safe palette).
const COLOURS: [&str; 4] = ["#1b63b5", "#d95f02", "#1b9e77", "#7570b3"];

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// The ids of the charts, in page order: what a reader (or a test) looks for.
pub const CHARTS: [&str; 4] = ["load", "latency", "breaker", "goodput"];

/// What the simulate report adds to the shared style: verdicts and notes.
const EXTRA_STYLE: &str = ".verdict{font-size:1.05em}.note{background:#fff6e0;padding:4px 8px}";

impl Report {
    /// Writes a self-contained HTML report: the verdicts and notes, charts over time of the load
    /// on the dependency, latency (p50 and p99 by arrival), the breaker's state and the goodput,
    /// each with every policy in its own colour, then the per-phase table.
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_html(&self, out: &mut impl Write) -> io::Result<()> {
        let mut page = String::new();
        let _ = write!(
            page,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>staunch-lab simulate: {}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>\n\
             <h1>staunch-lab simulate: {}</h1>\n",
            esc(&self.scenario),
            esc(&self.scenario)
        );
        for (i, p) in self.policies.iter().enumerate() {
            let _ = writeln!(
                page,
                "<p class=\"verdict\"><span class=\"key\" style=\"background:{}\"></span>{}</p>",
                colour(i),
                esc(&p.verdict())
            );
        }
        for note in self.notes() {
            let _ = writeln!(page, "<p class=\"note\">{}</p>", esc(&note));
        }
        if let Some(description) = &self.description {
            let _ = writeln!(page, "<p>{}</p>", esc(description.trim()));
        }
        let _ = writeln!(
            page,
            "<p>{} requests over {} at {}/s, seed {}, in virtual time: staunch's real pipeline \
             on a paused clock, every policy on the same arrivals and the same dependency.</p><ul>",
            self.requests,
            format_duration(self.load.duration),
            self.load.rate,
            self.seed
        );
        for (i, p) in self.policies.iter().enumerate() {
            let settings = if p.settings.is_empty() {
                "nothing: one call, no timeout, no fallback".to_owned()
            } else {
                p.settings.join("; ")
            };
            let _ = write!(
                page,
                "<li><span class=\"key\" style=\"background:{}\"></span><b>{}</b>: <code>{}</code></li>",
                colour(i),
                esc(&p.name),
                esc(&settings)
            );
        }
        page.push_str("</ul>\n");
        if let Some(clients) = self
            .policies
            .iter()
            .find_map(|p| p.fleet.as_ref())
            .map(|f| f.clients)
        {
            let _ = write!(
                page,
                "<p>A fleet of {clients} clients, each with its own breakers, budgets and limits: \
                 the charts show the fleet's total.</p><ul>"
            );
            for p in &self.policies {
                if let Some(fleet) = &p.fleet {
                    let _ = write!(
                        page,
                        "<li><b>{}</b>: {}</li>",
                        esc(&p.name),
                        esc(&fleet.describe())
                    );
                }
            }
            page.push_str("</ul>\n");
        }
        let bands: Vec<Band<'_>> = self
            .segments
            .iter()
            .filter(|s| s.is_phase || self.segments.len() > 1)
            .map(|s| Band {
                name: &s.name,
                start: s.start.as_secs_f64(),
                end: s.end.as_secs_f64(),
            })
            .collect();
        self.series_chart(
            &mut page,
            &bands,
            "load",
            "Load on the dependency: calls it received per second",
            |p| Some(p.calls_per_second),
            |v| format!("{v:.0}/s"),
        );
        self.latency_chart(&mut page, &bands);
        self.breaker_chart(&mut page, &bands);
        self.series_chart(
            &mut page,
            &bands,
            "goodput",
            "Goodput: requests the dependency answered per second (grey: requests arriving)",
            |p| Some(p.goodput_per_second),
            |v| format!("{v:.0}/s"),
        );
        self.html_table(&mut page);
        page.push_str("</body></html>\n");
        out.write_all(page.as_bytes())
    }

    fn frame(&self, height: f64, y_max: f64) -> Frame {
        Frame {
            height,
            top: 8.0,
            bottom: 24.0,
            end: self.load.duration.as_secs_f64(),
            y_max,
        }
    }

    /// A line per policy of `value` over time (and, for the goodput, the arrivals in grey).
    fn series_chart(
        &self,
        page: &mut String,
        bands: &[Band<'_>],
        id: &str,
        title: &str,
        value: impl Fn(&Point) -> Option<f64>,
        y_label: impl Fn(f64) -> String,
    ) {
        let goodput = id == "goodput";
        let max = self
            .policies
            .iter()
            .flat_map(|p| p.timeline.iter())
            .filter_map(|point| {
                let v = value(point)?;
                Some(if goodput {
                    v.max(point.arrivals_per_second)
                } else {
                    v
                })
            })
            .fold(1.0, f64::max);
        let frame = self.frame(200.0, nice_ceiling(max));
        let _ = write!(page, "<h2>{}</h2><div id=\"{id}\">", esc(title));
        frame.open(page, bands, title, y_label);
        if goodput && let Some(first) = self.policies.first() {
            let arrivals: Vec<Option<f64>> = first
                .timeline
                .iter()
                .map(|p| Some(p.arrivals_per_second))
                .collect();
            frame.steps(
                page,
                &arrivals,
                first.bucket.as_secs_f64(),
                "#999",
                1.0,
                Some("3 3"),
            );
        }
        // The first policy (the scenario's own) last, on top.
        for (i, p) in self.policies.iter().enumerate().rev() {
            let values: Vec<Option<f64>> = p.timeline.iter().map(&value).collect();
            frame.steps(page, &values, p.bucket.as_secs_f64(), colour(i), 1.5, None);
        }
        page.push_str("</svg></div>\n");
    }

    fn latency_chart(&self, page: &mut String, bands: &[Band<'_>]) {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let max = self
            .policies
            .iter()
            .flat_map(|p| p.timeline.iter())
            .filter_map(|point| ms(point.p99))
            .fold(10.0, f64::max);
        let frame = self.frame(280.0, nice_ceiling(max));
        let title = "Latency of the requests arriving: p99 (solid) and p50 (dashed)";
        let _ = write!(page, "<h2>{title}</h2><div id=\"latency\">");
        frame.open(page, bands, title, |v| format!("{v:.0} ms"));
        for (i, p) in self.policies.iter().enumerate().rev() {
            let bucket = p.bucket.as_secs_f64();
            let p50: Vec<Option<f64>> = p.timeline.iter().map(|x| ms(x.p50)).collect();
            let p99: Vec<Option<f64>> = p.timeline.iter().map(|x| ms(x.p99)).collect();
            frame.steps(page, &p50, bucket, colour(i), 1.0, Some("4 3"));
            frame.steps(page, &p99, bucket, colour(i), 1.5, None);
        }
        page.push_str("</svg></div>\n");
    }

    fn breaker_chart(&self, page: &mut String, bands: &[Band<'_>]) {
        const ROW: f64 = 22.0;
        // A strip per policy and dependency whose breakers changed (or one saying there is no
        // breaker); in a fleet, the strip of client 0 (the Fleet section says how the others
        // went along).
        let mut strips: Vec<(usize, String, Option<usize>)> = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            let named = !p.dependencies.is_empty();
            let with: Vec<usize> = (0..p.dependency_names.len())
                .filter(|&d| {
                    p.has_breaker && (!named || p.transitions.iter().any(|t| t.dependency == d))
                })
                .collect();
            if with.is_empty() {
                strips.push((i, p.name.clone(), None));
            }
            for d in with {
                let label = if named {
                    format!("{} {}", p.name, p.dependency_names[d])
                } else {
                    p.name.clone()
                };
                strips.push((i, label, Some(d)));
            }
        }
        let mut frame = self.frame(28.0 + ROW * strips.len() as f64, 1.0);
        frame.top = 4.0;
        page.push_str("<h2>The breaker's state</h2><p>");
        for state in [State::Closed, State::Open, State::HalfOpen] {
            let _ = write!(
                page,
                "<span class=\"key\" style=\"background:{}\"></span>{}",
                state_colour(state),
                state.as_str()
            );
        }
        if let Some(fleet) = self.policies.iter().find_map(|p| p.fleet.as_ref()) {
            let _ = write!(page, " &nbsp;(client 0 of the fleet's {})", fleet.clients);
        }
        page.push_str("</p><div id=\"breaker\">");
        frame.open(page, bands, "breaker state over time", |_| String::new());
        let end = self.load.duration;
        for (row, (i, label, dependency)) in strips.iter().enumerate() {
            let y = frame.top + 14.0 + ROW * row as f64;
            let _ = write!(
                page,
                r#"<text x="{x:.1}" y="{ty:.1}" class="axis" text-anchor="end" fill="{c}">{name}</text>"#,
                x = LEFT - 4.0,
                ty = y + 12.0,
                c = colour(*i),
                name = esc(label)
            );
            let Some(dependency) = dependency else {
                let _ = write!(
                    page,
                    r#"<text x="{x:.1}" y="{ty:.1}" class="axis">no breaker</text>"#,
                    x = LEFT + 4.0,
                    ty = y + 12.0
                );
                continue;
            };
            for (from, to, state) in intervals(&self.policies[*i], *dependency, end) {
                let (x0, x1) = (frame.x(from.as_secs_f64()), frame.x(to.as_secs_f64()));
                let _ = write!(
                    page,
                    r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.2}" height="16" fill="{c}"><title>{s} from {a} to {b}</title></rect>"#,
                    w = (x1 - x0).max(0.5),
                    c = state_colour(state),
                    s = state.as_str(),
                    a = format_duration(from),
                    b = format_duration(to),
                );
            }
        }
        page.push_str("</svg></div>\n");
    }

    fn html_table(&self, page: &mut String) {
        page.push_str(
            "<h2>Per phase</h2><table><tr><th class=\"l\">policy</th><th>requests</th>\
             <th>success</th><th>fallback</th><th>failed</th><th>p50</th><th>p99</th>\
             <th>p99.9</th><th>max</th><th>calls / request</th><th>hedges / request</th>\
             <th>peak calls in 1 s</th></tr>",
        );
        let rows = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    format!(
                        "{} ({}–{})",
                        s.name,
                        format_duration(s.start),
                        format_duration(s.end)
                    ),
                    Some(i),
                )
            })
            .chain((self.segments.len() > 1).then(|| ("whole run".to_owned(), None)));
        let d = |d: Option<Duration>| d.map_or_else(|| "–".to_owned(), format_duration);
        for (title, segment) in rows {
            let _ = write!(
                page,
                "<tr class=\"phase\"><td colspan=\"12\">{}</td></tr>",
                esc(&title)
            );
            for (k, p) in self.policies.iter().enumerate() {
                let s = segment.map_or(p.overall, |i| p.segments[i]);
                let _ = write!(
                    page,
                    "<tr><td class=\"l\" style=\"color:{}\">{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td></tr>",
                    colour(k),
                    esc(&p.name),
                    s.requests,
                    share_text(s.success, s.requests),
                    share_text(s.fallback, s.requests),
                    share_text(s.failed, s.requests),
                    d(s.p50),
                    d(s.p99),
                    d(s.p999),
                    d(s.max),
                    s.calls_per_request()
                        .map_or_else(|| "–".to_owned(), |x| format!("{x:.2}")),
                    s.hedges_per_request()
                        .map_or_else(|| "–".to_owned(), |x| format!("{x:.3}")),
                    s.peak_calls_per_second
                );
            }
        }
        page.push_str(
            "</table>\n<p>Success: answered by the dependency. Latency: arrival to \
                       answer, whatever the answer; quantiles by nearest rank, within 0.1%.</p>\n",
        );
    }
}

/// The states of client 0's breaker of `dependency` as (from, to, state) intervals over
/// `[0, end)`.
fn intervals(
    p: &PolicyReport,
    dependency: usize,
    end: Duration,
) -> Vec<(Duration, Duration, State)> {
    let mut out = Vec::new();
    let (mut since, mut state) = (Duration::ZERO, State::Closed);
    let own = p
        .transitions
        .iter()
        .filter(|t| t.dependency == dependency && t.client == 0);
    for t in own.take_while(|t| t.at < end) {
        if t.at > since {
            out.push((since, t.at, state));
        }
        (since, state) = (t.at, t.to);
    }
    if since < end {
        out.push((since, end, state));
    }
    out
}
