//! Multi-thread stress: a million calls on one breaker from several threads, with trips,
//! probes, drops and a clock that moves. Bounded by the number of calls, never by wall time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};

const THREADS: usize = 4;
const CALLS_PER_THREAD: usize = 250_000;
const PROBES: u32 = 2;
/// Probes in flight per generation (indexed by generation modulo the length).
const GENERATIONS: usize = 1 << 16;

fn state_index(state: State) -> usize {
    match state {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
        State::ForcedOpen => 3,
        State::ForcedClosed => 4,
        _ => 5,
    }
}

fn stress(config: BreakerConfig) {
    stress_with(config, |c| c, false);
}

/// The stress, with `settings` applied after the common ones, and, if `manual`, one thread
/// disabling and resetting the breaker as it goes.
fn stress_with(
    config: BreakerConfig,
    settings: impl Fn(BreakerConfig) -> BreakerConfig,
    manual: bool,
) {
    let clock = ManualClock::new();
    // entries[s] - exits[s] for every state s, counted by the state-change callback.
    let balance: Arc<[AtomicI64; 6]> = Arc::new(Default::default());
    let sink = Arc::clone(&balance);
    let breaker = CircuitBreaker::builder(settings(
        config
            .with_open_duration(Duration::from_millis(1))
            .with_half_open_probes(PROBES)
            .with_successes_to_close(2)
            .with_probe_lease(Duration::from_millis(20)),
    ))
    .clock(clock.clone().into())
    .on_state_change(move |change| {
        sink[state_index(change.from)].fetch_sub(1, Ordering::Relaxed);
        sink[state_index(change.to)].fetch_add(1, Ordering::Relaxed);
    })
    .build()
    .unwrap();
    let in_flight: Arc<Vec<AtomicI64>> =
        Arc::new((0..GENERATIONS).map(|_| AtomicI64::new(0)).collect());
    let (admitted, resolved, rejected) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );

    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (breaker, clock, in_flight) =
                (breaker.clone(), clock.clone(), Arc::clone(&in_flight));
            let (admitted, resolved, rejected) = (
                Arc::clone(&admitted),
                Arc::clone(&resolved),
                Arc::clone(&rejected),
            );
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64);
                for i in 0..CALLS_PER_THREAD {
                    if t == 0 && i % 64 == 0 {
                        clock.advance(Duration::from_micros(100));
                    }
                    if manual && t == 1 && i % 5_000 == 0 {
                        if i % 10_000 == 0 {
                            breaker.disable();
                        } else {
                            breaker.reset();
                        }
                    }
                    let Ok(permit) = breaker.try_acquire() else {
                        rejected.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    admitted.fetch_add(1, Ordering::Relaxed);
                    let slot = &in_flight[permit.generation() as usize % GENERATIONS];
                    if permit.is_probe() {
                        let now = slot.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(
                            now <= i64::from(PROBES),
                            "{now} probes in flight in one generation"
                        );
                        slot.fetch_sub(1, Ordering::SeqCst);
                    }
                    match rng.u8(0..10) {
                        0..=5 => permit.success(),
                        6..=7 => permit.failure(),
                        8 => permit.ignore(),
                        _ => drop(permit),
                    }
                    resolved.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let admitted = admitted.load(Ordering::Relaxed);
    let total = admitted + rejected.load(Ordering::Relaxed);
    assert_eq!(
        total,
        (THREADS * CALLS_PER_THREAD) as u64,
        "every call admitted or rejected"
    );
    assert_eq!(
        resolved.load(Ordering::Relaxed),
        admitted,
        "every permit resolved"
    );

    let snapshot = breaker.snapshot();
    if snapshot.state == State::HalfOpen {
        assert_eq!(
            snapshot.probes_in_flight, 0,
            "a probe slot leaked: {snapshot:?}"
        );
    }
    // Every state entered was left, except the final one.
    let final_state = state_index(snapshot.state);
    for (s, b) in balance.iter().enumerate() {
        let expected = i64::from(s == final_state) - i64::from(s == 0);
        assert_eq!(
            b.load(Ordering::Relaxed),
            expected,
            "state {s}: transitions do not add up"
        );
    }
    assert!(
        admitted > 0 && rejected.load(Ordering::Relaxed) > 0,
        "the stress never tripped"
    );
    // With every permit resolved, the breaker still admits once the open period ends.
    clock.advance(Duration::from_secs(1));
    assert!(breaker.try_acquire().is_ok());
}

#[test]
fn stress_consecutive_failures_a_million_calls() {
    stress(BreakerConfig::consecutive_failures(3));
}

#[test]
fn stress_count_window_a_million_calls() {
    stress(BreakerConfig::failure_rate_count(0.5, 8).with_minimum_calls(4));
}

/// A wider window, safe for long runs of successes: most of them skip the window lock.
#[test]
fn stress_wide_count_window_a_million_calls() {
    stress(BreakerConfig::failure_rate_count(0.25, 64).with_minimum_calls(16));
}

/// The counts clear every half millisecond: periods roll while outcomes land.
#[test]
fn stress_count_reset_interval_a_million_calls() {
    let every = |c: BreakerConfig| c.with_count_reset_interval(Duration::from_micros(500));
    stress_with(BreakerConfig::consecutive_failures(3), every, false);
    stress_with(
        BreakerConfig::failure_rate_count(0.5, 8)
            .with_minimum_calls(4)
            .with_failure_count(3),
        every,
        false,
    );
}

/// Probes judged as 2 successes out of 4, and half-open for at most 2 ms.
#[test]
fn stress_half_open_ratio_and_maximum_wait_a_million_calls() {
    stress_with(
        BreakerConfig::failure_count_time(4, Duration::from_millis(5)),
        |c| {
            c.with_successes_to_close_out_of(2, 4)
                .with_half_open_max_wait(Duration::from_millis(2))
        },
        false,
    );
}

/// One thread disables and resets the breaker while the others call it.
#[test]
fn stress_disable_and_reset_a_million_calls() {
    stress_with(
        BreakerConfig::failure_rate_count(0.5, 8).with_minimum_calls(4),
        |c| c.with_count_reset_interval(Duration::from_millis(1)),
        true,
    );
}

#[test]
fn stress_time_window_a_million_calls() {
    stress(
        BreakerConfig::failure_rate_time(0.25, Duration::from_millis(10))
            .with_buckets(5)
            .with_minimum_calls(16),
    );
}

/// Successes counted without the window lock, racing failures (which take it) and snapshots
/// (which record them): none is lost or counted twice.
fn counts_add_up(config: BreakerConfig) {
    const CALLS: usize = 100_000;
    let breaker = CircuitBreaker::builder(config)
        .clock(ManualClock::new().into())
        .build()
        .unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let breaker = breaker.clone();
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    let permit = breaker.try_acquire().unwrap();
                    if i % 100 == 99 {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                    if t == 0 && i % 1000 == 0 {
                        let _ = breaker.snapshot();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = breaker.snapshot();
    assert_eq!(s.state, State::Closed);
    assert_eq!(
        (s.calls as usize, s.failures as usize),
        (THREADS * CALLS, THREADS * CALLS / 100)
    );
}

#[test]
fn count_window_counts_add_up_across_threads() {
    counts_add_up(BreakerConfig::failure_rate_count(0.5, 1 << 20).with_minimum_calls(1));
}

#[test]
fn time_window_counts_add_up_across_threads() {
    counts_add_up(
        BreakerConfig::failure_rate_time(0.5, Duration::from_secs(60)).with_minimum_calls(1),
    );
}
