//! The report: per phase and build, computed from the run's own measurements; as a table for
//! people and JSON for machines.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::{Value, json};
use staunch::breaker::State;

use super::Build;
use super::checkout::Transition;
use super::dependency::{Call, Dependency};
use super::load::{Outcome, Sample};
use super::schedule::Schedule;

/// What the report is made of (everything measured in the run).
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) schedule: Schedule,
    pub(crate) rate: f64,
    pub(crate) seed: u64,
    pub(crate) requests: u64,
    pub(crate) samples: Vec<Sample>,
    pub(crate) pricing_calls: Vec<Call>,
    pub(crate) inventory_calls: Vec<Call>,
    pub(crate) transitions: Vec<Transition>,
    pub(crate) handled: [(Vec<u32>, u64); 2],
    pub(crate) load_time: Duration,
    pub(crate) wall_time: Duration,
}

/// The results of a run.
#[derive(Debug)]
pub struct Report {
    parts: Parts,
    /// The phase each request number was sent in.
    sent_in: Vec<usize>,
}

/// The numbers of one build in one phase (or the whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseStats {
    /// Requests sent (or shed) in the phase.
    pub requests: u64,
    /// Requests that got an HTTP answer.
    pub answered: u64,
    /// Answers 200, with pricing's price or the fallback price.
    pub succeeded: u64,
    /// Answers 200 with the fallback price.
    pub fallback: u64,
    /// Answers other than 200.
    pub failed: u64,
    /// Requests without an answer (connection failure or client timeout).
    pub no_answer: u64,
    /// Requests not sent because too many were in flight.
    pub shed: u64,
    /// Median latency of the answered requests.
    pub p50: Option<Duration>,
    /// 99th percentile latency of the answered requests (nearest rank).
    pub p99: Option<Duration>,
    /// Slowest answer.
    pub max: Option<Duration>,
    /// Calls the pricing dependency received from this build for the requests sent in the phase.
    pub pricing_calls: u64,
    /// Calls the inventory dependency received from this build for the requests sent in the
    /// phase.
    pub inventory_calls: u64,
    /// Share of the phase the pricing breaker spent other than closed (staunch only).
    pub breaker_open: Option<f64>,
    /// Breaker trips in the phase (staunch only).
    pub breaker_trips: Option<u64>,
}

impl PhaseStats {
    /// `succeeded / requests`, in percent.
    pub fn success_pct(&self) -> f64 {
        pct(self.succeeded, self.requests)
    }

    /// `fallback / requests`, in percent.
    pub fn fallback_pct(&self) -> f64 {
        pct(self.fallback, self.requests)
    }

    /// Calls to `dependency` per request: the amplification.
    pub fn per_request(&self, dependency: Dependency) -> f64 {
        let calls = match dependency {
            Dependency::Pricing => self.pricing_calls,
            Dependency::Inventory => self.inventory_calls,
        };
        if self.requests == 0 {
            0.0
        } else {
            calls as f64 / self.requests as f64
        }
    }
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// Whether every request got exactly one answer, per build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Responses {
    /// Requests the load generator meant to send.
    pub requests: u64,
    /// Requests it sent (not shed).
    pub sent: u64,
    /// Requests that got an HTTP answer at the load generator.
    pub answered: u64,
    /// Request numbers checkout handled exactly once.
    pub handled_once: u64,
    /// Request numbers checkout never saw.
    pub never_handled: u64,
    /// Request numbers checkout handled more than once, and requests without a valid number.
    pub duplicates: u64,
}

impl Responses {
    /// Every request was sent, handled once by checkout, and answered once.
    pub fn exactly_once(&self) -> bool {
        self.sent == self.requests
            && self.answered == self.requests
            && self.handled_once == self.requests
            && self.duplicates == 0
    }
}

/// Nearest-rank percentile `q` (0 < q <= 1) of sorted `values`.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1e4).round() / 10.0)
    })
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl Report {
    pub(crate) fn new(parts: Parts) -> Self {
        let mut sent_in = vec![0; usize::try_from(parts.requests).unwrap_or(0)];
        for s in &parts.samples {
            if let Some(phase) = usize::try_from(s.id).ok().and_then(|i| sent_in.get_mut(i)) {
                *phase = s.phase;
            }
        }
        Self { parts, sent_in }
    }

    /// The phase request `id` was sent in.
    fn phase_of(&self, id: u64) -> Option<usize> {
        self.sent_in.get(usize::try_from(id).ok()?).copied()
    }

    /// The schedule that ran.
    pub fn schedule(&self) -> &Schedule {
        &self.parts.schedule
    }

    /// Requests per second, per build.
    pub fn rate(&self) -> f64 {
        self.parts.rate
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.parts.seed
    }

    /// Requests sent to each build.
    pub fn requests(&self) -> u64 {
        self.parts.requests
    }

    /// Every request, as the load generator saw it, by number then build.
    pub fn samples(&self) -> &[Sample] {
        &self.parts.samples
    }

    /// Every call `dependency` received, in arrival order.
    pub fn calls(&self, dependency: Dependency) -> &[Call] {
        match dependency {
            Dependency::Pricing => &self.parts.pricing_calls,
            Dependency::Inventory => &self.parts.inventory_calls,
        }
    }

    /// The staunch build's pricing breaker: every state change, in order.
    pub fn transitions(&self) -> Vec<Transition> {
        let mut t = self.parts.transitions.clone();
        t.sort_by_key(|t| t.at);
        t
    }

    /// How long the whole run took, servers included (wall time).
    pub fn wall_time(&self) -> Duration {
        self.parts.wall_time
    }

    /// From the first request sent to the last answer received.
    pub fn load_time(&self) -> Duration {
        self.parts.load_time
    }

    /// The end of the run on the schedule's clock: the schedule, or the last answer if later.
    pub fn end(&self) -> Duration {
        self.parts.load_time.max(self.parts.schedule.total())
    }

    /// Whether every request of `build` got exactly one answer.
    pub fn responses(&self, build: Build) -> Responses {
        let (counts, unknown) = &self.parts.handled[build.index()];
        let mine = self.parts.samples.iter().filter(|s| s.build == build);
        let sent = mine.clone().filter(|s| s.outcome != Outcome::Shed).count() as u64;
        let answered = mine.filter(|s| s.outcome.answered()).count() as u64;
        Responses {
            requests: self.parts.requests,
            sent,
            answered,
            handled_once: counts.iter().filter(|&&c| c == 1).count() as u64,
            never_handled: counts.iter().filter(|&&c| c == 0).count() as u64,
            duplicates: counts.iter().filter(|&&c| c > 1).count() as u64 + unknown,
        }
    }

    /// The numbers of `build` in phase `phase`, or in the whole run with `None`.
    pub fn stats(&self, build: Build, phase: Option<usize>) -> PhaseStats {
        let in_phase = |p: usize| phase.is_none_or(|q| p == q);
        let mut stats = PhaseStats::default();
        let mut latencies = Vec::new();
        for s in self
            .parts
            .samples
            .iter()
            .filter(|s| s.build == build && in_phase(s.phase))
        {
            stats.requests += 1;
            match s.outcome {
                Outcome::Ok => stats.succeeded += 1,
                Outcome::Fallback => {
                    stats.succeeded += 1;
                    stats.fallback += 1;
                }
                Outcome::Failed(_) => stats.failed += 1,
                Outcome::NoAnswer => stats.no_answer += 1,
                Outcome::Shed => stats.shed += 1,
            }
            if s.outcome.answered() {
                stats.answered += 1;
                latencies.push(s.latency);
            }
        }
        latencies.sort_unstable();
        stats.p50 = percentile(&latencies, 0.5);
        stats.p99 = percentile(&latencies, 0.99);
        stats.max = latencies.last().copied();
        // A call counts for the phase its request was sent in, so that calls per request
        // compare like with like even when a request straddles two phases.
        let count = |calls: &[Call]| {
            calls
                .iter()
                .filter(|c| c.build == build && self.phase_of(c.id).is_some_and(in_phase))
                .count() as u64
        };
        stats.pricing_calls = count(&self.parts.pricing_calls);
        stats.inventory_calls = count(&self.parts.inventory_calls);
        if build == Build::Staunch {
            let (from, to) = match phase {
                Some(p) => {
                    let start = self.parts.schedule.phase_start(p);
                    let last = p + 1 == self.parts.schedule.phases().len();
                    let end = if last {
                        self.end()
                    } else {
                        start + self.parts.schedule.phases()[p].duration
                    };
                    (start, end)
                }
                None => (Duration::ZERO, self.end()),
            };
            stats.breaker_open = Some(self.not_closed_share(from, to));
            stats.breaker_trips = Some(
                self.parts
                    .transitions
                    .iter()
                    .filter(|t| t.from == State::Closed && t.at >= from && t.at < to)
                    .count() as u64,
            );
        }
        stats
    }

    /// The breaker's states as intervals `(from, to, state)` covering `[0, end]`.
    pub fn breaker_intervals(&self) -> Vec<(Duration, Duration, State)> {
        let mut intervals = Vec::new();
        let mut since = Duration::ZERO;
        let mut state = State::Closed;
        for t in self.transitions() {
            if t.at > since {
                intervals.push((since, t.at, state));
            }
            since = since.max(t.at);
            state = t.to;
        }
        intervals.push((since, self.end().max(since), state));
        intervals
    }

    fn not_closed_share(&self, from: Duration, to: Duration) -> f64 {
        if to <= from {
            return 0.0;
        }
        let open: Duration = self
            .breaker_intervals()
            .into_iter()
            .filter(|(_, _, s)| *s != State::Closed)
            .map(|(a, b, _)| b.min(to).saturating_sub(a.max(from)))
            .sum();
        open.as_secs_f64() / (to - from).as_secs_f64()
    }

    /// Writes the side-by-side table for people.
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let p = &self.parts;
        writeln!(
            out,
            "staunch-lab demo: {} checkout requests per build at {} req/s over {:.1} s, seed {}, \
             all on 127.0.0.1",
            p.requests,
            p.rate,
            p.schedule.total().as_secs_f64(),
            p.seed
        )?;
        for build in Build::ALL {
            writeln!(out, "  {:<8} {}", build.as_str(), build.describe())?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{:<8} {:>5} {:>8} {:>9} {:>8} {:>8} {:>8} {:>11} {:>13}  breaker",
            "build",
            "reqs",
            "success",
            "fallback",
            "p50",
            "p99",
            "max",
            "pricing/req",
            "inventory/req",
        )?;
        let phases = p.schedule.phases();
        for (i, phase) in phases.iter().enumerate() {
            let start = p.schedule.phase_start(i).as_secs_f64();
            writeln!(
                out,
                "{}. {} ({:.1}-{:.1} s): pricing {}; inventory {}",
                i + 1,
                phase.name,
                start,
                start + phase.duration.as_secs_f64(),
                phase.pricing.describe(),
                phase.inventory.describe()
            )?;
            for build in Build::ALL {
                self.write_row(out, build, &self.stats(build, Some(i)))?;
            }
        }
        writeln!(out, "whole run")?;
        for build in Build::ALL {
            self.write_row(out, build, &self.stats(build, None))?;
        }
        writeln!(out)?;
        // The timeline, wrapped so that a flapping breaker stays readable.
        let mut line = "breaker (staunch, pricing): 0.0 s closed".to_owned();
        for t in self.transitions() {
            let step = format!(
                " -> {:.1} s {} ({})",
                t.at.as_secs_f64(),
                state_name(t.to),
                t.reason.replace('_', " ")
            );
            if line.len() + step.len() > 100 {
                writeln!(out, "{line}")?;
                line = "   ".to_owned();
            }
            line.push_str(&step);
        }
        writeln!(out, "{line}")?;
        for build in Build::ALL {
            let r = self.responses(build);
            writeln!(
                out,
                "responses ({}): {} sent, {} answered, {} handled exactly once by checkout{}",
                build.as_str(),
                r.sent,
                r.answered,
                r.handled_once,
                if r.exactly_once() {
                    ""
                } else {
                    "  <-- not exactly once"
                }
            )?;
        }
        writeln!(
            out,
            "success: answered 200 (fallback price included). p50/p99/max: latency at the load \
             generator.\npricing/req, inventory/req: calls the dependency received per checkout \
             request (retries included). breaker: time not closed, and trips.\nWall time {:.1} s.",
            p.wall_time.as_secs_f64()
        )
    }

    fn write_row(&self, out: &mut impl Write, build: Build, s: &PhaseStats) -> io::Result<()> {
        let d = |d: Option<Duration>| {
            d.map_or_else(|| "-".to_owned(), |d| format!("{}ms", d.as_millis()))
        };
        let breaker = match (s.breaker_open, s.breaker_trips) {
            (Some(open), Some(trips)) if open > 0.0 || trips > 0 => format!(
                "open {:.0}%, {trips} trip{}",
                open * 100.0,
                if trips == 1 { "" } else { "s" }
            ),
            (Some(_), Some(_)) => "closed".to_owned(),
            _ => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<8} {:>5} {:>7.1}% {:>8.1}% {:>8} {:>8} {:>8} {:>11.2} {:>13.2}  {breaker}",
            build.as_str(),
            s.requests,
            s.success_pct(),
            s.fallback_pct(),
            d(s.p50),
            d(s.p99),
            d(s.max),
            s.per_request(Dependency::Pricing),
            s.per_request(Dependency::Inventory),
        )
    }

    /// The report as one JSON value.
    pub fn to_json(&self) -> Value {
        let p = &self.parts;
        let stats = |s: PhaseStats| {
            json!({
                "requests": s.requests,
                "answered": s.answered,
                "succeeded": s.succeeded,
                "fallback": s.fallback,
                "failed": s.failed,
                "no_answer": s.no_answer,
                "shed": s.shed,
                "success_pct": round(s.success_pct(), 2),
                "fallback_pct": round(s.fallback_pct(), 2),
                "p50_ms": ms(s.p50),
                "p99_ms": ms(s.p99),
                "max_ms": ms(s.max),
                "pricing_calls": s.pricing_calls,
                "inventory_calls": s.inventory_calls,
                "pricing_per_request": round(s.per_request(Dependency::Pricing), 3),
                "inventory_per_request": round(s.per_request(Dependency::Inventory), 3),
                "breaker_open_pct": s.breaker_open.map(|x| round(x * 100.0, 1)),
                "breaker_trips": s.breaker_trips,
            })
        };
        let by_build = |phase: Option<usize>| {
            json!({
                "naive": stats(self.stats(Build::Naive, phase)),
                "staunch": stats(self.stats(Build::Staunch, phase)),
            })
        };
        let phases: Vec<Value> = p
            .schedule
            .phases()
            .iter()
            .enumerate()
            .map(|(i, phase)| {
                json!({
                    "name": phase.name,
                    "start_s": p.schedule.phase_start(i).as_secs_f64(),
                    "duration_s": phase.duration.as_secs_f64(),
                    "pricing": phase.pricing.describe(),
                    "inventory": phase.inventory.describe(),
                    "builds": by_build(Some(i)),
                })
            })
            .collect();
        let transitions: Vec<Value> = self
            .transitions()
            .iter()
            .map(|t| {
                json!({
                    "at_s": round(t.at.as_secs_f64(), 3),
                    "from": t.from.as_str(),
                    "to": t.to.as_str(),
                    "reason": t.reason,
                })
            })
            .collect();
        let responses = |build| {
            let r = self.responses(build);
            json!({
                "requests": r.requests,
                "sent": r.sent,
                "answered": r.answered,
                "handled_once": r.handled_once,
                "never_handled": r.never_handled,
                "duplicates": r.duplicates,
                "exactly_once": r.exactly_once(),
            })
        };
        json!({
            "run": {
                "requests_per_build": p.requests,
                "rate_per_s": p.rate,
                "duration_s": p.schedule.total().as_secs_f64(),
                "seed": p.seed,
                "wall_time_s": round(p.wall_time.as_secs_f64(), 3),
                "builds": {
                    "naive": Build::Naive.describe(),
                    "staunch": Build::Staunch.describe(),
                },
            },
            "phases": phases,
            "whole_run": by_build(None),
            "breaker": transitions,
            "responses": {
                "naive": responses(Build::Naive),
                "staunch": responses(Build::Staunch),
            },
        })
    }

    /// Writes [`to_json`](Self::to_json), pretty-printed, with a final newline.
    ///
    /// # Errors
    ///
    /// Writing to `out` failed.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.to_json())?;
        writeln!(out)
    }
}

/// A state's name for people.
pub(crate) fn state_name(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half-open",
        State::ForcedOpen => "forced open",
        State::ForcedClosed => "forced closed",
        State::Disabled => "disabled",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&v, 0.5), Some(ms(50)));
        assert_eq!(percentile(&v, 0.99), Some(ms(99)));
        assert_eq!(percentile(&v[..1], 0.99), Some(ms(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
