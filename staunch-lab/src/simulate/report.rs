//! The numbers of a run, per phase, and the two ways to print them.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use staunch::StopReason;
use staunch::breaker::State;

use super::duration::format_duration;
use super::engine::Transition;
use super::scenario::{Arrivals, Dependency, Load, Policy};
use super::tally::{Recorder, Tally};

/// A window of the run that the report summarises: a phase of the dependency, or a stretch of
/// baseline between phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The phase's name, or `"baseline"`.
    pub name: String,
    /// Start, since the start of the run.
    pub start: Duration,
    /// End (exclusive); requests arriving in `[start, end)` belong here.
    pub end: Duration,
    /// Whether this is a declared phase whose behaviour differs from the baseline: an incident,
    /// which gets detection and recovery times.
    pub is_phase: bool,
}

/// The segments of a run: the phases within the load's duration, with the gaps between them
/// as `baseline`, covering `[0, duration)`.
pub fn segments(load: &Load, dependency: &Dependency) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    for phase in &dependency.phases {
        if phase.start >= load.duration {
            break;
        }
        if phase.start > t {
            out.push(Segment {
                name: "baseline".to_owned(),
                start: t,
                end: phase.start,
                is_phase: false,
            });
        }
        let end = phase.end.min(load.duration);
        out.push(Segment {
            name: phase.name.clone(),
            start: phase.start,
            end,
            is_phase: phase.behaviour != dependency.baseline,
        });
        t = end;
    }
    if t < load.duration {
        out.push(Segment {
            name: "baseline".to_owned(),
            start: t,
            end: load.duration,
            is_phase: false,
        });
    }
    out
}

/// The metrics of the requests that arrived in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Requests that arrived.
    pub requests: usize,
    /// Answered by the dependency.
    pub success: usize,
    /// Answered by the fallback.
    pub fallback: usize,
    /// Failed (no answer, an error).
    pub failed: usize,
    /// Still running when the run ended.
    pub unfinished: usize,
    /// Median time to an answer (success, fallback or error) of the finished requests.
    pub p50: Option<Duration>,
    /// 99th percentile of the same.
    pub p99: Option<Duration>,
    /// Slowest of the same.
    pub max: Option<Duration>,
    /// Dependency calls made by these requests, retries included.
    pub calls: u64,
    /// The most dependency calls (from any request) that started in one whole second of the
    /// segment.
    pub peak_calls_per_second: usize,
}

impl Stats {
    /// Dependency calls per request: the retry amplification factor (1.0 = no retries).
    pub fn calls_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.calls as f64 / self.requests as f64)
    }

    fn share(&self, n: usize) -> Option<f64> {
        (self.requests > 0).then(|| 100.0 * n as f64 / self.requests as f64)
    }

    /// The numbers of a tally; quantiles from its histogram (within 0.1%, nearest rank).
    pub fn from_tally(t: &Tally) -> Self {
        Self {
            requests: t.requests,
            success: t.success,
            fallback: t.fallback,
            failed: t.failed,
            unfinished: t.unfinished(),
            p50: t.latencies.quantile(0.50),
            p99: t.latencies.quantile(0.99),
            max: t.latencies.max(),
            calls: t.calls,
            peak_calls_per_second: t.rate.peak(),
        }
    }
}

/// How fast a policy noticed a phase and got over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incident {
    /// From the phase's start to the first time the breaker opened during it.
    pub detected: Option<Duration>,
    /// From the phase's end to the first request the dependency answered after it (`None` if
    /// none did, or the phase lasts to the end of the load).
    pub first_success: Option<Duration>,
    /// From the phase's end to the start of the first second whose arrivals the dependency
    /// answered at least [`RECOVERED_SHARE`] of: when service was back for the callers.
    pub recovered: Option<Duration>,
    /// The breaker's state when the phase ended (`None` without a breaker).
    pub state_at_end: Option<State>,
    /// From the phase's end to the breaker closing, if it was not closed then.
    pub closed: Option<Duration>,
}

/// The share of a second's arrivals that must succeed for [`Incident::recovered`].
pub const RECOVERED_SHARE: f64 = 0.9;

fn incident(
    recorder: &Recorder,
    transitions: &[Transition],
    has_breaker: bool,
    index: usize,
    segment: &Segment,
) -> Incident {
    let (start, end) = (segment.start, segment.end);
    let detected = transitions
        .iter()
        .find(|t| t.to == State::Open && start <= t.at && t.at < end)
        .map(|t| t.at - start);
    let state_at_end = has_breaker.then(|| {
        transitions
            .iter()
            .take_while(|t| t.at <= end)
            .last()
            .map_or(State::Closed, |t| t.to)
    });
    let closed = match state_at_end {
        Some(State::Closed) | None => None,
        Some(_) => transitions
            .iter()
            .find(|t| t.to == State::Closed && t.at >= end)
            .map(|t| t.at - end),
    };
    Incident {
        detected,
        first_success: recorder.first_success.get(index).copied().flatten(),
        recovered: recorder.recovered(index, RECOVERED_SHARE),
        state_at_end,
        closed,
    }
}

/// The observer that a run of `segments` under `load` reports to.
pub fn recorder(segments: &[Segment], load: &Load) -> Recorder {
    let incidents: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].is_phase)
        .collect();
    Recorder::new(
        segments.iter().map(|s| (s.start, s.end)).collect(),
        load.duration,
        &incidents,
    )
}

/// The report of one policy.
#[derive(Debug, Clone)]
pub struct PolicyReport {
    /// The policy's name.
    pub name: String,
    /// Its settings as written.
    pub settings: Vec<String>,
    /// Stats per segment, in the order of [`Report::segments`].
    pub segments: Vec<Stats>,
    /// Stats of the whole run.
    pub overall: Stats,
    /// Per segment, for declared phases only.
    pub incidents: Vec<Option<Incident>>,
    /// The breaker's timeline.
    pub transitions: Vec<Transition>,
    /// Whether the policy has a breaker.
    pub has_breaker: bool,
    /// Why calls stopped, for requests not answered by the dependency: (reason, answered by the
    /// fallback, failed), in a fixed order, zero rows left out.
    pub stop_reasons: Vec<(StopReason, usize, usize)>,
}

const REASONS: [StopReason; 9] = [
    StopReason::CircuitOpen,
    StopReason::Timeout,
    StopReason::Exhausted,
    StopReason::Budget,
    StopReason::Deadline,
    StopReason::RetryAfterTooLong,
    StopReason::Permanent,
    StopReason::Cancelled,
    StopReason::FallbackFailed,
];

impl PolicyReport {
    /// The report of a run of `policy` over `segments`, from what `recorder` counted and the
    /// breaker's `transitions`.
    pub fn new(
        policy: &Policy,
        recorder: &Recorder,
        transitions: Vec<Transition>,
        segments: &[Segment],
    ) -> Self {
        let has_breaker = policy.breaker.is_some();
        let stop_reasons = REASONS
            .iter()
            .filter_map(|&reason| {
                recorder
                    .stop_reasons
                    .iter()
                    .find(|(r, ..)| *r == reason)
                    .copied()
            })
            .filter(|&(_, a, b)| a + b > 0)
            .collect();
        Self {
            name: policy.name.clone(),
            settings: policy.settings.clone(),
            segments: recorder
                .windows_tally
                .iter()
                .map(Stats::from_tally)
                .collect(),
            overall: Stats::from_tally(&recorder.overall),
            incidents: segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.is_phase
                        .then(|| incident(recorder, &transitions, has_breaker, i, s))
                })
                .collect(),
            transitions,
            has_breaker,
            stop_reasons,
        }
    }
}

/// The report of a simulation: one or two policies on the same scenario and seed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: Option<String>,
    /// The seed of the run.
    pub seed: u64,
    /// The load.
    pub load: Load,
    /// Requests that arrived.
    pub requests: usize,
    /// The windows reported.
    pub segments: Vec<Segment>,
    /// One report per policy, in the order given.
    pub policies: Vec<PolicyReport>,
}

/// How many breaker changes the table lists per policy (JSON lists all).
pub const TIMELINE_LINES: usize = 12;

fn opt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), format_duration)
}

fn opt_share(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}%"))
}

fn window(start: Duration, end: Duration) -> String {
    format!("{}–{}", format_duration(start), format_duration(end))
}

impl Report {
    /// Writes the report as tables for people: metrics as rows, one column per policy.
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let arrivals = match self.load.arrivals {
            Arrivals::Uniform => "evenly spaced",
            Arrivals::Poisson => "Poisson arrivals",
        };
        writeln!(out, "Scenario: {}", self.scenario)?;
        if let Some(description) = &self.description {
            for line in description.trim().lines() {
                writeln!(out, "  {}", line.trim_end())?;
            }
        }
        writeln!(
            out,
            "{} requests over {} at {}/s ({arrivals}), seed {}, in virtual time.",
            self.requests,
            format_duration(self.load.duration),
            self.load.rate,
            self.seed
        )?;
        for p in &self.policies {
            writeln!(out)?;
            writeln!(out, "Policy {}:", p.name)?;
            if p.settings.is_empty() {
                writeln!(out, "  (nothing: one call, no timeout, no fallback)")?;
            }
            for setting in &p.settings {
                writeln!(out, "  {setting}")?;
            }
        }

        let width = self
            .policies
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(12);
        let label = 30;
        let row = |out: &mut dyn Write, name: &str, cells: &[String]| -> io::Result<()> {
            write!(out, "  {name:<label$}")?;
            for cell in cells {
                write!(out, " {cell:>width$}")?;
            }
            writeln!(out)
        };
        writeln!(out)?;
        write!(out, "{:<w$}", "", w = label + 2)?;
        for p in &self.policies {
            write!(out, " {:>width$}", p.name)?;
        }
        writeln!(out)?;
        let blocks = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let stats: Vec<Stats> = self.policies.iter().map(|p| p.segments[i]).collect();
                (format!("{} {}", s.name, window(s.start, s.end)), stats)
            })
            // With one segment, "all" would repeat it.
            .chain((self.segments.len() > 1).then(|| {
                (
                    format!("all {}", window(Duration::ZERO, self.load.duration)),
                    self.policies.iter().map(|p| p.overall).collect(),
                )
            }));
        for (title, stats) in blocks {
            let requests = stats.first().map_or(0, |s| s.requests);
            writeln!(out, "{title} ({requests} requests)")?;
            let cells = |f: &dyn Fn(&Stats) -> String| stats.iter().map(f).collect::<Vec<_>>();
            row(out, "success", &cells(&|s| opt_share(s.share(s.success))))?;
            row(out, "fallback", &cells(&|s| opt_share(s.share(s.fallback))))?;
            row(out, "failed", &cells(&|s| opt_share(s.share(s.failed))))?;
            if stats.iter().any(|s| s.unfinished > 0) {
                row(
                    out,
                    "unfinished",
                    &cells(&|s| opt_share(s.share(s.unfinished))),
                )?;
            }
            row(out, "latency p50", &cells(&|s| opt_duration(s.p50)))?;
            row(out, "latency p99", &cells(&|s| opt_duration(s.p99)))?;
            row(out, "latency max", &cells(&|s| opt_duration(s.max)))?;
            row(
                out,
                "calls per request",
                &cells(&|s| {
                    s.calls_per_request()
                        .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
                }),
            )?;
            row(
                out,
                "peak calls in 1 s",
                &cells(&|s| s.peak_calls_per_second.to_string()),
            )?;
        }

        let phases: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i].is_phase)
            .collect();
        if !phases.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "Detection and recovery (from the phase's start; after its end)"
            )?;
            for i in phases {
                let s = &self.segments[i];
                writeln!(out, "{} {}", s.name, window(s.start, s.end))?;
                let incidents: Vec<(Option<Incident>, bool)> = self
                    .policies
                    .iter()
                    .map(|p| (p.incidents[i], p.has_breaker))
                    .collect();
                let ends_in_load = s.end < self.load.duration;
                let cells = |f: &dyn Fn(Incident, bool) -> String| {
                    incidents
                        .iter()
                        .map(|&(incident, has_breaker)| {
                            incident.map_or_else(String::new, |x| f(x, has_breaker))
                        })
                        .collect::<Vec<_>>()
                };
                row(
                    out,
                    "breaker opened after",
                    &cells(&|x, has| match (has, x.detected) {
                        (false, _) => "no breaker".to_owned(),
                        (true, None) => "never".to_owned(),
                        (true, Some(d)) => format!("+{}", format_duration(d)),
                    }),
                )?;
                if ends_in_load {
                    row(
                        out,
                        "first success after the end",
                        &cells(&|x, _| {
                            x.first_success.map_or_else(
                                || "never".to_owned(),
                                |d| format!("+{}", format_duration(d)),
                            )
                        }),
                    )?;
                    row(
                        out,
                        "90% success again after",
                        &cells(&|x, _| {
                            x.recovered.map_or_else(
                                || "never".to_owned(),
                                |d| format!("+{}", format_duration(d)),
                            )
                        }),
                    )?;
                    row(
                        out,
                        "breaker closed after the end",
                        &cells(&|x, has| match (has, x.state_at_end, x.closed) {
                            (false, _, _) => "no breaker".to_owned(),
                            (true, Some(State::Closed), _) => "was closed".to_owned(),
                            (true, _, Some(d)) => format!("+{}", format_duration(d)),
                            (true, _, None) => "never".to_owned(),
                        }),
                    )?;
                }
            }
        }

        writeln!(out)?;
        writeln!(out, "Breaker state changes")?;
        for p in &self.policies {
            if !p.has_breaker {
                writeln!(out, "  {}: no breaker", p.name)?;
                continue;
            }
            let opened = p.transitions.iter().filter(|t| t.to == State::Open).count();
            writeln!(
                out,
                "  {}: {} changes, opened {} time{}",
                p.name,
                p.transitions.len(),
                opened,
                if opened == 1 { "" } else { "s" }
            )?;
            for t in p.transitions.iter().take(TIMELINE_LINES) {
                writeln!(
                    out,
                    "    {:>9}  {} -> {} ({})",
                    format_duration(t.at),
                    t.from.as_str(),
                    t.to.as_str(),
                    t.reason.as_str()
                )?;
            }
            if p.transitions.len() > TIMELINE_LINES {
                writeln!(
                    out,
                    "    ... {} more (--format json lists every change)",
                    p.transitions.len() - TIMELINE_LINES
                )?;
            }
        }

        writeln!(out)?;
        writeln!(
            out,
            "Why calls stopped (requests the dependency did not answer)"
        )?;
        for p in &self.policies {
            let mut line = String::new();
            for &(reason, fallback, failed) in &p.stop_reasons {
                let _ = write!(line, " {}", reason.as_str());
                match (fallback, failed) {
                    (0, n) => {
                        let _ = write!(line, " {n} failed;");
                    }
                    (n, 0) => {
                        let _ = write!(line, " {n} fallback;");
                    }
                    (a, b) => {
                        let _ = write!(line, " {a} fallback, {b} failed;");
                    }
                }
            }
            let line = line.trim_end_matches(';');
            let unfinished = p.overall.unfinished;
            let line = match (line.is_empty(), unfinished) {
                (true, 0) => " none".to_owned(),
                (_, 0) => line.to_owned(),
                _ => format!("{line} unfinished {unfinished}"),
            };
            writeln!(out, "  {}:{line}", p.name)?;
        }
        Ok(())
    }

    /// Writes the report as one JSON object (see the module docs for its shape).
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let ms = |d: Duration| Json::Num(d.as_secs_f64() * 1000.0);
        let opt_ms = |d: Option<Duration>| d.map_or(Json::Null, ms);
        let stats = |s: &Stats| {
            let share = |n| s.share(n).map_or(Json::Null, |x| Json::Num(x / 100.0));
            Json::Obj(vec![
                ("requests", Json::Int(s.requests as u64)),
                ("success", share(s.success)),
                ("fallback", share(s.fallback)),
                ("failed", share(s.failed)),
                ("unfinished", share(s.unfinished)),
                ("p50_ms", opt_ms(s.p50)),
                ("p99_ms", opt_ms(s.p99)),
                ("max_ms", opt_ms(s.max)),
                ("calls", Json::Int(s.calls)),
                (
                    "calls_per_request",
                    s.calls_per_request().map_or(Json::Null, Json::Num),
                ),
                (
                    "peak_calls_per_second",
                    Json::Int(s.peak_calls_per_second as u64),
                ),
            ])
        };
        let policies = self
            .policies
            .iter()
            .map(|p| {
                let phases = self
                    .segments
                    .iter()
                    .zip(&p.segments)
                    .zip(&p.incidents)
                    .map(|((seg, s), incident)| {
                        let mut fields = vec![
                            ("name", Json::Str(seg.name.clone())),
                            ("start_ms", ms(seg.start)),
                            ("end_ms", ms(seg.end)),
                            ("stats", stats(s)),
                        ];
                        if let Some(x) = incident {
                            fields.push((
                                "incident",
                                Json::Obj(vec![
                                    ("breaker_opened_after_ms", opt_ms(x.detected)),
                                    ("first_success_after_end_ms", opt_ms(x.first_success)),
                                    ("recovered_after_end_ms", opt_ms(x.recovered)),
                                    (
                                        "breaker_state_at_end",
                                        x.state_at_end.map_or(Json::Null, |s| {
                                            Json::Str(s.as_str().to_owned())
                                        }),
                                    ),
                                    ("breaker_closed_after_end_ms", opt_ms(x.closed)),
                                ]),
                            ));
                        }
                        Json::Obj(fields)
                    })
                    .collect();
                let transitions = p
                    .transitions
                    .iter()
                    .map(|t| {
                        Json::Obj(vec![
                            ("at_ms", ms(t.at)),
                            ("from", Json::Str(t.from.as_str().to_owned())),
                            ("to", Json::Str(t.to.as_str().to_owned())),
                            ("reason", Json::Str(t.reason.as_str().to_owned())),
                        ])
                    })
                    .collect();
                let reasons = p
                    .stop_reasons
                    .iter()
                    .map(|&(reason, fallback, failed)| {
                        Json::Obj(vec![
                            ("reason", Json::Str(reason.as_str().to_owned())),
                            ("fallback", Json::Int(fallback as u64)),
                            ("failed", Json::Int(failed as u64)),
                        ])
                    })
                    .collect();
                Json::Obj(vec![
                    ("name", Json::Str(p.name.clone())),
                    (
                        "settings",
                        Json::Arr(p.settings.iter().cloned().map(Json::Str).collect()),
                    ),
                    ("overall", stats(&p.overall)),
                    ("phases", Json::Arr(phases)),
                    (
                        "breaker",
                        if p.has_breaker {
                            Json::Arr(transitions)
                        } else {
                            Json::Null
                        },
                    ),
                    ("stop_reasons", Json::Arr(reasons)),
                ])
            })
            .collect();
        let report = Json::Obj(vec![
            ("scenario", Json::Str(self.scenario.clone())),
            ("seed", Json::Int(self.seed)),
            ("rate_per_second", Json::Num(self.load.rate)),
            ("duration_ms", ms(self.load.duration)),
            ("requests", Json::Int(self.requests as u64)),
            ("policies", Json::Arr(policies)),
        ]);
        let mut text = String::new();
        report.write(&mut text, 0);
        writeln!(out, "{text}")
    }
}

/// Just enough JSON to print a report: the keys are fixed ASCII, strings are escaped, and
/// numbers are finite (non-finite ones become `null`).
enum Json {
    Null,
    Int(u64),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn write(&self, out: &mut String, indent: usize) {
        let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
        match self {
            Self::Null => out.push_str("null"),
            Self::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Num(x) if x.is_finite() => {
                // Six decimals: a nanosecond for times in ms, and plenty for shares.
                let rounded = (x * 1e6).round() / 1e6;
                let _ = write!(out, "{rounded:?}");
            }
            Self::Num(_) => out.push_str("null"),
            Self::Str(s) => write_string(out, s),
            Self::Arr(items) if items.is_empty() => out.push_str("[]"),
            Self::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, indent + 2);
                    item.write(out, indent + 2);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Self::Obj(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    pad(out, indent + 2);
                    let _ = write!(out, "\"{key}\": ");
                    value.write(out, indent + 2);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
        let mut out = String::new();
        Json::Arr(vec![
            Json::Num(f64::NAN),
            Json::Num(1.2345671),
            Json::Int(3),
        ])
        .write(&mut out, 0);
        assert_eq!(out, "[\n  null,\n  1.234567,\n  3\n]");
    }
}
