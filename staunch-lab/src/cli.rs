//! The command line: `staunch-lab <subcommand>`.
//!
//! Parsing errors (an unknown flag, `--clients 0`, `--runs 0`, ...) are reported by clap with a
//! usage line and exit code 2; so are invalid input files (a scenario that is not valid TOML or
//! has a bad value), with a message that names the file and the field.

use std::fmt;
use std::io::{self, Write};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::demo::{self, DemoConfig, Progress, Schedule};
use crate::jitter::{self, Algorithm, Summary};
use crate::simulate;

/// The largest client count the command line accepts: with no backoff the work grows like N²,
/// and beyond this a run takes minutes.
pub const MAX_CLIENTS: usize = 1000;

/// The seed used when `--seed` is not given, so that the default output is reproducible.
pub const DEFAULT_SEED: u64 = 2015;

/// See what staunch does to an outage: experiments on the staunch resilience library.
#[derive(Debug, Parser)]
#[command(
    name = "staunch-lab",
    version,
    propagate_version = true,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `staunch-lab`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Why backoff needs jitter: N clients race to update one row under optimistic
    /// concurrency, in simulated time, with five backoff algorithms.
    #[command(long_about = JITTER_LONG_ABOUT)]
    Jitter(JitterArgs),
    /// What staunch does to an outage: real services on loopback, a naive checkout and a
    /// staunch one under the same load and the same faults, side by side.
    #[command(long_about = DEMO_LONG_ABOUT, after_help = demo_after_help())]
    Demo(DemoArgs),
    /// Run a retry/breaker/timeout policy against a failure scenario (a TOML file) in virtual
    /// time, and report what it did to latency, errors and the dependency's load.
    #[command(long_about = SIMULATE_LONG_ABOUT, after_help = EXIT_CODES)]
    Simulate(SimulateArgs),
}

const DEMO_LONG_ABOUT: &str = "\
What staunch does to an outage: real services on loopback, side by side.

Starts, inside this process, HTTP services on 127.0.0.1 (ephemeral ports): a pricing and an
inventory dependency that follow a fault schedule (by default: healthy; pricing slow at
600-2000 ms; pricing hard down with 503s and dropped connections; inventory flaky at 30% 503
with Retry-After; recovery), every fault injected into their healthy handlers by staunch's
own fault injection (staunch::chaos), and two builds of a checkout service that gets a price
(with a fallback price) and then the stock (no fallback):
  naive    fixed-delay retries with no jitter, no timeouts, no circuit breaker
  staunch  a 5 s request deadline; pricing capped at 500 ms per attempt behind a circuit
           breaker, with a fallback price; inventory capped at 200 ms, Retry-After honoured
An open-loop load generator sends the same requests at the same instants to both builds over
HTTP. Progress goes to stderr, one line per phase; then the report: per phase and build, the
share of successful and fallback answers, p50/p99/max latency, the calls each dependency got
per request, and the breaker's state timeline. Every number is measured in the run.";

/// The end of `demo --help`: the schedule format (from the default schedule itself) and the exit
/// codes.
fn demo_after_help() -> String {
    format!(
        "A schedule file (--schedule) is JSON; the default schedule is:
{}
Modes: healthy (latency_ms), slow (latency_ms), down (drop_share), flaky (error_rate,
retry_after_ms, latency_ms). A flaky dependency refuses a retry that comes back before its
Retry-After, as a rate limiter would. A dependency left out is healthy; \"pricing\": \"down\"
is short for the mode with its defaults.

Exit codes:
  0  the demo ran and its report was written
  1  the demo could not run (no loopback port, no runtime) or an output could not be written
  2  invalid arguments or schedule file",
        demo::EXAMPLE
    )
}

/// Options of `staunch-lab demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Length of the run: the schedule's phases are stretched or shrunk in proportion
    /// (seconds, like 20 or 20s or 1500ms; at most 600 s) [default: the schedule's own, 35 s
    /// for the default schedule]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Checkout requests per second, sent to each build (more than 0, at most 1000)
    #[arg(long, value_name = "REQ_PER_S", value_parser = parse_rate, default_value = "20")]
    pub rate: f64,

    /// Seed of every random decision (dependency latencies and failures, jitter)
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// A JSON fault schedule to run instead of the default one (format below)
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,

    /// Output format of the report on stdout
    #[arg(long, value_enum, default_value_t = DemoFormat::Table)]
    pub format: DemoFormat,

    /// Also write a self-contained HTML report with charts (no network needed to view it)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// No progress lines on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// How `demo` prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoFormat {
    /// A side-by-side table per phase, for people
    Table,
    /// One JSON object: the run, per-phase numbers per build, the breaker timeline
    Json,
}

/// The highest `--rate` the demo accepts: beyond it a laptop measures itself, not the policies.
pub const MAX_RATE: f64 = 1000.0;

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    match number.trim().parse::<f64>().map(|x| x * scale) {
        Ok(secs) if secs > 0.0 && secs <= demo::MAX_TOTAL.as_secs_f64() => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "a duration must be more than 0 and at most {} s, like 20, 20s or 1500ms",
            demo::MAX_TOTAL.as_secs()
        )),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= MAX_RATE => Ok(rate),
        _ => Err(format!(
            "the rate must be a number of requests per second, more than 0 and at most {MAX_RATE}"
        )),
    }
}

const EXIT_CODES: &str = "\
Exit codes: 0 success; 1 a run could not be made (or was stopped at its ceiling) or its output
written; 2 invalid arguments or input file, or work refused before it starts for its size.";

const SIMULATE_LONG_ABOUT: &str = "\
Run a policy against a failure scenario in virtual time, deterministically.

SCENARIO.toml describes the load ([load]: rate, duration), the dependency ([dependency]: latency
distribution, error rate, Retry-After, and [[dependency.phase]] windows such as a brownout or a
hard outage) and the policy ([policy]: retry, budget, breaker, attempt_timeout, timeout,
fallback, written with staunch's own config types). A request may instead call several named
dependencies ([dependencies.NAME], [request] sequence or parallel), each with its own
[policy.NAME] under the request's timeout. The run drives staunch's real Pipeline on a
paused tokio clock, so minutes of traffic run in about a second, and the same seed prints the
same report.

The report gives, per phase: success %, fallback %, p50/p99/max latency, dependency calls per
request (retry amplification) and peak calls per second; the time to detect each phase (breaker
opened) and to recover after it (first success, 90% success, breaker closed); the breaker's
state changes; and why calls stopped. Ready-made scenarios are in staunch-lab/scenarios/.

Memory follows the requests in flight, not the length of the run (latency quantiles come from a
streaming histogram, within 0.1%), and the work is bounded: every arrival and every call is an
event, and a run stops with a message at --max-events events or --max-in-flight requests in
flight. A progress bar shows on stderr for runs longer than a second, on a terminal only.";

/// Options of `staunch-lab simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario to run: a TOML file with the tables load, dependency and policy
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,

    /// Also run the policy of this file on the same scenario and seed, side by side (its load
    /// and dependency tables, if any, are ignored)
    #[arg(long, value_name = "OTHER.toml")]
    pub compare: Option<PathBuf>,

    /// Seed of all randomness (default: the scenario's `seed`, else 2015): the same seed prints
    /// the same report
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Output format
    #[arg(long, value_enum, default_value_t = SimulateFormat::Table)]
    pub format: SimulateFormat,

    /// The most events one policy's run may take: every arrival and every call to a dependency
    /// is one. A load with more arrivals is refused before it starts; a run that reaches it
    /// (retries without bound, say) is stopped with a message and exit code 1
    #[arg(long, value_name = "N", value_parser = parse_max_events, default_value_t = NonZeroU64::new(simulate::DEFAULT_MAX_EVENTS).expect("the default is above 0"))]
    pub max_events: NonZeroU64,

    /// The most requests one run may hold in flight at once (each takes about 3 KB); a run that
    /// reaches it (a dependency that never answers and no timeout, say) is stopped with a
    /// message and exit code 1
    #[arg(long, value_name = "N", value_parser = parse_max_in_flight, default_value_t = NonZeroU64::new(simulate::DEFAULT_MAX_IN_FLIGHT).expect("the default is above 0"))]
    pub max_in_flight: NonZeroU64,

    /// No progress bar on stderr (it shows only on a terminal, for runs longer than a second)
    #[arg(long, short)]
    pub quiet: bool,

    /// Client instances, each with its own breakers, budgets and limits (as separate processes
    /// have), sharing the load in turn and the dependencies; over the scenario's `[fleet]`
    /// clients (1 to 1000) [default: the scenario's, else 1]
    #[arg(long, value_name = "N", value_parser = parse_fleet)]
    pub clients: Option<usize>,

    /// Also write a self-contained HTML report with charts over time of the load on the
    /// dependency, latency, the breaker's state and the goodput, every policy side by side (no
    /// network needed to view it)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// How `simulate` prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimulateFormat {
    /// Tables for people: metrics as rows, one column per policy
    Table,
    /// One JSON object with every number and every breaker state change
    Json,
}

const JITTER_LONG_ABOUT: &str = "\
Why backoff needs jitter: N clients race to update one row under optimistic concurrency.

Every client reads the row's version, then writes with it; the server accepts a write only if
the version still matches. A rejected client waits backoff(n), then reads again. Every message
takes |Normal(10 ms, 2 ms)|. The simulation runs in virtual time on staunch's own Backoff
iterators (base 5 ms, cap 2000 ms) and reports, per client count and algorithm, the mean over
--runs of the write calls the server handled and the time until the last client succeeded.";

/// Options of `staunch-lab jitter`.
#[derive(Debug, Args)]
pub struct JitterArgs {
    /// Client counts to simulate, comma-separated (each 1 to 1000; sorted, duplicates dropped)
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        value_parser = parse_clients,
        default_value = "10,50,100,190"
    )]
    pub clients: Vec<NonZeroUsize>,

    /// Runs to average per client count and algorithm (at least 1)
    #[arg(long, value_name = "RUNS", value_parser = parse_runs, default_value = "100")]
    pub runs: NonZeroU32,

    /// Seed of all randomness: the same seed prints the same numbers
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// The most events (messages delivered) the whole experiment may take: one whose least work
    /// (4 messages per client, run and algorithm) is above it is refused before it starts; one
    /// that reaches it is stopped with a message and exit code 1
    #[arg(long, value_name = "N", value_parser = parse_max_events, default_value_t = NonZeroU64::new(jitter::DEFAULT_MAX_EVENTS).expect("the default is above 0"))]
    pub max_events: NonZeroU64,

    /// No progress bar on stderr (it shows only on a terminal, for runs longer than a second)
    #[arg(long, short)]
    pub quiet: bool,
}

/// How `jitter` prints its results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Two tables for people, with an explanation of the numbers
    Table,
    /// One JSON array of {"clients", "algorithm", "calls", "time_ms"} objects
    Json,
}

fn parse_clients(s: &str) -> Result<NonZeroUsize, String> {
    match s.trim().parse::<usize>() {
        Ok(n @ 1..=MAX_CLIENTS) => Ok(NonZeroUsize::new(n).expect("n is at least 1")),
        _ => Err(format!(
            "a client count must be a whole number from 1 to {MAX_CLIENTS}"
        )),
    }
}

/// A whole number of at least 1, with optional `_` separators (`10_000_000`).
fn parse_count(s: &str, what: &str) -> Result<NonZeroU64, String> {
    let digits = s.trim().replace('_', "");
    match digits.parse::<u64>().ok().and_then(NonZeroU64::new) {
        Some(n) => Ok(n),
        None => Err(format!(
            "the ceiling must be a whole number of {what}, at least 1 (like 100000 or 100_000)"
        )),
    }
}

fn parse_max_events(s: &str) -> Result<NonZeroU64, String> {
    parse_count(s, "events")
}

fn parse_max_in_flight(s: &str) -> Result<NonZeroU64, String> {
    parse_count(s, "requests")
}

fn parse_fleet(s: &str) -> Result<usize, String> {
    let n = s.trim().parse::<i64>().map_err(|_| {
        format!(
            "a fleet is a whole number of client instances from 1 to {}",
            simulate::MAX_CLIENTS
        )
    })?;
    simulate::check_clients(n)
}

fn parse_runs(s: &str) -> Result<NonZeroU32, String> {
    match s.trim().parse::<u32>().ok().and_then(NonZeroU32::new) {
        Some(n) => Ok(n),
        None => Err("the number of runs must be a whole number, at least 1".to_owned()),
    }
}

/// Parses the process's arguments and runs the subcommand: the whole program.
///
/// Exit codes: 0 on success (and when the reader of stdout goes away early), 1 if stdout cannot
/// be written or the demo cannot run, 2 for invalid arguments or an invalid input file (a demo
/// schedule, a simulate scenario).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = run(&cli, &mut out).and_then(|()| out.flush());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `staunch-lab jitter | head`: the reader has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        // A bad input file: the message names the file and the field.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("staunch-lab: {e}");
            ExitCode::from(2)
        }
        Err(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<Failed>() || inner.is::<simulate::RunError>()) =>
        {
            eprintln!("staunch-lab: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("staunch-lab: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command, writing its output to `out`.
///
/// # Errors
///
/// Writing to `out` failed; an invalid input ([`io::ErrorKind::InvalidInput`]): a demo schedule
/// or rate, a simulate scenario; or a demo that could not run or write its HTML report.
pub fn run(cli: &Cli, out: &mut impl Write) -> io::Result<()> {
    match &cli.command {
        Command::Jitter(args) => run_jitter(args, out),
        Command::Demo(args) => run_demo(args, out),
        Command::Simulate(args) => run_simulate(args, out),
    }
}

/// A failure other than writing stdout, with a message that says what failed.
#[derive(Debug)]
struct Failed(String);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn failed(message: String) -> io::Error {
    io::Error::other(Failed(message))
}

fn run_demo(args: &DemoArgs, out: &mut impl Write) -> io::Result<()> {
    let schedule = match &args.schedule {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(format!("cannot read the schedule {}: {e}", path.display()))
            })?;
            Schedule::from_json(&text)
                .map_err(|e| invalid(format!("invalid schedule {}: {e}", path.display())))?
        }
        None => Schedule::standard(),
    };
    let schedule = match args.duration {
        Some(duration) => schedule
            .scaled_to(duration)
            .map_err(|e| invalid(format!("--duration: {}", e.message())))?,
        None => schedule,
    };
    let config = DemoConfig {
        schedule,
        rate: args.rate,
        seed: args.seed,
        progress: if args.quiet {
            Progress::Off
        } else {
            Progress::Auto
        },
    };
    config
        .validate()
        .map_err(|e| invalid(format!("--rate: {}", e.message())))?;
    // Create the HTML file first: a bad path should not cost a whole run.
    let mut html = match &args.html {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))?,
        )),
        None => None,
    };
    let report =
        demo::run_blocking(&config).map_err(|e| failed(format!("the demo could not run: {e}")))?;
    if let Some((path, file)) = &mut html {
        let mut writer = io::BufWriter::new(file);
        report
            .write_html(&mut writer)
            .and_then(|()| writer.flush())
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
    }
    match args.format {
        DemoFormat::Table => report.write_table(out),
        DemoFormat::Json => report.write_json(out),
    }
}

fn run_simulate(args: &SimulateArgs, out: &mut impl Write) -> io::Result<()> {
    let output = match args.format {
        SimulateFormat::Table => simulate::Output::Table,
        SimulateFormat::Json => simulate::Output::Json,
    };
    let options = simulate::Options {
        compare: args.compare.clone(),
        seed: args.seed,
        default_seed: DEFAULT_SEED,
        output,
        limits: simulate::Limits {
            max_events: args.max_events.get(),
            max_in_flight: args.max_in_flight.get(),
        },
        progress: !args.quiet,
        html: args.html.clone(),
        clients: args.clients,
    };
    simulate::run_command(&args.scenario, &options, out)
}

fn run_jitter(args: &JitterArgs, out: &mut impl Write) -> io::Result<()> {
    let mut clients = args.clients.clone();
    clients.sort_unstable();
    clients.dedup();
    let results = jitter::experiment_bounded(
        &clients,
        args.runs,
        args.seed,
        args.max_events.get(),
        !args.quiet,
    )
    .map_err(|e| match e {
        jitter::ExperimentError::Refused { .. } => invalid(e.to_string()),
        jitter::ExperimentError::Stopped { .. } => failed(e.to_string()),
    })?;
    match args.format {
        Format::Table => write_table(out, &results, args.runs, args.seed),
        Format::Json => write_json(out, &results),
    }
}

/// Writes `results` as one JSON array of `{"clients", "algorithm", "calls", "time_ms"}`
/// objects, one object per line.
///
/// # Errors
///
/// Writing to `out` failed.
pub fn write_json(out: &mut impl Write, results: &[Summary]) -> io::Result<()> {
    // Hand-written: the keys and algorithm names are fixed ASCII, and the numbers are finite
    // (counts and times of a finished simulation), printed so that they stay floats ("6.0").
    writeln!(out, "[")?;
    for (i, s) in results.iter().enumerate() {
        let separator = if i + 1 < results.len() { "," } else { "" };
        writeln!(
            out,
            r#"  {{"clients": {}, "algorithm": "{}", "calls": {}, "time_ms": {}}}{separator}"#,
            s.clients,
            s.algorithm.name(),
            json_number(s.calls),
            json_number(s.time_ms),
        )?;
    }
    writeln!(out, "]")
}

/// A float as a JSON number: Rust's `Debug` form ("6.0", "1e20", "1.5e-7") is valid JSON for
/// finite values; JSON has no NaN or infinity, so those (never produced here) become `null`.
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".to_owned()
    }
}

/// Writes `results` as two tables, work and completion time, one row per client count and one
/// column per algorithm, with a header saying what the numbers mean.
///
/// # Errors
///
/// Writing to `out` failed.
pub fn write_table(
    out: &mut impl Write,
    results: &[Summary],
    runs: NonZeroU32,
    seed: u64,
) -> io::Result<()> {
    let runs = runs.get();
    writeln!(
        out,
        "Jitter experiment: N clients each update one row once under optimistic concurrency."
    )?;
    writeln!(
        out,
        "A rejected write waits backoff(n) before reading again (base 5 ms, cap 2000 ms);"
    )?;
    writeln!(
        out,
        "every message takes |Normal(10 ms, 2 ms)|. Means of {runs} run{} per cell, seed {seed}, virtual time.",
        if runs == 1 { "" } else { "s" }
    )?;
    writeln!(out)?;
    for line in [
        "Backoff before retry n, with e(n) = min(cap, base * 2^n):",
        "  none          no wait              exponential   e(n), no jitter",
        "  full          U(0, e(n))           equal         e(n)/2 + U(0, e(n)/2)",
        "  decorrelated  U(base, min(cap, 3 * previous delay))",
    ] {
        writeln!(out, "{line}")?;
    }

    writeln!(out)?;
    writeln!(
        out,
        "Work: write calls the server handled, rejected ones included (at least N; fewer is better)"
    )?;
    write_grid(out, results, |s| format!("{:.1}", s.calls))?;

    writeln!(out)?;
    writeln!(
        out,
        "Completion: ms until the last client learnt its write succeeded (lower is better)"
    )?;
    write_grid(out, results, |s| format!("{:.1}", s.time_ms))
}

/// One row per client count (in the order they first appear), one column per algorithm.
fn write_grid(
    out: &mut impl Write,
    results: &[Summary],
    cell: impl Fn(&Summary) -> String,
) -> io::Result<()> {
    const WIDTH: usize = 13;
    write!(out, "{:>7}", "clients")?;
    for algorithm in Algorithm::ALL {
        write!(out, " {:>WIDTH$}", algorithm.name())?;
    }
    writeln!(out)?;
    let mut rows: Vec<usize> = results.iter().map(|s| s.clients).collect();
    rows.dedup();
    for clients in rows {
        write!(out, "{clients:>7}")?;
        for algorithm in Algorithm::ALL {
            let value = results
                .iter()
                .find(|s| s.clients == clients && s.algorithm == algorithm)
                .map_or_else(|| "-".to_owned(), &cell);
            write!(out, " {value:>WIDTH$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["staunch-lab", "jitter"]).unwrap();
        let Command::Jitter(args) = cli.command else {
            panic!("not jitter");
        };
        let clients: Vec<usize> = args.clients.iter().map(|n| n.get()).collect();
        assert_eq!(clients, [10, 50, 100, 190]);
        assert_eq!(args.runs.get(), 100);
        assert_eq!(args.seed, DEFAULT_SEED);
        assert_eq!(args.format, Format::Table);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["--clients", "0"][..],
            &["--clients", "10,0"],
            &["--clients", "1001"],
            &["--clients", "ten"],
            &["--clients", ""],
            &["--runs", "0"],
            &["--runs", "-3"],
            &["--seed", "-1"],
            &["--format", "xml"],
            &["--bogus"],
        ] {
            let args = ["staunch-lab", "jitter"].iter().chain(bad);
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn json_numbers_stay_floats_and_valid() {
        assert_eq!(json_number(6.0), "6.0");
        assert_eq!(json_number(0.125), "0.125");
        assert_eq!(json_number(1e20), "1e20");
        assert_eq!(json_number(f64::NAN), "null");
        let mut out = Vec::new();
        write_json(&mut out, &[]).unwrap();
        assert_eq!(out, b"[\n]\n");
    }

    #[test]
    fn the_table_names_every_algorithm_and_client_count() {
        let results = jitter::experiment(
            &[NonZeroUsize::new(3).unwrap(), NonZeroUsize::new(4).unwrap()],
            NonZeroU32::new(2).unwrap(),
            1,
        );
        let mut out = Vec::new();
        write_table(&mut out, &results, NonZeroU32::new(2).unwrap(), 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        for algorithm in Algorithm::ALL {
            assert!(text.contains(algorithm.name()), "{text}");
        }
        assert!(text.contains("Means of 2 runs per cell, seed 1"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with(['3', '4']))
            .collect();
        assert_eq!(rows.len(), 4, "{text}"); // two grids, two rows each
    }
}
