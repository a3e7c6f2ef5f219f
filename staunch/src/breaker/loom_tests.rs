//! loom models of the breaker's concurrent paths. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p staunch --lib --release --no-default-features -- loom_`.

use std::time::Duration;

use loom::thread;

use super::{BreakerConfig, CircuitBreaker, Reason, State};
use crate::ManualClock;
use crate::loom::{Arc, AtomicU64, Ordering};

const SEC: Duration = Duration::from_secs(1);

/// Models with three threads bound their preemptions (as tokio's loom suite does): with a bound
/// of 4 they take seconds, unbounded more than minutes. Bugs in practice need few preemptions.
fn model_bounded<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(4);
    builder.check(f);
}

/// A breaker on a manual clock that counts its trips and all its transitions.
fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock, Arc<AtomicU64>, Arc<AtomicU64>) {
    let clock = ManualClock::new();
    let trips = Arc::new(AtomicU64::new(0));
    let changes = Arc::new(AtomicU64::new(0));
    let (t, c) = (Arc::clone(&trips), Arc::clone(&changes));
    let breaker = CircuitBreaker::builder(config.with_open_duration(SEC))
        .clock(clock.clone().into())
        .on_state_change(move |change| {
            c.fetch_add(1, Ordering::Relaxed);
            if change.reason == Reason::Tripped {
                t.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    (breaker, clock, trips, changes)
}

/// Runs one call per entry on this thread: a success for `true`, a failure for `false`.
fn record<const N: usize>(breaker: &CircuitBreaker, outcomes: [bool; N]) {
    for ok in outcomes {
        let permit = breaker.try_acquire().unwrap();
        if ok {
            permit.success()
        } else {
            permit.failure()
        }
    }
}

#[test]
fn loom_admission_racing_a_trip() {
    loom::model(|| {
        let (breaker, _clock, trips, _) = breaker(BreakerConfig::consecutive_failures(2));
        breaker.try_acquire().unwrap().failure();
        let b = breaker.clone();
        let tripper = thread::spawn(move || b.try_acquire().unwrap().failure());
        // Admission racing the trip: admitted in closed (its success is then stale or resets
        // nothing), or rejected with a retry instant, even mid-publication.
        match breaker.try_acquire() {
            Ok(permit) => {
                assert!(!permit.is_probe());
                permit.success();
            }
            Err(open) => {
                assert_eq!(open.state(), State::Open);
                assert!(open.retry_after().is_some());
            }
        }
        tripper.join().unwrap();
        let trips = trips.load(Ordering::Relaxed);
        let snapshot = breaker.snapshot();
        // Either the success landed between the two failures (reset: still closed, one failure
        // pending), or the breaker tripped exactly once and published when it reopens.
        match snapshot.state {
            State::Closed => {
                assert_eq!(trips, 0);
                assert_eq!(snapshot.consecutive_failures, 1);
            }
            State::Open => {
                assert_eq!(trips, 1);
                assert!(
                    snapshot.next_probe_at.is_some(),
                    "an open period is always published"
                );
            }
            other => panic!("unexpected state {other:?}"),
        }
    });
}

#[test]
fn loom_probe_slots_under_acquire_success_failure_and_drop() {
    model_bounded(|| {
        let (breaker, clock, _, _) = breaker(
            BreakerConfig::consecutive_failures(1)
                .with_half_open_probes(1)
                .with_successes_to_close(2),
        );
        breaker.try_acquire().unwrap().failure();
        clock.advance(SEC);
        let in_flight = Arc::new(AtomicU64::new(0));

        let probe = |breaker: &CircuitBreaker, in_flight: &AtomicU64, finish: u8| {
            if let Ok(permit) = breaker.try_acquire() {
                if permit.is_probe() {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 1, "{now} probes in flight with a limit of 1");
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                match finish {
                    0 => permit.success(),
                    1 => permit.failure(),
                    _ => drop(permit),
                }
            }
        };
        let threads: Vec<_> = [0u8, 2]
            .into_iter()
            .map(|finish| {
                let (b, f) = (breaker.clone(), Arc::clone(&in_flight));
                thread::spawn(move || probe(&b, &f, finish))
            })
            .collect();
        probe(&breaker, &in_flight, 1);
        for t in threads {
            t.join().unwrap();
        }
        let snapshot = breaker.snapshot();
        if snapshot.state == State::HalfOpen {
            assert_eq!(snapshot.probes_in_flight, 0, "a slot leaked: {snapshot:?}");
        }
        // Every probe was resolved, so a caller is admitted again once any open period ends.
        clock.advance(SEC);
        assert!(breaker.try_acquire().is_ok(), "{snapshot:?}");
    });
}

#[test]
fn loom_stale_outcome_racing_a_transition() {
    model_bounded(|| {
        let (breaker, _clock, trips, _) = breaker(BreakerConfig::consecutive_failures(1));
        let first = breaker.try_acquire_owned().unwrap();
        let second = breaker.try_acquire_owned().unwrap();
        let racer = thread::spawn(move || second.failure());
        let b = breaker.clone();
        let resetter = thread::spawn(move || b.reset());
        first.failure();
        racer.join().unwrap();
        resetter.join().unwrap();
        // Both failures were admitted in generation 0: at most one of them trips; the other is
        // stale. A reset may come before, between or after.
        let trips = trips.load(Ordering::Relaxed);
        assert!(trips <= 1, "{trips} trips from one generation");
        let snapshot = breaker.snapshot();
        match snapshot.state {
            State::Open => {
                assert_eq!(trips, 1);
                assert!(snapshot.next_probe_at.is_some(), "unpublished open period");
            }
            State::Closed => {}
            other => panic!("unexpected state {other:?}"),
        }
    });
}

#[test]
fn loom_window_trip_races_a_stale_outcome() {
    loom::model(|| {
        let (breaker, _clock, trips, _) =
            breaker(BreakerConfig::failure_rate_count(0.5, 2).with_minimum_calls(1));
        let a = breaker.try_acquire_owned().unwrap();
        let b = breaker.try_acquire_owned().unwrap();
        let racer = thread::spawn(move || b.failure());
        a.failure();
        racer.join().unwrap();
        assert_eq!(trips.load(Ordering::Relaxed), 1);
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, State::Open);
        assert!(snapshot.next_probe_at.is_some());
    });
}

/// A success counted without the window lock racing the failure that trips: it lands in the
/// tripped generation's window before the trip, or is stale; never in a later generation, and
/// never both.
#[test]
fn loom_pending_success_racing_a_tripping_failure() {
    loom::model(|| {
        let (breaker, _clock, trips, _) =
            breaker(BreakerConfig::failure_rate_count(0.5, 5).with_minimum_calls(2));
        // [S S F]: 1/3, and no run of successes can trip it: successes skip the lock.
        record(&breaker, [true, true, false]);
        let success = breaker.try_acquire_owned().unwrap();
        let failure = breaker.try_acquire_owned().unwrap();
        let racer = thread::spawn(move || success.success());
        failure.failure();
        racer.join().unwrap();
        let (generation, counts) = breaker.shared.window_counts();
        assert_eq!(generation, 0);
        match breaker.state() {
            // The success first: [S S F S F] = 2/5.
            State::Closed => {
                assert_eq!(trips.load(Ordering::Relaxed), 0);
                assert_eq!((counts.calls, counts.failures), (5, 2));
            }
            // The failure first: [S S F F] = 2/4 trips; the success is stale.
            State::Open => {
                assert_eq!(trips.load(Ordering::Relaxed), 1);
                assert_eq!((counts.calls, counts.failures), (4, 2));
            }
            other => panic!("unexpected state {other:?}"),
        }
    });
}

/// Successes counted without the lock racing a reset: each lands before it, in the old
/// generation, or is stale; the new generation starts empty.
#[test]
fn loom_pending_successes_racing_a_reset() {
    loom::model(|| {
        let (breaker, _clock, _, _) =
            breaker(BreakerConfig::failure_rate_count(0.5, 4).with_minimum_calls(1));
        breaker.try_acquire().unwrap().success();
        let success = breaker.try_acquire_owned().unwrap();
        let racer = thread::spawn(move || success.success());
        breaker.reset();
        racer.join().unwrap();
        breaker.try_acquire().unwrap().failure();
        let (generation, counts) = breaker.shared.window_counts();
        assert_eq!(generation, 1);
        assert_eq!((counts.calls, counts.failures), (1, 1));
        assert_eq!(breaker.state(), State::Open);
    });
}

/// A time-window success read before its bucket ends racing a later failure that expires the
/// window and leaves it unsafe: the success is recorded before the failure (and expires with
/// its bucket), or takes the lock after it and trips; it never skips the trip decision.
#[test]
fn loom_pending_time_window_success_racing_expiry() {
    loom::model(|| {
        let (breaker, clock, trips, _) = breaker(
            BreakerConfig::failure_rate_time(0.5, 2 * SEC)
                .with_buckets(2)
                .with_minimum_calls(2),
        );
        // [S S F] in the bucket [0, 1 s): 1/3, safe for successes until the bucket ends.
        record(&breaker, [true, true, false]);
        let success = breaker.try_acquire_owned().unwrap();
        let failure = breaker.try_acquire_owned().unwrap();
        let racer = thread::spawn(move || success.success());
        clock.advance(2 * SEC + SEC / 2);
        failure.failure(); // the first bucket expires: 1/1, and one more success makes 1/2
        racer.join().unwrap();
        let (_, counts) = breaker.shared.window_counts();
        match breaker.state() {
            State::Closed => {
                assert_eq!(trips.load(Ordering::Relaxed), 0);
                assert_eq!((counts.calls, counts.failures), (1, 1));
            }
            State::Open => {
                assert_eq!(trips.load(Ordering::Relaxed), 1);
                assert_eq!((counts.calls, counts.failures), (2, 1));
            }
            other => panic!("unexpected state {other:?}"),
        }
    });
}

#[test]
fn loom_an_open_timer_racing_a_reset_and_an_admission() {
    model_bounded(|| {
        let clock = ManualClock::new();
        let elapsed = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&elapsed);
        let breaker =
            CircuitBreaker::builder(BreakerConfig::consecutive_failures(1).with_open_duration(SEC))
                .clock(clock.clone().into())
                .on_state_change(move |change| {
                    if change.reason == Reason::OpenElapsed {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
                .unwrap();
        breaker.try_acquire().unwrap().failure();
        let generation = breaker.shared.load().generation();
        breaker.shared.arm_timer_for_test();
        clock.advance(SEC);
        // The timer's last tick ends the period, then the dropped timer disarms (a no-op by
        // then), racing a reset and a caller.
        let b = breaker.clone();
        let timer = thread::spawn(move || {
            assert_eq!(b.shared.open_timer_tick(generation), None);
            b.shared.disarm_timer(generation);
        });
        let b = breaker.clone();
        let resetter = thread::spawn(move || b.reset());
        match breaker.try_acquire() {
            // After the timer fired (the first probe) or after the reset.
            Ok(permit) => permit.success(),
            // Before either: rejected on the timer's flag, without a clock.
            Err(open) => {
                assert_eq!(open.state(), State::Open);
                assert!(open.retry_after().is_some());
            }
        }
        timer.join().unwrap();
        resetter.join().unwrap();
        assert!(elapsed.load(Ordering::Relaxed) <= 1);
        let word = breaker.shared.load();
        assert!(!word.has_timer());
        // The reset came last or the period ended before it: nothing may revive the old period.
        assert_eq!(
            word.state(),
            State::Closed,
            "the timer of an old generation changed a later one"
        );
    });
}

/// Two admissions after a period's end race to start the next one, while an outcome of the
/// ended period arrives: exactly one starts it (one generation, its end published), and the
/// old outcome never counts in it.
#[test]
fn loom_period_roll_racing_a_roll_and_an_old_outcome() {
    model_bounded(|| {
        let (breaker, clock, trips, changes) =
            breaker(BreakerConfig::consecutive_failures(2).with_count_reset_interval(SEC));
        breaker.try_acquire().unwrap().failure(); // one failure in period [0, 1 s)
        let old = breaker.try_acquire_owned().unwrap();
        clock.advance(SEC);
        let b = breaker.clone();
        let roller = thread::spawn(move || b.try_acquire().unwrap().generation());
        let late = thread::spawn(move || old.failure());
        let mine = breaker.try_acquire().unwrap().generation();
        let theirs = roller.join().unwrap();
        late.join().unwrap();
        assert_eq!((mine, theirs), (1, 1), "one roll, and both admitted in it");
        let word = breaker.shared.load();
        assert_eq!((word.state(), word.generation()), (State::Closed, 1));
        assert!(!word.unpublished(), "the new period's end is published");
        assert_eq!(breaker.snapshot().consecutive_failures, 0);
        assert_eq!(
            trips.load(Ordering::Relaxed),
            0,
            "an old failure tripped the new period"
        );
        assert_eq!(
            changes.load(Ordering::Relaxed),
            0,
            "a new period is no state change"
        );
        // The period is [1 s, 2 s): a failure now and one at 1.9 s trip.
        breaker.try_acquire().unwrap().failure();
        clock.advance(SEC * 9 / 10);
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), State::Open);
    });
}

/// A period roll racing a reset: whichever wins, the breaker ends closed with its period
/// published, and a later generation's end never goes back.
#[test]
fn loom_period_roll_racing_a_reset() {
    model_bounded(|| {
        let (breaker, clock, _, _) =
            breaker(BreakerConfig::consecutive_failures(1).with_count_reset_interval(SEC));
        clock.advance(SEC);
        let b = breaker.clone();
        let resetter = thread::spawn(move || b.reset());
        drop(breaker.try_acquire().unwrap());
        resetter.join().unwrap();
        let word = breaker.shared.load();
        assert_eq!(word.state(), State::Closed);
        assert!(!word.unpublished());
        // Whoever came last, the period runs to 2 s: a failure before then trips.
        clock.advance(SEC * 9 / 10);
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), State::Open);
    });
}

/// Probe failures racing under ratio decisions (one failure tolerated): the second one
/// re-opens, exactly once, whichever lands first; a racing success never closes a breaker
/// that has re-opened.
#[test]
fn loom_tolerated_probe_failures_race_to_reopen_once() {
    model_bounded(|| {
        let (breaker, clock, _, changes) = breaker(
            BreakerConfig::consecutive_failures(1)
                .with_half_open_probes(3)
                .with_successes_to_close_out_of(2, 3),
        );
        breaker.try_acquire().unwrap().failure();
        clock.advance(SEC);
        let probes: Vec<_> = (0..3)
            .map(|_| breaker.try_acquire_owned().unwrap())
            .collect();
        let before = changes.load(Ordering::Relaxed);
        let mut probes = probes.into_iter();
        let (a, b, c) = (
            probes.next().unwrap(),
            probes.next().unwrap(),
            probes.next().unwrap(),
        );
        let first = thread::spawn(move || a.failure());
        let second = thread::spawn(move || b.failure());
        c.success();
        first.join().unwrap();
        second.join().unwrap();
        // Two failures of three probes: closing (2 successes) became impossible.
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            changes.load(Ordering::Relaxed) - before,
            1,
            "one re-open, and no close"
        );
        assert!(breaker.snapshot().next_probe_at.is_some());
    });
}

/// The half-open maximum wait ends at a caller and at a probe's outcome at once: one re-open.
#[test]
fn loom_half_open_timeout_racing_a_probe_outcome() {
    model_bounded(|| {
        let clock = ManualClock::new();
        let timeouts = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&timeouts);
        let breaker = CircuitBreaker::builder(
            BreakerConfig::consecutive_failures(1)
                .with_open_duration(SEC)
                .with_half_open_probes(2)
                .with_successes_to_close(2)
                .with_half_open_max_wait(SEC),
        )
        .clock(clock.clone().into())
        .on_state_change(move |change| {
            assert_ne!(change.to, State::Closed, "closed after the wait ended");
            if change.reason == Reason::HalfOpenTimedOut {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
        breaker.try_acquire().unwrap().failure();
        clock.advance(SEC);
        breaker.try_acquire().unwrap().success();
        let probe = breaker.try_acquire_owned().unwrap();
        clock.advance(SEC);
        let outcome = thread::spawn(move || probe.success());
        assert!(breaker.try_acquire().is_err());
        outcome.join().unwrap();
        assert_eq!(timeouts.load(Ordering::Relaxed), 1);
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, State::Open);
        assert!(snapshot.next_probe_at.is_some());
    });
}

/// Disabling racing a tripping failure: the failure trips before, or is dropped after; the
/// breaker ends disabled, and a reset finds nothing counted.
#[test]
fn loom_disable_racing_a_failure() {
    loom::model(|| {
        let (breaker, _clock, trips, _) =
            breaker(BreakerConfig::failure_rate_count(0.5, 2).with_minimum_calls(1));
        let permit = breaker.try_acquire_owned().unwrap();
        let b = breaker.clone();
        let disabler = thread::spawn(move || b.disable());
        permit.failure();
        disabler.join().unwrap();
        assert!(trips.load(Ordering::Relaxed) <= 1);
        assert_eq!(breaker.state(), State::Disabled);
        breaker.try_acquire().unwrap().failure(); // dropped
        breaker.reset();
        assert_eq!(breaker.snapshot().calls, 0);
        breaker.try_acquire().unwrap().success();
        assert_eq!(breaker.state(), State::Closed);
    });
}
