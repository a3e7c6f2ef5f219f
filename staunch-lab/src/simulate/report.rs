//! The numbers of a run, per phase, and the two ways to print them.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use staunch::StopReason;
use staunch::breaker::State;
use staunch::limit::Refusal;

use super::duration::format_duration;
use super::engine::{Scene, Transition};
use super::scenario::{Arrivals, Calls, Dependency, Load, Policy};
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
    /// Whether the dependency still answers most calls in this window (no hard outage, an
    /// error rate below one half), however slowly: a fallback here is a choice, not a necessity.
    pub answering: bool,
}

/// The segments of a run: the phases within the load's duration, with the gaps between them
/// as `baseline`, covering `[0, duration)`.
pub fn segments(load: &Load, dependency: &Dependency) -> Vec<Segment> {
    let answering = |b: &super::Behaviour| b.outage.is_none() && b.error_rate < 0.5;
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
                answering: answering(&dependency.baseline),
            });
        }
        let end = phase.end.min(load.duration);
        out.push(Segment {
            name: phase.name.clone(),
            start: phase.start,
            end,
            is_phase: phase.behaviour != dependency.baseline,
            answering: answering(&phase.behaviour),
        });
        t = end;
    }
    if t < load.duration {
        out.push(Segment {
            name: "baseline".to_owned(),
            start: t,
            end: load.duration,
            is_phase: false,
            answering: answering(&dependency.baseline),
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
    /// 99.9th percentile of the same: the tail a fan-out of a hundred calls meets.
    pub p999: Option<Duration>,
    /// Slowest of the same.
    pub max: Option<Duration>,
    /// Dependency calls made by these requests, retries included.
    pub calls: u64,
    /// Hedges sent by these requests: their calls after the first, under a hedging policy.
    pub hedges: u64,
    /// The most dependency calls (from any request) that started in one whole second of the
    /// segment.
    pub peak_calls_per_second: usize,
}

impl Stats {
    /// Dependency calls per request: the retry amplification factor (1.0 = no retries).
    pub fn calls_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.calls as f64 / self.requests as f64)
    }

    /// Hedges sent per request (0.02: 2% more calls for the tail).
    pub fn hedges_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.hedges as f64 / self.requests as f64)
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
            p999: t.latencies.quantile(0.999),
            max: t.latencies.max(),
            calls: t.calls,
            hedges: t.hedges,
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

/// The observer that a run of `segments` under `load`, calling `dependencies`, reports to.
pub fn recorder(segments: &[Segment], load: &Load, dependencies: usize) -> Recorder {
    let incidents: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].is_phase)
        .collect();
    Recorder::new(
        segments.iter().map(|s| (s.start, s.end)).collect(),
        load.duration,
        &incidents,
        dependencies,
    )
}

/// The segments of a run calling `calls`: those of the one dependency (see [`segments`]), or,
/// with several, a window wherever the set of phases in force changes, named after them
/// ("pricing slow", "pricing down + inventory flaky"), with the gaps as `baseline`.
pub fn segments_of(load: &Load, calls: &Calls) -> Vec<Segment> {
    if !calls.named {
        return segments(load, &calls.dependencies[0].1);
    }
    let answering = |b: &super::Behaviour| b.outage.is_none() && b.error_rate < 0.5;
    let mut cuts: Vec<Duration> = vec![Duration::ZERO, load.duration];
    for (_, dependency) in &calls.dependencies {
        for phase in &dependency.phases {
            cuts.extend(
                [phase.start, phase.end]
                    .into_iter()
                    .filter(|&t| t < load.duration),
            );
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Segment> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let active: Vec<(&str, &super::Phase, &Dependency)> = calls
            .dependencies
            .iter()
            .filter_map(|(name, d)| {
                d.phases
                    .iter()
                    .find(|p| p.start <= start && start < p.end)
                    .map(|p| (name.as_str(), p, d))
            })
            .collect();
        let name = if active.is_empty() {
            "baseline".to_owned()
        } else {
            active
                .iter()
                .map(|(dependency, phase, _)| format!("{dependency} {}", phase.name))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        match out.last_mut() {
            // The same phases on both sides of a cut (another dependency's phase that ended
            // outside this window): one segment.
            Some(last) if last.name == name && last.end == start => last.end = end,
            _ => out.push(Segment {
                name,
                start,
                end,
                is_phase: active.iter().any(|(_, p, d)| p.behaviour != d.baseline),
                answering: calls
                    .dependencies
                    .iter()
                    .all(|(_, d)| answering(d.at(start))),
            }),
        }
    }
    out
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
    /// With named dependencies, each one's numbers (its calls, by the window of their request's
    /// arrival); empty for a `[dependency]` scenario.
    pub dependencies: Vec<DependencyReport>,
    /// The names of the dependencies, by index (for the breakers' state changes).
    pub dependency_names: Vec<String>,
    /// With more than one client instance, how they behaved together.
    pub fleet: Option<Fleet>,
    /// The width of a bucket of [`timeline`](Self::timeline).
    pub bucket: Duration,
    /// The run over time, bucket by bucket from 0 to the end of the load, for charts.
    pub timeline: Vec<Point>,
}

/// The numbers of one dependency of a request: its calls, through its own policy.
///
/// `requests` counts the requests that called it (a request that failed at an earlier step of
/// a sequence does not); success, fallback and failed are the ends of those calls, the
/// latencies the calls' own, `calls` its attempts (`hedges` those sent as hedges).
#[derive(Debug, Clone)]
pub struct DependencyReport {
    /// The dependency's name.
    pub name: String,
    /// Per segment, as [`PolicyReport::segments`].
    pub segments: Vec<Stats>,
    /// Over the whole run.
    pub overall: Stats,
    /// Why its calls that it did not answer stopped, as [`PolicyReport::stop_reasons`]: a
    /// refusal by this dependency's limit or throttle is counted here, under its name.
    pub stop_reasons: Vec<(StopReason, usize, usize)>,
}

/// How a fleet of client instances behaved together.
///
/// Each instance has its own breakers, budgets and limits, as separate processes do; the
/// measures say how synchronised they were anyway:
///
/// - per dependency with a breaker, `peak_open` is the largest share of the instances whose
///   breaker was not closed (open or half-open) at the same instant, and `open_together` the
///   mean of that share over the time at least one was, weighted by time: 1.0 when the
///   instances' breakers open and close as one, `1 / clients` when they take turns;
/// - `retry_peak_to_mean` is the most retries (attempts after a call's first, from every
///   instance; a hedging policy's hedges are not retries and are not counted) in one 100 ms
///   bucket over their mean per bucket with any: near 1 when retries are spread evenly, higher
///   the more they arrive in waves (a herd).
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// The client instances.
    pub clients: usize,
    /// Per dependency with a breaker: (name, peak share open at once, mean share open while
    /// any was).
    pub breakers: Vec<(String, f64, Option<f64>)>,
    /// Retries from every instance.
    pub retries: u64,
    /// See the type's docs; `None` without a retry.
    pub retry_peak_to_mean: Option<f64>,
}

impl Fleet {
    /// One line: how together the breakers opened, and how the retries bunched up.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .breakers
            .iter()
            .map(|(name, peak, together)| {
                let together = together.map_or_else(
                    || "never open".to_owned(),
                    |x| format!("{:.1}% of them on average while any was", 100.0 * x),
                );
                format!(
                    "{name} breakers: at most {:.1}% of clients open at once, {together}",
                    100.0 * peak
                )
            })
            .collect();
        if parts.is_empty() {
            parts.push("no breaker".to_owned());
        }
        parts.push(match self.retry_peak_to_mean {
            Some(x) => format!(
                "{} retries, peak-to-mean per 100 ms {x:.1} (1 = spread evenly)",
                self.retries
            ),
            None => "no retry".to_owned(),
        });
        parts.join("; ")
    }
}

/// The share of `clients` breakers (of `dependency`) not closed over `[0, end)`: the peak, and
/// the time-weighted mean while at least one was not closed.
pub fn open_together(
    transitions: &[Transition],
    dependency: usize,
    clients: usize,
    end: Duration,
) -> (f64, Option<f64>) {
    let clients = clients.max(1);
    let mut open = vec![false; clients];
    let (mut count, mut peak) = (0_usize, 0_usize);
    let (mut since, mut weighted, mut time) = (Duration::ZERO, 0.0, 0.0);
    for t in transitions
        .iter()
        .filter(|t| t.dependency == dependency && t.client < clients && t.at < end)
    {
        if count > 0 {
            let span = (t.at - since).as_secs_f64();
            weighted += span * count as f64;
            time += span;
        }
        since = t.at;
        let now_open = t.to != State::Closed;
        if std::mem::replace(&mut open[t.client], now_open) != now_open {
            if now_open {
                count += 1;
            } else {
                count -= 1;
            }
        }
        peak = peak.max(count);
    }
    if count > 0 {
        let span = end.saturating_sub(since).as_secs_f64();
        weighted += span * count as f64;
        time += span;
    }
    let n = clients as f64;
    (peak as f64 / n, (time > 0.0).then(|| weighted / time / n))
}

/// One bucket of a policy's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Calls to the dependency per second: the load it saw.
    pub calls_per_second: f64,
    /// Requests that arrived per second: the offered load.
    pub arrivals_per_second: f64,
    /// Requests the dependency answered per second, by the time they ended: the goodput.
    pub goodput_per_second: f64,
    /// The median latency of the requests that arrived in the bucket (two significant digits).
    pub p50: Option<Duration>,
    /// Their 99th percentile.
    pub p99: Option<Duration>,
}

const REASONS: [StopReason; 15] = [
    StopReason::CircuitOpen,
    StopReason::Refused(Refusal::Throttled),
    StopReason::Refused(Refusal::RateLimited),
    StopReason::Refused(Refusal::LimitFull),
    StopReason::Refused(Refusal::QueueTimeout),
    StopReason::Refused(Refusal::Deadline),
    StopReason::Timeout,
    StopReason::Exhausted,
    StopReason::Budget,
    StopReason::Deadline,
    StopReason::MaxDuration,
    StopReason::RetryAfterTooLong,
    StopReason::Permanent,
    StopReason::Cancelled,
    StopReason::FallbackFailed,
];

/// The counts of `counted` in the order of [`REASONS`], then any reason it does not list (a
/// library's new one is shown, not lost), zero rows left out.
fn in_order(counted: &[(StopReason, usize, usize)]) -> Vec<(StopReason, usize, usize)> {
    let rank = |r: &StopReason| REASONS.iter().position(|x| x == r).unwrap_or(REASONS.len());
    let mut out: Vec<_> = counted
        .iter()
        .copied()
        .filter(|&(_, a, b)| a + b > 0)
        .collect();
    out.sort_by_key(|(r, ..)| rank(r));
    out
}

impl PolicyReport {
    /// The report of a run of `policy` over `segments`, from what `recorder` counted and the
    /// breaker's `transitions`.
    pub fn new(
        policy: &Policy,
        scene: Scene<'_>,
        recorder: &Recorder,
        transitions: Vec<Transition>,
        segments: &[Segment],
    ) -> Self {
        let calls = scene.calls;
        let fleet = (scene.clients > 1).then(|| {
            let per_dependency = super::engine::policies_of(calls, policy);
            Fleet {
                clients: scene.clients,
                breakers: calls
                    .dependencies
                    .iter()
                    .enumerate()
                    .filter(|(d, _)| per_dependency[*d].breaker.is_some())
                    .map(|(d, (name, _))| {
                        let (peak, together) =
                            open_together(&transitions, d, scene.clients, scene.load.duration);
                        (name.clone(), peak, together)
                    })
                    .collect(),
                retries: recorder.retries.total,
                retry_peak_to_mean: recorder.retries.peak_to_mean(),
            }
        });
        let has_breaker = super::engine::has_breaker(calls, policy);
        let dependencies = if calls.named {
            calls
                .dependencies
                .iter()
                .zip(&recorder.dependencies)
                .zip(&recorder.dependency_stops)
                .map(
                    |(((name, _), (windows, overall)), stops)| DependencyReport {
                        name: name.clone(),
                        segments: windows.iter().map(Stats::from_tally).collect(),
                        overall: Stats::from_tally(overall),
                        stop_reasons: in_order(stops),
                    },
                )
                .collect()
        } else {
            Vec::new()
        };
        let dependency_names = calls.names();
        let stop_reasons = in_order(&recorder.stop_reasons);
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
            dependencies,
            dependency_names,
            fleet,
            bucket: recorder.timeline.width,
            timeline: recorder
                .timeline
                .buckets
                .iter()
                .map(|b| {
                    let per_second = |n: u32| f64::from(n) / recorder.timeline.width.as_secs_f64();
                    let quantile = |q: f64| {
                        (!b.latencies.is_empty())
                            .then(|| Duration::from_micros(b.latencies.value_at_quantile(q)))
                    };
                    Point {
                        calls_per_second: per_second(b.calls),
                        arrivals_per_second: per_second(b.arrivals),
                        goodput_per_second: per_second(b.goodput),
                        p50: quantile(0.5),
                        p99: quantile(0.99),
                    }
                })
                .collect(),
        }
    }
}

impl PolicyReport {
    /// Whose breaker changed, when there is more than one: "pricing: ", "client 3, pricing: ".
    pub fn whose(&self, t: &Transition) -> String {
        let mut who = Vec::new();
        if self.transitions.iter().any(|t| t.client > 0) {
            who.push(format!("client {}", t.client));
        }
        if !self.dependencies.is_empty()
            && let Some(name) = self.dependency_names.get(t.dependency)
        {
            who.push(name.clone());
        }
        if who.is_empty() {
            String::new()
        } else {
            format!("{}: ", who.join(", "))
        }
    }

    /// One line for the whole run: "staunch: 99.8% answered (3 failed; 12.0% from the
    /// fallback), p99 410ms, 1.05 calls per request". The p99.9 joins the p99 once at least
    /// [`TAIL_REQUESTS`] requests finished (with fewer it is only the slowest of them), and the
    /// hedges per request join the calls when the policy sent any.
    pub fn verdict(&self) -> String {
        let s = &self.overall;
        let mut line = format!(
            "{}: {} answered",
            self.name,
            share_text(s.success + s.fallback, s.requests)
        );
        let mut why = Vec::new();
        if s.failed > 0 {
            why.push(format!("{} failed", s.failed));
        }
        if s.unfinished > 0 {
            why.push(format!("{} unfinished", s.unfinished));
        }
        if s.fallback > 0 {
            why.push(format!(
                "{} from the fallback",
                share_text(s.fallback, s.requests)
            ));
        }
        if !why.is_empty() {
            let _ = write!(line, " ({})", why.join("; "));
        }
        let _ = write!(line, ", p99 {}", opt_duration(s.p99));
        if s.requests - s.unfinished >= TAIL_REQUESTS {
            let _ = write!(line, ", p99.9 {}", opt_duration(s.p999));
        }
        if let Some(x) = s.calls_per_request() {
            let _ = write!(line, ", {x:.2} calls per request");
        }
        if let Some(x) = s.hedges_per_request().filter(|_| s.hedges > 0) {
            let _ = write!(line, ", {x:.3} hedges per request");
        }
        line
    }
}

/// The fewest finished requests whose p99.9 the verdict gives: a thousand, so that it is not
/// merely the slowest one.
pub const TAIL_REQUESTS: usize = 1000;

/// The least share of a window's requests answered by the fallback that the report remarks on.
pub const NOTABLE_FALLBACK: f64 = 0.05;

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

/// A ratio with two decimals, or "-".
fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
}

/// Hedges per request (or per call) with three decimals, or "-".
fn hedges(s: &Stats) -> String {
    s.hedges_per_request()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
}

fn opt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), format_duration)
}

/// `n` of `total` as a percentage with one decimal, never rounded to a lie: a share that is not
/// exactly 100% never prints as "100.0%" (">99.9% (all but 3)"), and one that is not exactly 0
/// never as "0.0%" ("<0.1% (2)"). "-" when `total` is 0.
pub fn share_cell(n: usize, total: usize) -> String {
    let text = share_text(n, total);
    match text.as_str() {
        ">99.9%" => format!("{text} (all but {})", total - n),
        "<0.1%" => format!("{text} ({n})"),
        _ => text,
    }
}

/// The percentage of [`share_cell`] alone: ">99.9%" and "<0.1%" where rounding would lie.
pub fn share_text(n: usize, total: usize) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    let text = format!("{:.1}", 100.0 * n as f64 / total as f64);
    match text.as_str() {
        "100.0" if n < total => ">99.9%".to_owned(),
        "0.0" if n > 0 => "<0.1%".to_owned(),
        _ => format!("{text}%"),
    }
}

/// " circuit_open 3 fallback; timeout 1 fallback, 2 failed unfinished 4", or " none".
fn reasons_text(reasons: &[(StopReason, usize, usize)], unfinished: usize) -> String {
    let mut line = String::new();
    for &(reason, fallback, failed) in reasons {
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
    match (line.is_empty(), unfinished) {
        (true, 0) => " none".to_owned(),
        (_, 0) => line.to_owned(),
        _ => format!("{line} unfinished {unfinished}"),
    }
}

fn window(start: Duration, end: Duration) -> String {
    format!("{}–{}", format_duration(start), format_duration(end))
}

impl Report {
    /// The dependencies that get rows of their own: every one, when the scenario names them.
    fn dependency_rows(&self) -> Vec<(usize, String)> {
        self.policies
            .first()
            .map(|p| {
                p.dependencies
                    .iter()
                    .enumerate()
                    .map(|(d, r)| (d, r.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sentences on what the numbers show that a table does not say: where a policy answered
    /// from its fallback rather than wait for a dependency that was still answering (a trade of
    /// fresh answers for time, made on purpose), derived from the numbers of each phase.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let share = |n: usize, s: &Stats| n as f64 / s.requests.max(1) as f64;
        for (i, segment) in self.segments.iter().enumerate() {
            if !segment.is_phase {
                continue;
            }
            let title = format!("{} {}", segment.name, window(segment.start, segment.end));
            for p in &self.policies {
                let s = p.segments[i];
                if s.requests == 0 || share(s.fallback, &s) < NOTABLE_FALLBACK {
                    continue;
                }
                let (Some(p99), fallback) = (s.p99, share_text(s.fallback, s.requests)) else {
                    continue;
                };
                // Another policy that got more answers from the dependency, and took at least
                // twice as long for them: this one traded those answers for time.
                let slower = self.policies.iter().find(|q| {
                    let t = q.segments[i];
                    q.name != p.name
                        && share(t.success, &t) > share(s.success, &s) + NOTABLE_FALLBACK
                        && t.p99.is_some_and(|q99| q99 >= p99 * 2)
                });
                if let Some(q) = slower {
                    let t = q.segments[i];
                    notes.push(format!(
                        "In {title}, {} answered {fallback} of requests from its fallback rather \
                         than wait for the dependency: p99 {} against {} for {}, which got {} \
                         answered by the dependency.",
                        p.name,
                        format_duration(p99),
                        opt_duration(t.p99),
                        q.name,
                        share_text(t.success, t.requests)
                    ));
                } else if self.policies.len() == 1 && segment.answering {
                    notes.push(format!(
                        "In {title}, {} answered {fallback} of requests from its fallback while \
                         the dependency was still answering, slowly: fresh answers traded for \
                         time, with p99 {}.",
                        p.name,
                        format_duration(p99)
                    ));
                }
            }
        }
        notes
    }

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
        for p in &self.policies {
            writeln!(out, "{}", p.verdict())?;
        }
        for note in self.notes() {
            writeln!(out, "{note}")?;
        }
        writeln!(out)?;
        writeln!(out, "Scenario: {}", self.scenario)?;
        if let Some(description) = &self.description {
            for line in description.trim().lines() {
                writeln!(out, "  {}", line.trim_end())?;
            }
        }
        let fleet = self
            .policies
            .iter()
            .find_map(|p| p.fleet.as_ref())
            .map_or_else(String::new, |f| {
                format!(", spread over {} clients in turn", f.clients)
            });
        writeln!(
            out,
            "{} requests over {} at {}/s ({arrivals}{fleet}), seed {}, in virtual time.",
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

        // Wide enough for every name and every share (">99.9% (all but 3)" is wider than most).
        let width = self
            .policies
            .iter()
            .flat_map(|p| {
                let shares = p.segments.iter().chain([&p.overall]).flat_map(|s| {
                    [s.success, s.fallback, s.failed, s.unfinished]
                        .map(|n| share_cell(n, s.requests).chars().count())
                });
                shares.chain([p.name.chars().count()])
            })
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
                (
                    format!("{} {}", s.name, window(s.start, s.end)),
                    stats,
                    Some(i),
                )
            })
            // With one segment, "all" would repeat it.
            .chain((self.segments.len() > 1).then(|| {
                (
                    format!("all {}", window(Duration::ZERO, self.load.duration)),
                    self.policies.iter().map(|p| p.overall).collect(),
                    None,
                )
            }));
        for (title, stats, segment) in blocks {
            let requests = stats.first().map_or(0, |s| s.requests);
            writeln!(out, "{title} ({requests} requests)")?;
            let cells = |f: &dyn Fn(&Stats) -> String| stats.iter().map(f).collect::<Vec<_>>();
            row(
                out,
                "success",
                &cells(&|s| share_cell(s.success, s.requests)),
            )?;
            row(
                out,
                "fallback",
                &cells(&|s| share_cell(s.fallback, s.requests)),
            )?;
            row(out, "failed", &cells(&|s| share_cell(s.failed, s.requests)))?;
            if stats.iter().any(|s| s.unfinished > 0) {
                row(
                    out,
                    "unfinished",
                    &cells(&|s| share_cell(s.unfinished, s.requests)),
                )?;
            }
            row(out, "latency p50", &cells(&|s| opt_duration(s.p50)))?;
            row(out, "latency p99", &cells(&|s| opt_duration(s.p99)))?;
            row(out, "latency p99.9", &cells(&|s| opt_duration(s.p999)))?;
            row(out, "latency max", &cells(&|s| opt_duration(s.max)))?;
            row(
                out,
                "calls per request",
                &cells(&|s| ratio(s.calls_per_request())),
            )?;
            row(out, "hedges per request", &cells(&|s| hedges(s)))?;
            row(
                out,
                "peak calls in 1 s",
                &cells(&|s| s.peak_calls_per_second.to_string()),
            )?;
            for (d, name) in self.dependency_rows() {
                let stats: Vec<Stats> = self
                    .policies
                    .iter()
                    .map(|p| {
                        let report = &p.dependencies[d];
                        segment.map_or(report.overall, |i| report.segments[i])
                    })
                    .collect();
                let cells = |f: &dyn Fn(&Stats) -> String| stats.iter().map(f).collect::<Vec<_>>();
                let calls = stats.first().map_or(0, |s| s.requests);
                writeln!(out, "  {name} ({calls} calls)")?;
                row(
                    out,
                    "  answered",
                    &cells(&|s| share_cell(s.success, s.requests)),
                )?;
                row(
                    out,
                    "  fallback",
                    &cells(&|s| share_cell(s.fallback, s.requests)),
                )?;
                row(
                    out,
                    "  failed",
                    &cells(&|s| share_cell(s.failed, s.requests)),
                )?;
                row(out, "  latency p99", &cells(&|s| opt_duration(s.p99)))?;
                row(out, "  latency p99.9", &cells(&|s| opt_duration(s.p999)))?;
                row(
                    out,
                    "  attempts per call",
                    &cells(&|s| ratio(s.calls_per_request())),
                )?;
                row(out, "  hedges per call", &cells(&|s| hedges(s)))?;
                row(
                    out,
                    "  peak attempts in 1 s",
                    &cells(&|s| s.peak_calls_per_second.to_string()),
                )?;
            }
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
                    "    {:>9}  {}{} -> {} ({})",
                    format_duration(t.at),
                    p.whose(t),
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

        if let Some(clients) = self
            .policies
            .iter()
            .find_map(|p| p.fleet.as_ref())
            .map(|f| f.clients)
        {
            writeln!(out)?;
            writeln!(
                out,
                "Fleet of {clients} clients, each with its own breakers, budgets and limits; the \
                 numbers above are the fleet's (its load on the dependency)"
            )?;
            for p in &self.policies {
                if let Some(fleet) = &p.fleet {
                    writeln!(out, "  {}: {}", p.name, fleet.describe())?;
                }
            }
        }

        writeln!(out)?;
        writeln!(
            out,
            "Why calls stopped (requests the dependency did not answer)"
        )?;
        for p in &self.policies {
            let line = reasons_text(&p.stop_reasons, p.overall.unfinished);
            writeln!(out, "  {}:{line}", p.name)?;
            // With named dependencies, each one's calls: which of them refused, timed out, ...
            for d in &p.dependencies {
                let line = reasons_text(&d.stop_reasons, 0);
                writeln!(out, "    {} calls:{line}", d.name)?;
            }
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
                ("p999_ms", opt_ms(s.p999)),
                ("max_ms", opt_ms(s.max)),
                ("calls", Json::Int(s.calls)),
                (
                    "calls_per_request",
                    s.calls_per_request().map_or(Json::Null, Json::Num),
                ),
                (
                    "hedges_per_request",
                    s.hedges_per_request().map_or(Json::Null, Json::Num),
                ),
                (
                    "peak_calls_per_second",
                    Json::Int(s.peak_calls_per_second as u64),
                ),
                (
                    "counts",
                    Json::Obj(vec![
                        ("success", Json::Int(s.success as u64)),
                        ("fallback", Json::Int(s.fallback as u64)),
                        ("failed", Json::Int(s.failed as u64)),
                        ("unfinished", Json::Int(s.unfinished as u64)),
                    ]),
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
                    .enumerate()
                    .map(|(i, ((seg, s), incident))| {
                        let mut fields = vec![
                            ("name", Json::Str(seg.name.clone())),
                            ("start_ms", ms(seg.start)),
                            ("end_ms", ms(seg.end)),
                            ("stats", stats(s)),
                        ];
                        if !p.dependencies.is_empty() {
                            fields.push((
                                "dependencies",
                                Json::Arr(
                                    p.dependencies
                                        .iter()
                                        .map(|d| {
                                            Json::Obj(vec![
                                                ("name", Json::Str(d.name.clone())),
                                                ("stats", stats(&d.segments[i])),
                                            ])
                                        })
                                        .collect(),
                                ),
                            ));
                        }
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
                        let mut fields = vec![
                            ("at_ms", ms(t.at)),
                            ("from", Json::Str(t.from.as_str().to_owned())),
                            ("to", Json::Str(t.to.as_str().to_owned())),
                            ("reason", Json::Str(t.reason.as_str().to_owned())),
                        ];
                        if !p.dependencies.is_empty() {
                            let name = p.dependency_names.get(t.dependency).cloned();
                            fields.push(("dependency", name.map_or(Json::Null, Json::Str)));
                        }
                        if p.transitions.iter().any(|t| t.client > 0) {
                            fields.push(("client", Json::Int(t.client as u64)));
                        }
                        Json::Obj(fields)
                    })
                    .collect();
                let reasons = |list: &[(StopReason, usize, usize)]| {
                    Json::Arr(
                        list.iter()
                            .map(|&(reason, fallback, failed)| {
                                Json::Obj(vec![
                                    ("reason", Json::Str(reason.as_str().to_owned())),
                                    ("fallback", Json::Int(fallback as u64)),
                                    ("failed", Json::Int(failed as u64)),
                                ])
                            })
                            .collect(),
                    )
                };
                Json::Obj(vec![
                    ("name", Json::Str(p.name.clone())),
                    ("verdict", Json::Str(p.verdict())),
                    (
                        "settings",
                        Json::Arr(p.settings.iter().cloned().map(Json::Str).collect()),
                    ),
                    ("overall", stats(&p.overall)),
                    (
                        "dependencies",
                        Json::Arr(
                            p.dependencies
                                .iter()
                                .map(|d| {
                                    Json::Obj(vec![
                                        ("name", Json::Str(d.name.clone())),
                                        ("overall", stats(&d.overall)),
                                        ("stop_reasons", reasons(&d.stop_reasons)),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                    ("phases", Json::Arr(phases)),
                    (
                        "breaker",
                        if p.has_breaker {
                            Json::Arr(transitions)
                        } else {
                            Json::Null
                        },
                    ),
                    ("stop_reasons", reasons(&p.stop_reasons)),
                    (
                        "fleet",
                        p.fleet.as_ref().map_or(Json::Null, |f| {
                            Json::Obj(vec![
                                ("clients", Json::Int(f.clients as u64)),
                                (
                                    "breakers",
                                    Json::Arr(
                                        f.breakers
                                            .iter()
                                            .map(|(name, peak, together)| {
                                                Json::Obj(vec![
                                                    ("dependency", Json::Str(name.clone())),
                                                    ("peak_open_share", Json::Num(*peak)),
                                                    (
                                                        "open_together",
                                                        together.map_or(Json::Null, Json::Num),
                                                    ),
                                                ])
                                            })
                                            .collect(),
                                    ),
                                ),
                                ("retries", Json::Int(f.retries)),
                                (
                                    "retry_peak_to_mean",
                                    f.retry_peak_to_mean.map_or(Json::Null, Json::Num),
                                ),
                            ])
                        }),
                    ),
                ])
            })
            .collect();
        let report = Json::Obj(vec![
            ("scenario", Json::Str(self.scenario.clone())),
            ("seed", Json::Int(self.seed)),
            ("rate_per_second", Json::Num(self.load.rate)),
            ("duration_ms", ms(self.load.duration)),
            ("requests", Json::Int(self.requests as u64)),
            (
                "notes",
                Json::Arr(self.notes().into_iter().map(Json::Str).collect()),
            ),
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
    fn a_share_never_rounds_to_a_lie() {
        assert_eq!(share_cell(959_791, 959_792), ">99.9% (all but 1)");
        assert_eq!(share_cell(1, 959_792), "<0.1% (1)");
        assert_eq!(share_cell(10, 10), "100.0%");
        assert_eq!(share_cell(0, 10), "0.0%");
        assert_eq!(share_cell(999, 1000), "99.9%");
        assert_eq!(share_cell(1, 1000), "0.1%");
        assert_eq!(share_cell(0, 0), "-");
        assert_eq!(share_text(1999, 2000), ">99.9%");
        for total in [1, 7, 1000, 2001, 1_000_000] {
            for n in [0, 1, total / 2, total - 1, total] {
                let text = share_cell(n, total);
                assert_eq!(
                    text.starts_with("100.0%"),
                    n == total,
                    "{n}/{total}: {text}"
                );
                assert_eq!(text.starts_with("0.0%"), n == 0, "{n}/{total}: {text}");
            }
        }
    }

    fn stats(requests: usize, success: usize, fallback: usize, p99_ms: u64) -> Stats {
        Stats {
            requests,
            success,
            fallback,
            failed: requests - success - fallback,
            unfinished: 0,
            p50: Some(Duration::from_millis(p99_ms / 2)),
            p99: Some(Duration::from_millis(p99_ms)),
            p999: Some(Duration::from_millis(p99_ms)),
            max: Some(Duration::from_millis(p99_ms)),
            calls: requests as u64,
            hedges: 0,
            peak_calls_per_second: 1,
        }
    }

    fn policy(name: &str, phases: [Stats; 2], overall: Stats) -> PolicyReport {
        PolicyReport {
            name: name.to_owned(),
            settings: Vec::new(),
            segments: phases.to_vec(),
            overall,
            incidents: vec![None, None],
            transitions: Vec::new(),
            has_breaker: false,
            stop_reasons: Vec::new(),
            dependencies: Vec::new(),
            dependency_names: vec!["dependency".to_owned()],
            fleet: None,
            bucket: Duration::from_secs(1),
            timeline: Vec::new(),
        }
    }

    fn report(policies: Vec<PolicyReport>, answering: bool) -> Report {
        let segment = |name: &str, start: u64, end: u64, is_phase: bool| Segment {
            name: name.to_owned(),
            start: Duration::from_secs(start),
            end: Duration::from_secs(end),
            is_phase,
            answering,
        };
        Report {
            scenario: "s".to_owned(),
            description: None,
            seed: 1,
            load: Load {
                rate: 10.0,
                duration: Duration::from_secs(20),
                arrivals: Arrivals::Uniform,
                drain: Duration::from_secs(1),
            },
            requests: 200,
            segments: vec![
                segment("baseline", 0, 10, false),
                segment("slow", 10, 20, true),
            ],
            policies,
        }
    }

    #[test]
    fn the_verdict_says_how_many_were_answered_and_how() {
        let p = policy(
            "staunch",
            [stats(100, 100, 0, 50); 2],
            stats(2000, 1990, 7, 410),
        );
        assert_eq!(
            p.verdict(),
            "staunch: 99.8% answered (3 failed; 0.3% from the fallback), p99 410ms, p99.9 410ms, 1.00 calls per request"
        );
        // Fewer than a thousand finished: no p99.9, which would be only the slowest.
        let all = policy("naive", [stats(100, 100, 0, 50); 2], stats(100, 100, 0, 40));
        assert_eq!(
            all.verdict(),
            "naive: 100.0% answered, p99 40ms, 1.00 calls per request"
        );
        let mut tail = stats(1000, 1000, 0, 16);
        tail.p999 = Some(Duration::from_millis(35));
        tail.calls = 1009;
        tail.hedges = 9;
        let hedge = policy("hedge", [stats(100, 100, 0, 50); 2], tail);
        assert_eq!(
            hedge.verdict(),
            "hedge: 100.0% answered, p99 16ms, p99.9 35ms, 1.01 calls per request, 0.009 hedges per request"
        );
    }

    #[test]
    fn a_trade_of_answers_for_time_is_said_only_where_the_numbers_show_it() {
        let fast = policy(
            "fast",
            [stats(100, 100, 0, 50), stats(100, 20, 80, 300)],
            stats(200, 120, 80, 300),
        );
        let slow = policy(
            "slow",
            [stats(100, 100, 0, 50), stats(100, 99, 0, 4000)],
            stats(200, 199, 0, 4000),
        );
        let notes = report(vec![fast.clone(), slow.clone()], true).notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        for needle in [
            "In slow 10s–20s",
            "fast answered 80.0%",
            "p99 300ms against 4s for slow",
            "99.0% answered by the dependency",
        ] {
            assert!(notes[0].contains(needle), "{needle:?} in {}", notes[0]);
        }
        // Not when the other policy was no slower: then the fallback bought nothing.
        let quick = policy(
            "slow",
            [stats(100, 100, 0, 50), stats(100, 99, 0, 400)],
            stats(200, 199, 0, 400),
        );
        assert!(report(vec![fast.clone(), quick], true).notes().is_empty());
        // Alone: only while the dependency was still answering.
        assert_eq!(report(vec![fast.clone()], true).notes().len(), 1);
        assert!(report(vec![fast], false).notes().is_empty());
        // Not for a handful of fallbacks.
        let few = policy(
            "few",
            [stats(100, 100, 0, 50), stats(100, 97, 3, 300)],
            stats(200, 197, 3, 300),
        );
        assert!(report(vec![few, slow], true).notes().is_empty());
    }

    fn change(at_ms: u64, client: usize, to: State) -> Transition {
        Transition {
            at: Duration::from_millis(at_ms),
            from: State::Closed,
            to,
            reason: staunch::breaker::Reason::Tripped,
            dependency: 0,
            client,
        }
    }

    #[test]
    fn breakers_that_open_as_one_are_together_and_those_taking_turns_are_not() {
        let end = Duration::from_secs(10);
        // Four clients open at 1 s and close at 2 s, together.
        let together: Vec<Transition> = (0..4)
            .map(|c| change(1000, c, State::Open))
            .chain((0..4).map(|c| change(2000, c, State::Closed)))
            .collect();
        assert_eq!(open_together(&together, 0, 4, end), (1.0, Some(1.0)));
        // Each open for a second, one after the other.
        let turns: Vec<Transition> = (0..4)
            .flat_map(|c| {
                let t = 1000 * (c as u64 + 1);
                [
                    change(t, c, State::Open),
                    change(t + 1000, c, State::Closed),
                ]
            })
            .collect();
        let mut turns = turns;
        turns.sort_by_key(|t| t.at);
        assert_eq!(open_together(&turns, 0, 4, end), (0.25, Some(0.25)));
        // Half-open still counts as not closed; another dependency's breakers do not count.
        let half = vec![
            change(0, 0, State::HalfOpen),
            Transition {
                dependency: 1,
                ..change(0, 1, State::Open)
            },
        ];
        assert_eq!(open_together(&half, 0, 2, end), (0.5, Some(0.5)));
        assert_eq!(open_together(&[], 0, 3, end), (0.0, None));
    }

    #[test]
    fn stop_reasons_are_listed_in_a_fixed_order_and_none_is_lost() {
        let counted = [
            (StopReason::MaxDuration, 0, 2),
            (StopReason::Timeout, 0, 0),
            (StopReason::Refused(Refusal::LimitFull), 3, 1),
            (StopReason::CircuitOpen, 5, 0),
        ];
        assert_eq!(
            in_order(&counted),
            [
                (StopReason::CircuitOpen, 5, 0),
                (StopReason::Refused(Refusal::LimitFull), 3, 1),
                (StopReason::MaxDuration, 0, 2),
            ]
        );
    }

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
