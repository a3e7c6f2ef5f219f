//! Zero heap allocations per call, in every state, counted by a counting global allocator.
//!
//! Its own test binary because a `#[global_allocator]` is per binary, and without the libtest
//! harness (`harness = false`) so that no other thread runs while it counts: the count is
//! deterministic.

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Heap allocations (and reallocations) made while running `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

const CALLS: usize = 1000;
const MS: Duration = Duration::from_millis(1);

fn build(config: BreakerConfig, clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::builder(config)
        .clock(clock.clone().into())
        .build()
        .unwrap()
}

fn poll_once<F: std::future::Future>(f: F) -> Poll<F::Output> {
    let mut f = std::pin::pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// The `i`th call through a permit: a failure every third call, else a success.
fn permit_call(breaker: &CircuitBreaker, i: usize) {
    let permit = breaker.try_acquire().unwrap();
    if i.is_multiple_of(3) {
        permit.failure()
    } else {
        permit.success()
    }
}

fn no_allocation_per_call_in_any_state() {
    let clock = ManualClock::new();
    let configs = [
        (
            "consecutive",
            BreakerConfig::consecutive_failures(u16::MAX as u32),
        ),
        ("count window", BreakerConfig::failure_rate_count(1.0, 100)),
        (
            "time window",
            BreakerConfig::failure_rate_time(1.0, Duration::from_secs(10)),
        ),
        (
            "slow calls",
            BreakerConfig::slow_call_rate(1.0, Duration::from_secs(10), 100),
        ),
        (
            "failure count",
            BreakerConfig::failure_count_time(u32::MAX, Duration::from_secs(10)),
        ),
        // Periods of 10 ms: the loop below crosses a hundred of them.
        (
            "count-reset interval",
            BreakerConfig::consecutive_failures(u16::MAX as u32).with_count_reset_interval(10 * MS),
        ),
        (
            "count-reset interval, count window",
            BreakerConfig::failure_rate_count(1.0, 100).with_count_reset_interval(10 * MS),
        ),
    ];
    for (name, config) in configs {
        let breaker = build(config, &clock);
        let closed = allocations(|| {
            for i in 0..CALLS {
                permit_call(&breaker, i);
                let _ = breaker.call_blocking(|| Ok::<_, ()>(i));
                assert!(poll_once(breaker.call(|| async { Err::<(), _>(()) })).is_ready());
                clock.advance(MS);
            }
            let _ = breaker.snapshot();
        });
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(closed, 0, "{name}: closed");

        breaker.force_closed();
        let disabled = allocations(|| {
            for _ in 0..CALLS {
                breaker.try_acquire().unwrap().failure();
            }
        });
        assert_eq!(disabled, 0, "{name}: forced closed");

        breaker.force_open();
        let forced = allocations(|| {
            for _ in 0..CALLS {
                assert!(breaker.call_blocking(|| Ok::<_, ()>(())).is_err());
            }
        });
        assert_eq!(forced, 0, "{name}: forced open");

        breaker.disable();
        let disabled = allocations(|| {
            for i in 0..CALLS {
                permit_call(&breaker, i);
                let _ = breaker.snapshot();
            }
        });
        assert_eq!(disabled, 0, "{name}: disabled");
    }
}

fn no_allocation_per_call_when_open_or_half_open() {
    let clock = ManualClock::new();
    let breaker = build(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(Duration::from_secs(1))
            .with_half_open_probes(1)
            .with_successes_to_close(2),
        &clock,
    );
    breaker.try_acquire().unwrap().failure();
    let open = allocations(|| {
        for _ in 0..CALLS {
            assert!(breaker.try_acquire().is_err());
            assert!(poll_once(breaker.call(|| async { Ok::<_, ()>(()) })).is_ready());
        }
    });
    assert_eq!(open, 0, "open rejection");

    clock.advance(Duration::from_secs(1));
    drop(breaker.try_acquire().unwrap()); // the transition to half-open, not measured here
    let half_open = allocations(|| {
        for _ in 0..CALLS {
            let probe = breaker.try_acquire().unwrap();
            assert!(breaker.try_acquire().is_err(), "the only slot is taken");
            drop(probe);
            breaker.try_acquire().unwrap().ignore();
        }
    });
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(half_open, 0, "half-open probes and rejections");

    // Ratio decisions and a maximum wait, without a transition (see the last function): failures
    // tolerated, and each probe outcome checked against the wait.
    let breaker = build(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(MS)
            .with_half_open_probes(2)
            .with_successes_to_close_out_of(2, 65_535)
            .with_half_open_max_wait(Duration::from_secs(5)),
        &clock,
    );
    breaker.try_acquire().unwrap().failure();
    clock.advance(MS);
    drop(breaker.try_acquire().unwrap());
    let judged = allocations(|| {
        for i in 0..CALLS {
            match breaker.try_acquire() {
                Ok(probe) if i % 2 == 0 => probe.failure(),
                Ok(probe) => probe.ignore(),
                Err(_) => {}
            }
        }
    });
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(judged, 0, "half-open ratio decisions");
}

/// With automatic half-open, a trip spawns the period's timer (one task: not measured here);
/// the rejections it makes clock-free allocate nothing.
#[cfg(feature = "tokio")]
fn no_allocation_per_rejection_with_automatic_half_open() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _on_the_runtime = runtime.enter();
    let breaker = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(Duration::from_secs(3600))
            .with_automatic_half_open(true),
    )
    .unwrap();
    breaker.try_acquire().unwrap().failure();
    let open = allocations(|| {
        for _ in 0..CALLS {
            assert!(breaker.try_acquire().is_err());
            assert!(breaker.call_blocking(|| Ok::<_, ()>(())).is_err());
        }
    });
    assert_eq!(open, 0, "open rejection, automatic half-open");
}

fn no_allocation_per_transition_without_the_metrics_feature() {
    let clock = ManualClock::new();
    let breaker = build(
        BreakerConfig::consecutive_failures(1)
            .with_open_backoff(staunch::backoff::Backoff::exponential(MS).with_max_delay(8 * MS)),
        &clock,
    );
    let cycles = allocations(|| {
        for _ in 0..CALLS {
            breaker.try_acquire().unwrap().failure(); // trip
            clock.advance(8 * MS);
            breaker.try_acquire().unwrap().success(); // probe closes
        }
    });
    assert_eq!(breaker.state(), State::Closed);
    // `metrics` builds its keys (label vectors) per transition; transitions are rare.
    if cfg!(feature = "metrics") {
        assert!(
            cycles <= CALLS * 2 * 8,
            "{cycles} allocations for {} transitions",
            CALLS * 3
        );
    } else {
        assert_eq!(cycles, 0);
    }
}

fn main() {
    no_allocation_per_call_in_any_state();
    no_allocation_per_call_when_open_or_half_open();
    #[cfg(feature = "tokio")]
    no_allocation_per_rejection_with_automatic_half_open();
    no_allocation_per_transition_without_the_metrics_feature();
    eprintln!("breaker_alloc: no allocation per call in any state");
}
