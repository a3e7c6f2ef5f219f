//! `staunch-lab simulate`: a policy against a failure scenario, in virtual time.
//!
//! A scenario file (TOML) describes the load, a dependency whose latency and errors change over
//! time, and the policy in front of it, written with the `staunch` library's own config types
//! (its `serde` feature). The run drives the library's real [`Pipeline`](staunch::Pipeline) —
//! retry, budget, breaker, attempt timeout, deadline, fallback, throttling, rate and concurrency
//! limits, not a re-implementation — in a
//! tokio runtime whose clock is paused: when every request is waiting, time jumps to the next
//! timer, so ten minutes of traffic take well under a second. The same scenario, policy and seed
//! give the same numbers, byte for byte.
//!
//! # The file
//!
//! ```toml
//! name = "hard outage"                 # optional; default: the file's stem
//! description = "What it shows."       # optional, printed under the title
//! seed = 7                             # optional; --seed overrides it
//!
//! [load]                               # open loop: arrivals do not wait for answers
//! rate = 50                            # requests per second
//! duration = "2m"                      # how long requests arrive
//! arrivals = "poisson"                 # or "uniform" (default "poisson")
//! drain = "60s"                        # wait this long for stragglers (default 60s)
//!
//! [dependency]                         # the baseline, outside every phase
//! latency = { distribution = "lognormal", mean = "40ms", sd = "20ms" }   # or "normal", or "40ms"
//! # also { distribution = "constant", value = "40ms" }, { distribution = "uniform", min = "5ms",
//! # max = "15ms" }, and a mixture with weights (shares of their sum), a long tail say:
//! # { distribution = "mixture", parts = [ { weight = 0.99, distribution = "uniform", min = "5ms",
//! #   max = "15ms" }, { weight = 0.01, distribution = "constant", value = "1s" } ] }
//! error_rate = 0.001                   # share of 503s, in [0, 1]
//! retry_after = "1s"                   # optional Retry-After hint on every 503
//! max_concurrency = 20                 # optional: workers; more calls wait in a FIFO queue
//! max_queue = 500                      # optional: calls finding the queue this long get a 503
//!
//! [[dependency.phase]]                 # any number, in order, without overlap
//! name = "outage"
//! start = "30s"
//! end = "60s"
//! outage = "refused"                   # or "blackhole" (never answers); or override
//!                                      # latency / error_rate / retry_after instead
//!
//! [policy]                             # every key optional; nothing = one bare call
//! name = "staunch"
//! timeout = "5s"                       # overall deadline per request
//! fallback = true                      # a fallback answers for circuit open, timeout, exhausted
//! wait_for_probe = false               # retry waits for the breaker's next probe
//! attempt_timeout = { fixed = "500ms" }                 # staunch::deadline::AttemptTimeout
//! retry = { max_attempts = 3, backoff = { kind = "exponential", initial = "100ms", max_delay = "2s", jitter = "full" } }
//! # or, in retry's place (a policy retries or hedges), staunch::hedge::HedgeConfig:
//! # hedge = { max_attempts = 2, delay = "20ms" }, or an adaptive delay,
//! # hedge = { max_attempts = 2, delay = { percentile = 95, min = "5ms", max = "100ms" } }
//! budget = { kind = "ratio", ratio = 0.1 }              # staunch::retry::BudgetConfig
//! breaker = { rule = "consecutive_failures", failures = 5, open_duration = "5s" }  # BreakerConfig
//! throttle = { k = 2.0, window = "2m" }                 # staunch::limit::ThrottleConfig
//! rate_limit = { calls = 100, period = "1s", burst = 10 }                 # limit::RateConfig
//! limit = { kind = "aimd", min_limit = 5, max_limit = 100, max_queue = 50, max_wait = "20ms" }  # LimitConfig
//! ```
//!
//! Leave `seed` out of the backoffs: the run seeds the library's jitter generators from the
//! run's seed, while a backoff's own `seed` gives every call the same sequence of delays.
//!
//! The dependency answers a call that starts in a phase as the phase says. A refused call fails
//! after 1 ms; a 503 takes its drawn latency. With `max_concurrency`, a call first waits for a
//! free worker, and a call whose caller timed out still holds its worker until it is done, as
//! on a real server: that is how timeouts and retries turn a slowdown into an overload. Errors carry the phase's `retry_after` hint, which
//! the policy honours as a [`Class::RetryAfter`](staunch::classify::Class::RetryAfter). Every
//! other error is transient.
//!
//! # Fan-out: several dependencies per request
//!
//! Name the dependencies instead of the one `[dependency]`, say how a request calls them, and
//! give each its own policy (the canonical checkout: a price with a fallback, then the stock
//! with none):
//!
//! ```toml
//! [request]                            # default: every dependency in sequence, in file order
//! sequence = ["pricing", "inventory"]  # a step may be a list called in parallel:
//!                                      # sequence = ["auth", ["pricing", "inventory"]]
//!                                      # or parallel = ["pricing", "inventory"]
//! [dependencies.pricing]               # the keys of [dependency], phases included
//! latency = "40ms"
//! [[dependencies.pricing.phase]]
//! name = "down"
//! start = "30s"
//! end = "60s"
//! outage = "refused"
//! [dependencies.inventory]
//! latency = "20ms"
//!
//! [policy]
//! name = "staunch"
//! timeout = "5s"                       # the request's deadline, over every call
//! [policy.pricing]                     # the keys of a [policy], but its name
//! fallback = true
//! attempt_timeout = { fixed = "500ms" }
//! [policy.inventory]                   # a dependency without a table gets a bare call
//! attempt_timeout = { fixed = "200ms" }
//! hedge = { max_attempts = 2, delay = "50ms" }          # hedge, throttle, limit: as [policy]
//! limit = { kind = "fixed", limit = 20 }
//! ```
//!
//! A call that fails (no fallback) ends the request; one answered by its fallback does not. A
//! `[policy]` with no dependency table (naive.toml, with `--compare`) is every dependency's,
//! its `timeout` the request's deadline. The report's segments are the windows between phase
//! changes of any dependency ("pricing down + inventory flaky"), and each has a row per
//! dependency beside the request's: the requests that called it, how its calls ended, their own
//! latency (p99 and p99.9), attempts and hedges per call and peak attempts per second; and
//! "Why calls stopped" says, under each dependency's name, why its own calls stopped (a refusal
//! by its limit, its breaker open, ...). A `[dependency]` file means what it always meant.
//!
//! # Fleet: several client instances
//!
//! `[fleet] clients = 10` (or `--clients 10`, over it) runs ten client instances, each with its
//! own breakers, budgets and limits, as ten processes would have; requests go to them in turn
//! and every instance calls the same dependencies. The report's numbers are the fleet's (its
//! total load on each dependency), and a `Fleet` section says how synchronised the instances
//! were (see [`report::Fleet`]): per dependency with a breaker, the largest share of instances
//! open at the same instant and the time-weighted mean of that share while any was open (1.0:
//! they open as one; `1/N`: they take turns); and the most retries in one 100 ms bucket over
//! their mean per bucket with any (1: spread evenly; higher: waves). Hedges, sent on a timer
//! rather than after a failure, are not counted as retries.
//!
//! # The report
//!
//! Per phase (requests grouped by arrival), for each policy: success % (the dependency
//! answered), fallback %, failed %, latency p50 / p99 / p99.9 / max (arrival to answer,
//! whatever the answer), dependency calls per request (the retry amplification factor: 1.0
//! means no retries), hedges sent per request (a hedging policy's calls after the first) and
//! the most calls started in one second (the load the dependency saw). Then, per
//! phase that differs from the baseline, the time from its start until the breaker opened
//! (detection) and, after its end, until the first success, until the first second in which
//! 90% of arrivals succeeded, and until the breaker closed (recovery); the breaker's state
//! changes; and why the calls that the dependency did not answer stopped.
//!
//! Latency quantiles come from a streaming histogram (`hdrhistogram`, three significant digits:
//! within 0.1% of the exact nearest-rank value; the maximum is exact), and every other number is
//! a count kept as the run goes, so memory follows the requests in flight, not the length of the
//! run. The work is bounded by [`Limits`]: every arrival and every dependency call is an event,
//! a load with more arrivals than `max_events` is refused before it starts, and a run that
//! reaches `max_events` events or `max_in_flight` requests in flight stops with a message
//! ([`RunError`]) rather than run for minutes.
//!
//! The report opens with a verdict per policy on the whole run (the share of requests answered,
//! by the dependency or the fallback, the p99, the p99.9 once a thousand requests finished, the
//! calls per request, and the hedges per request of a policy that sent any) and with a sentence
//! for each phase in which a policy answered at least
//! [`NOTABLE_FALLBACK`](report::NOTABLE_FALLBACK) of requests from its fallback where another
//! policy got more answers from the dependency but took at least twice as long (or, alone, while
//! the dependency was still answering): a trade of fresh answers for time, made on purpose. A
//! share never rounds to a lie: one that is not exactly 100% prints as ">99.9% (all but 3)", one
//! that is not exactly 0 as "<0.1% (2)".
//!
//! `--format json` prints the same as one object: `{scenario, seed, rate_per_second,
//! duration_ms, requests, notes, policies: [{name, verdict, settings, overall, phases: [{name,
//! start_ms, end_ms, stats, dependencies?, incident?}], dependencies, breaker, stop_reasons}]}`;
//! shares are fractions in `[0, 1]` (with their `counts` beside them), times are milliseconds.
//! With named dependencies, `dependencies` lists `{name, overall, stop_reasons}` per policy and
//! `{name, stats}` per phase, and each breaker change names its `dependency`; with a fleet, each
//! names its `client`, and `fleet` holds `{clients, breakers: [{dependency, peak_open_share,
//! open_together}], retries, retry_peak_to_mean}` (`null` for one client).
//!
//! # Examples
//!
//! ```no_run
//! use std::path::Path;
//! use staunch_lab::simulate::{self, Policy, Scenario};
//!
//! let scenario = Scenario::from_file(Path::new("scenarios/hard-outage.toml"))?;
//! let naive = Policy::from_file(Path::new("scenarios/naive.toml"))?;
//! let report = simulate::simulate(&scenario, &[scenario.policy.clone(), naive], 2015)?;
//! report.write_table(&mut std::io::stdout().lock())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod duration;
pub mod engine;
mod html;
pub mod report;
mod scenario;
pub mod tally;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use duration::format_duration;
pub use engine::{Ceiling, DEFAULT_MAX_EVENTS, DEFAULT_MAX_IN_FLIGHT, Limits, RunError};
pub use html::CHARTS;
pub use report::Report;
pub use scenario::{
    Arrivals, Behaviour, Calls, Dependency, Latency, Load, MAX_CLIENTS, MAX_DEPENDENCIES,
    MAX_PHASES, MAX_REQUESTS, Outage, Phase, Policy, Scenario, ScenarioError, check_clients,
};

/// Runs every policy in `policies` on `scenario` with `seed` and reports them side by side,
/// with the default [`Limits`] and no progress bar.
///
/// # Errors
///
/// As [`simulate_with`].
pub fn simulate(scenario: &Scenario, policies: &[Policy], seed: u64) -> Result<Report, RunError> {
    simulate_with(scenario, policies, seed, Limits::default(), false)
}

/// Runs every policy in `policies` on `scenario` with `seed` within `limits`, with a progress
/// bar on stderr if `progress` (shown only after a second, and only on a terminal).
///
/// # Errors
///
/// [`RunError::Invalid`]: a policy is invalid (those read from files were checked already), or
/// the runtime could not start. [`RunError::Refused`]: the load alone has more arrivals than
/// `limits.max_events`. [`RunError::Stopped`]: a policy's run reached `limits.max_events`.
pub fn simulate_with(
    scenario: &Scenario,
    policies: &[Policy],
    seed: u64,
    limits: Limits,
    progress: bool,
) -> Result<Report, RunError> {
    // Every arrival is an event: a load with more arrivals than the ceiling cannot fit, whatever
    // the policy, so it is refused before any work.
    let requests = engine::ArrivalTimes::new(&scenario.load, seed).count() as u64;
    if requests > limits.max_events {
        return Err(RunError::Refused(format!(
            "the load makes {requests} requests, more than the ceiling of {} events (--max-events) \
             before any call; lower load.rate or load.duration, or raise --max-events",
            limits.max_events
        )));
    }
    let segments = report::segments_of(&scenario.load, &scenario.calls);
    let total = requests * policies.len() as u64;
    let bar = if progress {
        crate::progress::Progress::stderr(total, "simulate")
    } else {
        crate::progress::Progress::off()
    };
    let mut reports = Vec::with_capacity(policies.len());
    for (k, policy) in policies.iter().enumerate() {
        bar.set_message(format!("simulate: policy {}", policy.name));
        bar.set_base(k as u64 * requests);
        let scene = engine::Scene {
            load: &scenario.load,
            calls: &scenario.calls,
            clients: scenario.clients,
        };
        let (recorder, transitions) = engine::run_with(
            scene,
            policy,
            seed,
            limits,
            report::recorder(&segments, &scenario.load, scenario.calls.dependencies.len()),
            &bar,
        )?;
        reports.push(report::PolicyReport::new(
            policy,
            scene,
            &recorder,
            transitions,
            &segments,
        ));
    }
    bar.finish();
    Ok(Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seed,
        load: scenario.load,
        requests: requests as usize,
        segments,
        policies: reports,
    })
}

/// How the command prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Tables for people.
    Table,
    /// One JSON object.
    Json,
}

/// What the `simulate` command was asked for, beyond the scenario file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also run the policy of this file, side by side.
    pub compare: Option<PathBuf>,
    /// The seed (`--seed`), over the scenario's.
    pub seed: Option<u64>,
    /// The seed when neither `--seed` nor the scenario gives one.
    pub default_seed: u64,
    /// How to print the report.
    pub output: Output,
    /// Bounds on each policy's run.
    pub limits: Limits,
    /// A progress bar on stderr (shown after a second, on a terminal only).
    pub progress: bool,
    /// Also write a self-contained HTML report to this file.
    pub html: Option<PathBuf>,
    /// Client instances (`--clients`), over the scenario's `[fleet] clients`.
    pub clients: Option<usize>,
}

/// The whole `simulate` command: reads the files, runs, prints.
///
/// # Errors
///
/// A file is missing or invalid, or the run is refused for its size
/// ([`io::ErrorKind::InvalidInput`], with a message naming the file and the field, or the
/// ceiling); a run was stopped at the ceiling (an [`io::Error`] wrapping [`RunError::Stopped`]);
/// or writing to `out` failed.
pub fn run_command(scenario: &Path, options: &Options, out: &mut impl Write) -> io::Result<()> {
    let invalid = |e: ScenarioError| io::Error::new(io::ErrorKind::InvalidInput, e);
    let mut scenario = Scenario::from_file(scenario).map_err(invalid)?;
    if let Some(clients) = options.clients {
        scenario.clients = clients;
    }
    let mut policies = vec![scenario.policy.clone()];
    if let Some(other) = &options.compare {
        let names = if scenario.calls.named {
            scenario.calls.names()
        } else {
            Vec::new()
        };
        let mut other = Policy::from_file_for(other, &names).map_err(invalid)?;
        if other.name == policies[0].name {
            other.name.push_str(" (2)");
        }
        policies.push(other);
    }
    let seed = options
        .seed
        .or(scenario.seed)
        .unwrap_or(options.default_seed);
    // Create the HTML file first: a bad path should not cost a whole run.
    let mut html = match &options.html {
        Some(path) => Some((
            path,
            std::fs::File::create(path).map_err(|e| {
                io::Error::other(RunError::Invalid(format!(
                    "cannot create {}: {e}",
                    path.display()
                )))
            })?,
        )),
        None => None,
    };
    let report = simulate_with(&scenario, &policies, seed, options.limits, options.progress)
        .map_err(|e| match e {
            RunError::Stopped { .. } => io::Error::other(e),
            e => io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
    if let Some((path, file)) = &mut html {
        let mut writer = io::BufWriter::new(file);
        report
            .write_html(&mut writer)
            .and_then(|()| writer.flush())
            .map_err(|e| {
                io::Error::other(RunError::Invalid(format!(
                    "cannot write {}: {e}",
                    path.display()
                )))
            })?;
    }
    match options.output {
        Output::Table => report.write_table(out),
        Output::Json => report.write_json(out),
    }
}
