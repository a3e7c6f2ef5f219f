//! The jitter experiment: why retries need jittered backoff.
//!
//! `N` clients start at t = 0 and each wants to update one shared row once under optimistic
//! concurrency: it reads the row's version, then writes with that version; the server accepts
//! the write if the version still matches (and bumps it) and rejects it otherwise. After a
//! rejected write the client waits `backoff(n)` (n = 1 on the first retry) and reads again. A
//! client stops after its first accepted write. Every message (read request, read reply, write
//! request, write reply) takes an independent network delay of `|Normal(10 ms, 2 ms)|`; the
//! server answers instantly.
//!
//! Without jitter, clients that collided once back off by the same amount and collide again,
//! so the server handles many more writes than the `N` that succeed; with no backoff at all the
//! work grows like `N²`. Jitter spreads the retries out. This is the experiment of Marc Brooker's
//! "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015), run on staunch's own
//! [`Backoff`] iterators in virtual time: a discrete-event simulation, nothing sleeps.
//!
//! Everything is deterministic: a run is a pure function of the client count, the algorithm,
//! the run index and the seed, so the same seed prints the same numbers, and a row does not
//! depend on which other rows are computed.
//!
//! # Examples
//!
//! ```
//! use std::num::{NonZeroU32, NonZeroUsize};
//! use staunch_lab::jitter::{self, Algorithm};
//!
//! let clients = NonZeroUsize::new(20).unwrap();
//! let outcome = jitter::run_once(clients, Algorithm::Full, 7);
//! assert_eq!(outcome.accepted, 20); // every client gets its write in
//! assert!(outcome.calls >= 20); // ... after this many write attempts in all
//!
//! let summary = jitter::summarize(clients, Algorithm::Full, NonZeroU32::new(5).unwrap(), 7);
//! assert!(summary.calls >= 20.0);
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use staunch::backoff::{Backoff, Delays, Jitter};

use crate::progress::Progress;

/// The backoff base: the first retry of exponential backoff waits `2 × BASE`, the first draw of
/// decorrelated jitter is at least `BASE`.
pub const BASE: Duration = Duration::from_millis(5);
/// The cap on every backoff delay.
pub const CAP: Duration = Duration::from_millis(2000);
/// Mean one-way network delay of a message.
pub const NETWORK_MEAN: Duration = Duration::from_millis(10);
/// Standard deviation of the one-way network delay.
pub const NETWORK_SD: Duration = Duration::from_millis(2);

/// A backoff algorithm of the experiment, each built from a staunch [`Backoff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// No backoff: retry at once.
    None,
    /// `min(cap, base · 2ⁿ)` with no jitter.
    Exponential,
    /// Full jitter: `U(0, min(cap, base · 2ⁿ))`.
    Full,
    /// Equal jitter: half of `min(cap, base · 2ⁿ)` plus `U(0, that half)`.
    Equal,
    /// Decorrelated jitter: `U(base, min(cap, 3 × previous))`, starting from `base`.
    Decorrelated,
}

impl Algorithm {
    /// Every algorithm, in the order they are reported.
    pub const ALL: [Self; 5] = [
        Self::None,
        Self::Exponential,
        Self::Full,
        Self::Equal,
        Self::Decorrelated,
    ];

    /// The name used on the command line and in the JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Exponential => "exponential",
            Self::Full => "full",
            Self::Equal => "equal",
            Self::Decorrelated => "decorrelated",
        }
    }

    /// The staunch backoff configuration of this algorithm (without a seed).
    ///
    /// The experiment wants retry `n` (n = 1 first) to wait `base · 2ⁿ`, while staunch's
    /// exponential backoff waits `initial · multiplier^(n-1)`; so the exponential kinds start at
    /// `initial = 2 × base` (10 ms, 20 ms, 40 ms, ... up to the cap). Decorrelated jitter uses only
    /// `initial` (its lower bound and first "previous" delay) and the cap, so it starts at `base`.
    pub fn backoff(self) -> Backoff {
        let doubling = Backoff::exponential(BASE * 2)
            .with_multiplier(2.0)
            .with_max_delay(CAP);
        match self {
            Self::None => Backoff::constant(Duration::ZERO).with_jitter(Jitter::None),
            Self::Exponential => doubling.with_jitter(Jitter::None),
            Self::Full => doubling.with_jitter(Jitter::Full),
            Self::Equal => doubling.with_jitter(Jitter::Equal),
            Self::Decorrelated => Backoff::exponential(BASE)
                .with_max_delay(CAP)
                .with_jitter(Jitter::Decorrelated),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one simulated run measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// Write calls the server handled, rejected ones included.
    pub calls: u64,
    /// Writes the server accepted: always the number of clients.
    pub accepted: u64,
    /// Virtual time at which the last client learnt that its write succeeded.
    pub time: Duration,
    /// Messages delivered: the run's work.
    pub events: u64,
}

/// The most events (messages delivered) an experiment may take by default: about ten seconds
/// of work on a laptop, five to ten times the default experiment's.
pub const DEFAULT_MAX_EVENTS: u64 = 100_000_000;

/// The least work of one run with `clients` clients: each reads once and writes once, four
/// messages.
pub const fn min_events(clients: usize) -> u64 {
    4 * clients as u64
}

/// Why an experiment did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExperimentError {
    /// Its least possible work is above the ceiling: refused before it started.
    Refused {
        /// The least events it would take.
        min_events: u64,
        /// The ceiling.
        max_events: u64,
    },
    /// It reached the ceiling and stopped.
    Stopped {
        /// The ceiling.
        max_events: u64,
        /// The client count of the run it stopped in.
        clients: usize,
        /// The algorithm of that run.
        algorithm: Algorithm,
        /// Runs finished before it, for that client count and algorithm.
        runs: u32,
    },
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Refused {
                min_events,
                max_events,
            } => write!(
                f,
                "the experiment takes at least {min_events} events (4 messages per client per \
                 run and algorithm), more than the ceiling of {max_events} (--max-events); lower \
                 --runs or --clients, or raise --max-events"
            ),
            Self::Stopped {
                max_events,
                clients,
                algorithm,
                runs,
            } => write!(
                f,
                "stopped after {max_events} events, the ceiling (--max-events), in run {} of \
                 {clients} clients with {algorithm} backoff; lower --runs or --clients, or raise \
                 --max-events",
                runs + 1
            ),
        }
    }
}

impl std::error::Error for ExperimentError {}

/// The mean of [`RunOutcome`]s over several runs, for one client count and one algorithm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The number of clients.
    pub clients: usize,
    /// The backoff algorithm.
    pub algorithm: Algorithm,
    /// Mean number of write calls the server handled per run (at least `clients`).
    pub calls: f64,
    /// Mean virtual time, in milliseconds, until the last client learnt its write succeeded.
    pub time_ms: f64,
}

/// Simulates `runs` runs (numbered `0..runs`) and averages them.
pub fn summarize(
    clients: NonZeroUsize,
    algorithm: Algorithm,
    runs: NonZeroU32,
    seed: u64,
) -> Summary {
    let mut budget = u64::MAX;
    summarize_bounded(
        clients,
        algorithm,
        runs,
        seed,
        &mut budget,
        &Progress::off(),
    )
    .unwrap_or_else(|_| unreachable!("u64::MAX events are never spent"))
}

/// [`summarize`], spending at most `budget` events (what is left stays in it); `progress`
/// counts the runs.
fn summarize_bounded(
    clients: NonZeroUsize,
    algorithm: Algorithm,
    runs: NonZeroU32,
    seed: u64,
    budget: &mut u64,
    progress: &Progress,
) -> Result<Summary, u32> {
    let (mut calls, mut time_ms) = (0.0, 0.0);
    for run in 0..runs.get() {
        let outcome =
            run_bounded(clients, algorithm, run_seed(seed, clients, run), *budget).ok_or(run)?;
        *budget -= outcome.events;
        calls += outcome.calls as f64;
        time_ms += outcome.time.as_nanos() as f64 / 1e6;
        progress.set(u64::from(run) + 1);
    }
    let n = f64::from(runs.get());
    Ok(Summary {
        clients: clients.get(),
        algorithm,
        calls: calls / n,
        time_ms: time_ms / n,
    })
}

/// Every algorithm for every client count, in that order (client counts outer, algorithms in
/// [`Algorithm::ALL`] order inner).
pub fn experiment(clients: &[NonZeroUsize], runs: NonZeroU32, seed: u64) -> Vec<Summary> {
    clients
        .iter()
        .flat_map(|&n| Algorithm::ALL.map(|algorithm| summarize(n, algorithm, runs, seed)))
        .collect()
}

/// [`experiment`] within `max_events` events (messages delivered) in all, with a progress bar
/// on stderr if `progress` (after a second, on a terminal only).
///
/// # Errors
///
/// [`ExperimentError::Refused`] before any work if the least possible work is above
/// `max_events`; [`ExperimentError::Stopped`] when the work reaches it.
///
/// # Examples
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use staunch_lab::jitter::{self, ExperimentError};
///
/// let clients = [NonZeroUsize::new(100).unwrap()];
/// let runs = NonZeroU32::new(1000).unwrap();
/// // 1000 runs of 100 clients, 5 algorithms: at least 2 million messages.
/// let refused = jitter::experiment_bounded(&clients, runs, 1, 1_000_000, false);
/// assert!(matches!(refused, Err(ExperimentError::Refused { min_events: 2_000_000, .. })));
/// ```
pub fn experiment_bounded(
    clients: &[NonZeroUsize],
    runs: NonZeroU32,
    seed: u64,
    max_events: u64,
    progress: bool,
) -> Result<Vec<Summary>, ExperimentError> {
    let per_algorithm: u64 = clients.iter().map(|n| min_events(n.get())).sum();
    let min_events = per_algorithm
        .saturating_mul(Algorithm::ALL.len() as u64)
        .saturating_mul(u64::from(runs.get()));
    if min_events > max_events {
        return Err(ExperimentError::Refused {
            min_events,
            max_events,
        });
    }
    let cells = (clients.len() * Algorithm::ALL.len()) as u64;
    let bar = if progress {
        Progress::stderr(cells * u64::from(runs.get()), "jitter: runs")
    } else {
        Progress::off()
    };
    let mut budget = max_events;
    let mut results = Vec::with_capacity(cells as usize);
    for (i, &n) in clients.iter().enumerate() {
        for (j, algorithm) in Algorithm::ALL.into_iter().enumerate() {
            bar.set_base(((i * Algorithm::ALL.len() + j) as u64) * u64::from(runs.get()));
            let summary =
                summarize_bounded(n, algorithm, runs, seed, &mut budget, &bar).map_err(|run| {
                    ExperimentError::Stopped {
                        max_events,
                        clients: n.get(),
                        algorithm,
                        runs: run,
                    }
                })?;
            results.push(summary);
        }
    }
    bar.finish();
    Ok(results)
}

/// The seed of run `run` with `clients` clients. The same for every algorithm, so that the
/// algorithms are compared on the same random network as far as their event orders allow.
fn run_seed(seed: u64, clients: NonZeroUsize, run: u32) -> u64 {
    mix(mix(seed, clients.get() as u64), u64::from(run))
}

/// Combines two values into a well-spread seed (SplitMix64's finalizer over both).
fn mix(a: u64, b: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix(a ^ splitmix(b))
}

/// A message in flight, delivered at its event's time.
#[derive(Clone, Copy, Debug)]
enum Message {
    /// Client to server: what is the version?
    ReadRequest,
    /// Server to client: the version at the time of the read.
    ReadReply { version: u64 },
    /// Client to server: write, if the version is still this.
    WriteRequest { version: u64 },
    /// Server to client: whether the write was accepted.
    WriteReply { accepted: bool },
}

/// A message to deliver at `at`; ties are broken by `seq`, the order of scheduling.
#[derive(Debug)]
struct Event {
    at: Duration,
    seq: u64,
    client: usize,
    message: Message,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The event queue and the network, in virtual time.
struct Simulation {
    queue: BinaryHeap<Reverse<Event>>,
    next_seq: u64,
    network: fastrand::Rng,
}

impl Simulation {
    /// Sends `message` to or from `client` at `now`: it arrives after a network delay.
    fn send(&mut self, now: Duration, client: usize, message: Message) {
        let at = now + network_delay(&mut self.network);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Event {
            at,
            seq,
            client,
            message,
        }));
    }
}

/// One draw of `|Normal(NETWORK_MEAN, NETWORK_SD)|` (Box–Muller).
fn network_delay(rng: &mut fastrand::Rng) -> Duration {
    // 1 - [0, 1) is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let nanos = NETWORK_MEAN.as_nanos() as f64 + z * NETWORK_SD.as_nanos() as f64;
    // |z| < 40 for any f64 draw, so this is finite and far below u64::MAX.
    Duration::from_nanos(nanos.abs().round() as u64)
}

/// Simulates one run: `clients` clients with `algorithm`, all randomness drawn from `seed`
/// (client `i`'s backoff is seeded from `seed` and `i`, the network from `seed`).
pub fn run_once(clients: NonZeroUsize, algorithm: Algorithm, seed: u64) -> RunOutcome {
    run_bounded(clients, algorithm, seed, u64::MAX)
        .unwrap_or_else(|| unreachable!("u64::MAX events are never spent"))
}

/// [`run_once`], or `None` as soon as it would deliver more than `max_events` messages.
pub fn run_bounded(
    clients: NonZeroUsize,
    algorithm: Algorithm,
    seed: u64,
    max_events: u64,
) -> Option<RunOutcome> {
    let config = algorithm.backoff();
    let mut backoffs: Vec<Delays> = (0..clients.get())
        .map(|i| {
            config
                .with_seed(mix(seed, i as u64 + 1))
                .delays()
                .expect("the experiment's backoff configs are valid")
        })
        .collect();
    let mut sim = Simulation {
        queue: BinaryHeap::with_capacity(clients.get()),
        next_seq: 0,
        network: fastrand::Rng::with_seed(mix(seed, 0)),
    };
    for client in 0..clients.get() {
        sim.send(Duration::ZERO, client, Message::ReadRequest);
    }

    let mut version = 0_u64;
    let mut outcome = RunOutcome {
        calls: 0,
        accepted: 0,
        time: Duration::ZERO,
        events: 0,
    };
    while let Some(Reverse(Event {
        at: now,
        client,
        message,
        ..
    })) = sim.queue.pop()
    {
        if outcome.events == max_events {
            return None;
        }
        outcome.events += 1;
        match message {
            Message::ReadRequest => sim.send(now, client, Message::ReadReply { version }),
            Message::ReadReply { version: seen } => {
                sim.send(now, client, Message::WriteRequest { version: seen });
            }
            Message::WriteRequest { version: expected } => {
                outcome.calls += 1;
                let accepted = expected == version;
                if accepted {
                    version += 1;
                }
                sim.send(now, client, Message::WriteReply { accepted });
            }
            Message::WriteReply { accepted: true } => {
                outcome.accepted += 1;
                outcome.time = now;
            }
            Message::WriteReply { accepted: false } => {
                // The delays are endless; `ZERO` is unreachable but keeps this panic-free.
                let wait = backoffs[client].next().unwrap_or(Duration::ZERO);
                sim.send(now + wait, client, Message::ReadRequest);
            }
        }
    }
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(algorithm: Algorithm, n: usize) -> Vec<Duration> {
        algorithm
            .backoff()
            .with_seed(3)
            .delays()
            .unwrap()
            .take(n)
            .collect()
    }

    #[test]
    fn exponential_retry_n_waits_base_times_two_to_the_n() {
        let expected: Vec<Duration> = (1..=12_u32)
            .map(|n| (BASE * 2_u32.pow(n)).min(CAP))
            .collect();
        assert_eq!(delays(Algorithm::Exponential, 12), expected);
        assert_eq!(expected[0], 10 * MS);
        assert_eq!(expected[8], 2000 * MS); // 5 ms · 2⁹ = 2560 ms, capped
    }

    #[test]
    fn none_never_waits() {
        assert!(delays(Algorithm::None, 50).iter().all(|d| d.is_zero()));
    }

    #[test]
    fn jittered_delays_stay_in_their_ranges() {
        for seed in 0..50 {
            let draws = |algorithm: Algorithm| -> Vec<Duration> {
                algorithm
                    .backoff()
                    .with_seed(seed)
                    .delays()
                    .unwrap()
                    .take(12)
                    .collect()
            };
            let exp = delays(Algorithm::Exponential, 12);
            for (d, cap) in draws(Algorithm::Full).into_iter().zip(&exp) {
                assert!(d <= *cap, "full {d:?} > {cap:?}");
            }
            for (d, cap) in draws(Algorithm::Equal).into_iter().zip(&exp) {
                assert!(d >= *cap / 2 && d <= *cap, "equal {d:?} vs {cap:?}");
            }
            let mut previous = BASE;
            for d in draws(Algorithm::Decorrelated) {
                assert!(
                    d >= BASE && d <= (previous * 3).min(CAP),
                    "decorrelated {d:?} after {previous:?}"
                );
                previous = d;
            }
        }
    }

    #[test]
    fn network_delay_has_the_right_mean_and_spread() {
        let mut rng = fastrand::Rng::with_seed(1);
        let samples: Vec<f64> = (0..20_000)
            .map(|_| network_delay(&mut rng).as_secs_f64() * 1e3)
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!((mean - 10.0).abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.1, "sd {}", var.sqrt());
        assert!(samples.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn a_single_client_succeeds_first_time_in_four_messages() {
        for algorithm in Algorithm::ALL {
            let outcome = run_once(NonZeroUsize::MIN, algorithm, 9);
            assert_eq!((outcome.calls, outcome.accepted), (1, 1));
            assert!(
                outcome.time > 20 * MS && outcome.time < 80 * MS,
                "{:?}",
                outcome.time
            );
        }
    }

    #[test]
    fn calls_are_bounded_by_n_squared() {
        // Each rejection of a client is caused by a distinct accepted write of another client
        // between its read and its write, so a client is rejected at most N - 1 times.
        let n = NonZeroUsize::new(30).unwrap();
        for algorithm in Algorithm::ALL {
            for seed in 0..5 {
                let outcome = run_once(n, algorithm, seed);
                assert_eq!(outcome.accepted, 30);
                assert!(
                    outcome.calls >= 30 && outcome.calls <= 30 * 30,
                    "{algorithm}: {outcome:?}"
                );
            }
        }
    }

    #[test]
    fn a_run_counts_its_messages_and_stops_at_its_ceiling() {
        let n = NonZeroUsize::new(30).unwrap();
        let full = run_once(n, Algorithm::None, 4);
        // Four messages per write call (read, reply, write, reply), and every call was one.
        assert_eq!(full.events, 4 * full.calls);
        assert_eq!(run_bounded(n, Algorithm::None, 4, full.events), Some(full));
        assert_eq!(run_bounded(n, Algorithm::None, 4, full.events - 1), None);
    }

    #[test]
    fn an_experiment_is_refused_or_stopped_by_counting_its_work() {
        let clients = [
            NonZeroUsize::new(10).unwrap(),
            NonZeroUsize::new(20).unwrap(),
        ];
        let runs = NonZeroU32::new(3).unwrap();
        // At least 4 · (10 + 20) messages per run, 5 algorithms, 3 runs.
        let least = 4 * 30 * 5 * 3;
        assert_eq!(
            experiment_bounded(&clients, runs, 1, least - 1, false),
            Err(ExperimentError::Refused {
                min_events: least,
                max_events: least - 1
            })
        );
        let err = experiment_bounded(&clients, runs, 1, least, false).unwrap_err();
        assert!(
            matches!(err, ExperimentError::Stopped { max_events, .. } if max_events == least),
            "{err:?}"
        );
        assert!(err.to_string().contains("--max-events"), "{err}");
        let bounded = experiment_bounded(&clients, runs, 1, u64::MAX, false).unwrap();
        assert_eq!(bounded, experiment(&clients, runs, 1));
        // Huge run counts saturate instead of overflowing.
        let many = NonZeroU32::new(u32::MAX).unwrap();
        let huge = [NonZeroUsize::new(1000).unwrap()];
        assert!(matches!(
            experiment_bounded(&huge, many, 1, DEFAULT_MAX_EVENTS, false),
            Err(ExperimentError::Refused { .. })
        ));
    }

    #[test]
    fn algorithm_names_round_trip() {
        let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            names,
            ["none", "exponential", "full", "equal", "decorrelated"]
        );
    }
}
