//! The self-contained HTML report: inline SVG charts and tables, no script, no external
//! resource, so that it opens in any browser with no network.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use staunch::breaker::State;

use super::Build;
use super::checkout::{DEADLINE, PRICING_TIMEOUT};
use super::dependency::Dependency;
use super::load::Outcome;
use super::report::{Report, state_name};
use crate::chart::{Band, Frame, LEFT, RIGHT, STYLE, WIDTH, esc, nice_ceiling, state_colour};

const NAIVE_COLOUR: &str = "#d95f02";
const STAUNCH_COLOUR: &str = "#1b63b5";

fn colour(build: Build) -> &'static str {
    match build {
        Build::Naive => NAIVE_COLOUR,
        Build::Staunch => STAUNCH_COLOUR,
    }
}

/// The demo's phases, as bands behind a chart.
fn bands(report: &Report) -> Vec<Band<'_>> {
    let schedule = report.schedule();
    schedule
        .phases()
        .iter()
        .enumerate()
        .map(|(i, phase)| {
            let start = schedule.phase_start(i).as_secs_f64();
            Band {
                name: &phase.name,
                start,
                end: start + phase.duration.as_secs_f64(),
            }
        })
        .collect()
}

impl Report {
    /// Writes a self-contained HTML report: the run, charts of latency over time for both
    /// builds, the breaker's state and the load on each dependency, and the per-phase table.
    /// No script, no font, no external reference: it opens in any browser with no network.
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_html(&self, out: &mut impl Write) -> io::Result<()> {
        let mut page = String::new();
        page.push_str(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>staunch-lab demo</title><style>",
        );
        page.push_str(STYLE);
        page.push_str("</style></head><body>\n");
        let _ = write!(
            page,
            "<h1>staunch-lab demo: what staunch does to an outage</h1>\n<p>{} checkout requests \
             per build at {} req/s over {:.1} s (seed {}), sent to both builds at the same \
             instants, all on 127.0.0.1. Wall time {:.1} s. Every number below was measured in \
             this run: latencies at the load generator, calls at the dependencies, breaker \
             states from the breaker's own callback. The dependencies' handlers are healthy and \
             instant: every fault is injected by staunch's own fault injection \
             (<code>staunch::chaos</code>), one policy per phase.</p>\n<ul>",
            self.requests(),
            self.rate(),
            self.schedule().total().as_secs_f64(),
            self.seed(),
            self.wall_time().as_secs_f64()
        );
        for build in Build::ALL {
            let _ = write!(
                page,
                "<li><span class=\"key\" style=\"background:{}\"></span><b>{}</b>: {}</li>",
                colour(build),
                build.as_str(),
                esc(&build.describe())
            );
        }
        page.push_str("</ul>\n");
        self.latency_chart(&mut page);
        self.breaker_chart(&mut page);
        for dependency in Dependency::ALL {
            self.load_chart(&mut page, dependency);
        }
        self.html_table(&mut page);
        page.push_str("</body></html>\n");
        out.write_all(page.as_bytes())
    }

    fn latency_chart(&self, page: &mut String) {
        let max = self
            .samples()
            .iter()
            .filter(|s| s.outcome.answered())
            .map(|s| s.latency.as_secs_f64() * 1000.0)
            .fold(0.0, f64::max);
        let frame = Frame {
            height: 320.0,
            top: 8.0,
            bottom: 24.0,
            end: self.end().as_secs_f64(),
            y_max: nice_ceiling(max.max(10.0)),
        };
        let _ = write!(
            page,
            "<h2>Latency of every request, by the time it was sent</h2><p>\
             <span class=\"key\" style=\"background:{NAIVE_COLOUR}\"></span>naive\
             <span class=\"key\" style=\"background:{STAUNCH_COLOUR}\"></span>staunch \
             &nbsp;(a hollow mark is an answer other than 200; a cross, no answer)</p>"
        );
        frame.open(page, &bands(self), "latency over time", |v| {
            format!("{v:.0} ms")
        });
        let caps = [
            (PRICING_TIMEOUT, "staunch: pricing cap"),
            (DEADLINE, "staunch: request deadline"),
        ];
        for (cap, label) in caps {
            let ms = cap.as_secs_f64() * 1000.0;
            if ms <= frame.y_max {
                let y = frame.y(ms);
                let _ = write!(
                    page,
                    r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="{STAUNCH_COLOUR}" stroke-dasharray="4 3" stroke-width="0.8"/><text x="{tx}" y="{ty:.1}" class="axis" text-anchor="end">{label} {ms:.0} ms</text>"##,
                    x2 = WIDTH - RIGHT,
                    tx = WIDTH - RIGHT - 4.0,
                    ty = y - 3.0,
                );
            }
        }
        for sample in self.samples() {
            let x = frame.x(sample.sent_at.as_secs_f64());
            let colour = colour(sample.build);
            match sample.outcome {
                Outcome::Shed => {}
                Outcome::NoAnswer => {
                    let y = frame.y(frame.y_max);
                    let _ = write!(
                        page,
                        r#"<path d="M{a:.1} {b:.1}l6 6m0 -6l-6 6" stroke="{colour}"/>"#,
                        a = x - 3.0,
                        b = y - 3.0
                    );
                }
                outcome => {
                    let y = frame.y(sample.latency.as_secs_f64() * 1000.0);
                    let fill = if outcome.succeeded() { colour } else { "none" };
                    let _ = write!(
                        page,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{fill}" stroke="{colour}" stroke-width="0.6" fill-opacity="0.6"/>"#
                    );
                }
            }
        }
        page.push_str("</svg>\n");
    }

    fn breaker_chart(&self, page: &mut String) {
        let frame = Frame {
            height: 64.0,
            top: 4.0,
            bottom: 24.0,
            end: self.end().as_secs_f64(),
            y_max: 1.0,
        };
        page.push_str("<h2>The staunch build's pricing breaker</h2><p>");
        for state in [State::Closed, State::Open, State::HalfOpen] {
            let _ = write!(
                page,
                "<span class=\"key\" style=\"background:{}\"></span>{}",
                state_colour(state),
                state_name(state)
            );
        }
        page.push_str(" &nbsp;(the naive build has no breaker)</p>");
        frame.open(page, &bands(self), "breaker state over time", |_| {
            String::new()
        });
        for (from, to, state) in self.breaker_intervals() {
            let (x0, x1) = (frame.x(from.as_secs_f64()), frame.x(to.as_secs_f64()));
            let _ = write!(
                page,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.2}" height="20" fill="{c}"><title>{s} from {a:.2} s to {b:.2} s</title></rect>"#,
                y = frame.top + 16.0,
                w = (x1 - x0).max(0.5),
                c = state_colour(state),
                s = state_name(state),
                a = from.as_secs_f64(),
                b = to.as_secs_f64(),
            );
        }
        page.push_str("</svg>\n");
    }

    fn load_chart(&self, page: &mut String, dependency: Dependency) {
        let end = self.end().as_secs_f64();
        let bucket = (end / 70.0).max(0.25);
        let buckets = (end / bucket).ceil().max(1.0) as usize;
        let mut rates = [vec![0.0; buckets], vec![0.0; buckets]];
        for call in self.calls(dependency) {
            let i = ((call.at.as_secs_f64() / bucket) as usize).min(buckets - 1);
            rates[call.build.index()][i] += 1.0 / bucket;
        }
        let max = rates.iter().flatten().copied().fold(1.0, f64::max);
        let frame = Frame {
            height: 200.0,
            top: 8.0,
            bottom: 24.0,
            end,
            y_max: nice_ceiling(max),
        };
        let _ = write!(
            page,
            "<h2>Load on {}: calls per second it received, by build</h2>",
            dependency.as_str()
        );
        frame.open(
            page,
            &bands(self),
            &format!("{} load", dependency.as_str()),
            |v| format!("{v:.0}/s"),
        );
        for build in Build::ALL {
            let mut points = String::new();
            for (i, rate) in rates[build.index()].iter().enumerate() {
                let (x0, x1) = (
                    frame.x(i as f64 * bucket),
                    frame.x((i as f64 + 1.0) * bucket),
                );
                let y = frame.y(*rate);
                let _ = write!(points, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
            }
            let _ = write!(
                page,
                r#"<polyline points="{points}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
                colour(build)
            );
        }
        page.push_str("</svg>\n");
    }

    fn html_table(&self, page: &mut String) {
        page.push_str(
            "<h2>Per phase</h2><table><tr><th class=\"l\">build</th><th>requests</th>\
             <th>success</th><th>fallback</th><th>p50</th><th>p99</th><th>max</th>\
             <th>pricing calls / request</th><th>inventory calls / request</th>\
             <th class=\"l\">breaker</th></tr>",
        );
        let schedule = self.schedule();
        let rows = schedule
            .phases()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let start = schedule.phase_start(i).as_secs_f64();
                (
                    format!(
                        "{}. {} ({:.1}–{:.1} s): pricing {}; inventory {}",
                        i + 1,
                        p.name,
                        start,
                        start + p.duration.as_secs_f64(),
                        p.pricing.describe(),
                        p.inventory.describe()
                    ),
                    Some(i),
                )
            })
            .chain([("whole run".to_owned(), None)]);
        let ms = |d: Option<Duration>| {
            d.map_or_else(|| "–".to_owned(), |d| format!("{} ms", d.as_millis()))
        };
        for (title, phase) in rows {
            let _ = write!(
                page,
                "<tr class=\"phase\"><td colspan=\"10\">{}</td></tr>",
                esc(&title)
            );
            for build in Build::ALL {
                let s = self.stats(build, phase);
                let breaker = match (s.breaker_open, s.breaker_trips) {
                    (Some(open), Some(trips)) if open > 0.0 || trips > 0 => {
                        format!("open {:.0}%, {trips} trip(s)", open * 100.0)
                    }
                    (Some(_), Some(_)) => "closed".to_owned(),
                    _ => "none".to_owned(),
                };
                let _ = write!(
                    page,
                    "<tr><td class=\"l\" style=\"color:{}\">{}</td><td>{}</td><td>{:.1}%</td>\
                     <td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td>\
                     <td class=\"l\">{}</td></tr>",
                    colour(build),
                    build.as_str(),
                    s.requests,
                    s.success_pct(),
                    s.fallback_pct(),
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.per_request(Dependency::Pricing),
                    s.per_request(Dependency::Inventory),
                    breaker
                );
            }
        }
        page.push_str(
            "</table>\n<h2>Breaker timeline (staunch, pricing)</h2><ol><li>0.0 s closed</li>",
        );
        for t in self.transitions() {
            let _ = write!(
                page,
                "<li>{:.2} s {} → {} ({})</li>",
                t.at.as_secs_f64(),
                state_name(t.from),
                state_name(t.to),
                t.reason.replace('_', " ")
            );
        }
        page.push_str("</ol>\n<h2>Responses</h2><ul>");
        for build in Build::ALL {
            let r = self.responses(build);
            let _ = write!(
                page,
                "<li>{}: {} requests, {} sent, {} answered, {} handled exactly once by checkout{}</li>",
                build.as_str(),
                r.requests,
                r.sent,
                r.answered,
                r.handled_once,
                if r.exactly_once() {
                    ""
                } else {
                    " <b>(not exactly once)</b>"
                }
            );
        }
        page.push_str(
            "</ul>\n<p>Success: answered 200, fallback price included. p99: nearest rank.</p>\n",
        );
    }
}
