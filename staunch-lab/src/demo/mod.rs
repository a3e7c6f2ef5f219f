//! `staunch-lab demo`: what staunch does to an outage, with real services on loopback.
//!
//! One process runs, on `127.0.0.1` with ephemeral ports:
//!
//! - two dependencies, `pricing` and `inventory`, whose behaviour follows a fault
//!   [`Schedule`] (by default: healthy; pricing slow at 600–2000 ms; pricing hard down with 503s
//!   and dropped connections; inventory flaky at 30% 503 with Retry-After; recovery). A flaky
//!   dependency behaves like a rate limiter: a retry of the same request that comes back before
//!   the Retry-After it was given is refused again. Their handlers are healthy and instant:
//!   every latency and failure is injected by the library's own fault injection,
//!   `staunch::chaos`, one policy per phase ([`Fault::injected`] says what each injects);
//! - two builds of a `checkout` service that calls pricing (with a fallback price) and then
//!   inventory (whose failure fails the request): `naive`, with the textbook mistakes (fixed-delay
//!   retries with no jitter, no timeouts, no breaker), and `staunch`, the canonical example of
//!   the library (a 5 s request deadline; pricing capped at 500 ms per attempt behind a circuit
//!   breaker, with a fallback price; inventory capped at 200 ms, no fallback);
//! - an open-loop load generator that sends the same requests, at the same instants, to both
//!   builds over real HTTP.
//!
//! Every number in the [`Report`] is measured in the run: latencies at the load generator,
//! calls at the dependencies, breaker states from the breaker's own state-change callback.
//! Both builds meet the same faults: every random decision of a dependency is drawn from the
//! seed, the request number and the attempt number (the chaos policies draw keyed by request
//! and attempt, `Chaos::decide_keyed`, not in order of arrival).

mod checkout;
mod dependency;
mod html;
mod load;
mod net;
mod report;
mod schedule;

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use checkout::{
    BACKOFF, BREAKER_FAILURES, BREAKER_OPEN, BUDGET_RATIO, DEADLINE, INVENTORY_ATTEMPTS,
    INVENTORY_TIMEOUT, MAX_BACKOFF, MAX_RETRY_AFTER, NAIVE_ATTEMPTS, NAIVE_DELAY, PRICING_ATTEMPTS,
    PRICING_TIMEOUT, Transition,
};
pub use dependency::{Call, CallOutcome, Dependency};
pub use load::{CLIENT_TIMEOUT, MAX_IN_FLIGHT, Outcome, Sample};
pub use report::{PhaseStats, Report, Responses};
pub use schedule::{
    EXAMPLE, Fault, MAX_LATENCY_MS, MAX_PHASES, MAX_TOTAL, Phase, Schedule, ScheduleError,
};

use checkout::Checkout;
use dependency::Server;
use load::{Live, Load};

/// The most requests a run may send to each build.
pub const MAX_REQUESTS: u64 = 100_000;

/// One of the two builds of checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Build {
    /// Fixed-delay retries, no jitter, no timeouts, no breaker.
    Naive,
    /// The staunch pipeline.
    Staunch,
}

impl Build {
    /// Both, in report order.
    pub const ALL: [Self; 2] = [Self::Naive, Self::Staunch];

    /// `naive` or `staunch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Naive => "naive",
            Self::Staunch => "staunch",
        }
    }

    /// 0 for naive, 1 for staunch.
    pub const fn index(self) -> usize {
        match self {
            Self::Naive => 0,
            Self::Staunch => 1,
        }
    }

    /// What the build does, in one line.
    pub fn describe(self) -> String {
        checkout::describe(self)
    }
}

/// How the run reports its progress on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not at all.
    Off,
    /// One line per phase as it ends.
    Lines,
    /// One line per phase, updated in place while the phase runs (for terminals).
    Live,
    /// `Live` if stderr is a terminal, else `Lines`.
    Auto,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// The phases and their faults.
    pub schedule: Schedule,
    /// Checkout requests per second, sent to each build.
    pub rate: f64,
    /// The seed of every random decision (dependency latencies and failures, jitter).
    pub seed: u64,
    /// Progress on stderr.
    pub progress: Progress,
}

impl DemoConfig {
    /// The default run: the standard schedule (35 s) at 20 requests per second.
    pub fn new(seed: u64) -> Self {
        Self {
            schedule: Schedule::standard(),
            rate: 20.0,
            seed,
            progress: Progress::Auto,
        }
    }

    /// How many requests go to each build: one every `1 / rate` seconds for the whole schedule.
    pub fn requests(&self) -> u64 {
        (self.schedule.total().as_secs_f64() * self.rate).round() as u64
    }

    /// Checks the rate and the number of requests.
    ///
    /// # Errors
    ///
    /// A rate that is not a positive finite number, or more than [`MAX_REQUESTS`] requests.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(ScheduleError::new("rate", "must be more than 0"));
        }
        let requests = self.requests();
        if requests == 0 {
            return Err(ScheduleError::new(
                "rate",
                "too low: the run would send no request; raise --rate or --duration",
            ));
        }
        if requests > MAX_REQUESTS {
            return Err(ScheduleError::new(
                "rate",
                format!(
                    "{requests} requests per build is more than {MAX_REQUESTS}; lower --rate or \
                     --duration"
                ),
            ));
        }
        Ok(())
    }
}

/// Runs the demo on a new multi-threaded tokio runtime and returns its report.
///
/// # Errors
///
/// The configuration is invalid ([`io::ErrorKind::InvalidInput`]), or a loopback port cannot be
/// bound, or the runtime cannot start.
pub fn run_blocking(config: &DemoConfig) -> io::Result<Report> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(config));
    // Handlers still sleeping for a slow dependency (their callers gave up) need not finish.
    runtime.shutdown_background();
    report
}

/// Runs the demo on the current tokio runtime (with I/O and time enabled) and returns its
/// report.
///
/// # Errors
///
/// The configuration is invalid ([`io::ErrorKind::InvalidInput`]), or a loopback port cannot be
/// bound.
pub async fn run(config: &DemoConfig) -> io::Result<Report> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let wall = std::time::Instant::now();
    let schedule = Arc::new(config.schedule.clone());
    let requests = config.requests();

    let (pricing_listener, pricing_addr) = net::bind().await?;
    let (inventory_listener, inventory_addr) = net::bind().await?;
    let (naive_listener, naive_addr) = net::bind().await?;
    let (staunch_listener, staunch_addr) = net::bind().await?;

    let start = Instant::now();
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let dependency = |which: Dependency| {
        Server::new(which, Arc::clone(&schedule), start, config.seed).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the {} faults: {e}", which.as_str()),
            )
        })
    };
    let pricing = dependency(Dependency::Pricing)?;
    let inventory = dependency(Dependency::Inventory)?;
    let checkout = |build| {
        Checkout::new(
            build,
            (pricing_addr, inventory_addr),
            requests,
            config.seed,
            start,
            Arc::clone(&timeline),
        )
        .map_err(|e| io::Error::other(format!("the {} build: {e}", build.as_str())))
    };
    let naive = checkout(Build::Naive)?;
    let staunch = checkout(Build::Staunch)?;

    let mut servers = tokio::task::JoinSet::new();
    for (listener, server) in [
        (pricing_listener, Arc::clone(&pricing)),
        (inventory_listener, Arc::clone(&inventory)),
    ] {
        servers.spawn(net::serve(listener, move |request| {
            Arc::clone(&server).handle(request.headers().clone())
        }));
    }
    for (listener, server) in [
        (naive_listener, Arc::clone(&naive)),
        (staunch_listener, Arc::clone(&staunch)),
    ] {
        servers.spawn(net::serve(listener, move |request| {
            Arc::clone(&server).handle(request.headers().clone())
        }));
    }

    let live: Arc<Vec<[Live; 2]>> = Arc::new(
        (0..schedule.phases().len())
            .map(|_| [Live::default(), Live::default()])
            .collect(),
    );
    let progress = match config.progress {
        Progress::Auto if io::stderr().is_terminal() => Progress::Live,
        Progress::Auto => Progress::Lines,
        other => other,
    };
    let reporter = (progress != Progress::Off).then(|| {
        tokio::spawn(report_progress(
            Arc::clone(&schedule),
            start,
            Arc::clone(&live),
            progress == Progress::Live,
        ))
    });

    let load = Load {
        requests,
        rate: config.rate,
        targets: [(Build::Naive, naive_addr), (Build::Staunch, staunch_addr)],
    };
    let samples = load.run(&schedule, start, Arc::clone(&live)).await;
    let finished = start.elapsed();
    if let Some(reporter) = reporter {
        reporter.abort();
        let _ = reporter.await;
        let mut err = io::stderr().lock();
        let last = schedule.phases().len() - 1;
        let _ = writeln!(
            err,
            "{}{}",
            if progress == Progress::Live {
                "\r\x1b[2K"
            } else {
                ""
            },
            progress_line(
                &schedule,
                last,
                &live[last],
                schedule.phase_start(last) + schedule.phases()[last].duration
            )
        );
    }
    servers.abort_all();

    let transitions = std::mem::take(&mut *dependency::lock(&timeline));
    Ok(Report::new(report::Parts {
        schedule: config.schedule.clone(),
        rate: config.rate,
        seed: config.seed,
        requests,
        samples,
        pricing_calls: pricing.calls(),
        inventory_calls: inventory.calls(),
        transitions,
        handled: [naive.handled(), staunch.handled()],
        load_time: finished,
        wall_time: wall.elapsed(),
    }))
}

/// Prints a line per phase on stderr: at the end of each phase (all but the last, which the
/// caller prints once every answer is in), and with `live`, updated in place while it runs.
async fn report_progress(
    schedule: Arc<Schedule>,
    start: Instant,
    live: Arc<Vec<[Live; 2]>>,
    in_place: bool,
) {
    let last = schedule.phases().len() - 1;
    let mut shown = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = start.elapsed();
        let phase = schedule.phase_at(now);
        let mut err = io::stderr().lock();
        while shown < phase {
            let line = progress_line(
                &schedule,
                shown,
                &live[shown],
                schedule.phase_start(shown + 1),
            );
            let _ = writeln!(err, "{}{line}", if in_place { "\r\x1b[2K" } else { "" });
            shown += 1;
        }
        if in_place && shown <= last {
            let line = progress_line(&schedule, shown, &live[shown], now);
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }
}

/// `[2/5] pricing slow   8.0/8.0 s  naive 160 sent, 100% ok, max 1990 ms | staunch ...`
fn progress_line(schedule: &Schedule, phase: usize, live: &[Live; 2], now: Duration) -> String {
    let p = &schedule.phases()[phase];
    let into = now
        .saturating_sub(schedule.phase_start(phase))
        .min(p.duration);
    let mut line = format!(
        "[{}/{}] {:<16} {:>5.1}/{:.1} s",
        phase + 1,
        schedule.phases().len(),
        p.name,
        into.as_secs_f64(),
        p.duration.as_secs_f64()
    );
    for build in Build::ALL {
        let c = &live[build.index()];
        let sent = c.sent.load(Ordering::Relaxed);
        let answered = c.answered.load(Ordering::Relaxed);
        let ok = c.succeeded.load(Ordering::Relaxed);
        let fallback = c.fallback.load(Ordering::Relaxed);
        let pct = |n: u64| {
            if answered == 0 {
                0.0
            } else {
                100.0 * n as f64 / answered as f64
            }
        };
        line.push_str(&format!(
            "  {} {sent:>4} sent, {:>3.0}% ok ({:>3.0}% fallback), max {:>5} ms{}",
            build.as_str(),
            pct(ok),
            pct(fallback),
            c.max_latency_ms.load(Ordering::Relaxed),
            if build == Build::Naive { " |" } else { "" }
        ));
    }
    line
}
