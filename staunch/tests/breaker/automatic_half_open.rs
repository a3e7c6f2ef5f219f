//! Automatic half-open (`with_automatic_half_open`): a timer ends the open period, on paused
//! tokio time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, Reason, State};
use tokio::time::sleep;

use crate::support::{MS, SEC};

type Log = Arc<Mutex<Vec<(State, State, Reason)>>>;

/// A consecutive-failures(1) breaker open for `open`, automatic half-open, logging transitions.
fn automatic(open: Duration) -> (CircuitBreaker, Log) {
    let log = Log::default();
    let sink = Arc::clone(&log);
    let breaker = CircuitBreaker::builder(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(open)
            .with_automatic_half_open(true),
    )
    .on_state_change(move |c| sink.lock().unwrap().push((c.from, c.to, c.reason)))
    .build()
    .unwrap();
    (breaker, log)
}

async fn trip(breaker: &CircuitBreaker) {
    let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
    assert_eq!(breaker.state(), State::Open);
}

async fn succeed(breaker: &CircuitBreaker) -> Result<(), staunch::breaker::Error<&'static str>> {
    breaker.call(|| async { Ok(()) }).await
}

const OPEN_ELAPSED: (State, State, Reason) = (State::Open, State::HalfOpen, Reason::OpenElapsed);

/// How many open periods have ended (open to half-open): in these tests, only ever by the timer.
fn ends_by_timer(log: &Log) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|t| **t == OPEN_ELAPSED)
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_breaker_turns_half_open_when_the_period_ends_with_no_call() {
    let (breaker, log) = automatic(10 * SEC);
    trip(&breaker).await;

    sleep(10 * SEC - MS).await;
    assert_eq!(breaker.state(), State::Open, "not before the period ends");
    sleep(2 * MS).await;
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "the timer ends the period, with no call to do it"
    );
    assert_eq!(log.lock().unwrap().last(), Some(&OPEN_ELAPSED));

    succeed(&breaker)
        .await
        .expect("the first caller is a probe");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn without_it_the_period_ends_at_the_first_call_after_it() {
    let breaker =
        CircuitBreaker::new(BreakerConfig::consecutive_failures(1).with_open_duration(10 * SEC))
            .unwrap();
    trip(&breaker).await;
    sleep(11 * SEC).await;
    assert_eq!(
        breaker.state(),
        State::Open,
        "no timer: nothing has ended it"
    );
    succeed(&breaker)
        .await
        .expect("the first call after it probes");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn rejections_report_the_time_left_to_within_the_timer_interval() {
    // 64 s: the timer re-measures every second.
    let (breaker, _) = automatic(64 * SEC);
    trip(&breaker).await;
    let first = succeed(&breaker).await.unwrap_err();
    assert_eq!(
        first.circuit_open().unwrap().retry_after(),
        Some(64 * SEC),
        "before the timer's first tick: the whole period"
    );

    sleep(10 * SEC + 500 * MS).await;
    let exact = 53 * SEC + 500 * MS;
    let reported = succeed(&breaker)
        .await
        .unwrap_err()
        .circuit_open()
        .unwrap()
        .retry_after()
        .unwrap();
    assert!(
        reported >= exact && reported <= exact + SEC,
        "{reported:?}: never less than the {exact:?} left, at most one interval more"
    );
}

#[tokio::test(start_paused = true)]
async fn the_timer_of_one_period_never_ends_another() {
    let (breaker, log) = automatic(10 * SEC);
    trip(&breaker).await;
    sleep(5 * SEC).await;
    breaker.reset();
    trip(&breaker).await; // open until 15 s

    sleep(6 * SEC).await; // 11 s: past the first period's end
    assert_eq!(
        breaker.state(),
        State::Open,
        "the first period's timer must not end the second"
    );
    sleep(4 * SEC + MS).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(ends_by_timer(&log), 1);

    breaker.force_open();
    sleep(60 * SEC).await;
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "no timer ends a forced open"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_a_new_period_with_its_own_timer() {
    let (breaker, log) = automatic(10 * SEC);
    trip(&breaker).await;
    sleep(10 * SEC + MS).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    let _ = breaker.call(|| async { Err::<(), _>("still down") }).await;
    assert_eq!(breaker.state(), State::Open);
    sleep(10 * SEC + MS).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(ends_by_timer(&log), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pending_timer_does_not_keep_a_dropped_breaker_alive() {
    let (breaker, log) = automatic(10 * SEC);
    trip(&breaker).await;
    drop(breaker);
    sleep(20 * SEC).await;
    assert_eq!(
        ends_by_timer(&log),
        0,
        "the breaker is gone: its timer has nothing to end"
    );
}

#[test]
fn a_manual_clock_ends_the_period_at_the_first_call_after_it() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(10 * SEC)
            .with_automatic_half_open(true),
    )
    .clock(clock.clone().into())
    .build()
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _in_runtime = runtime.enter();
    breaker.try_acquire().unwrap().failure();
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after(),
        Some(10 * SEC),
        "read on the manual clock"
    );
    clock.advance(10 * SEC);
    assert_eq!(
        breaker.state(),
        State::Open,
        "no tokio timer follows a manual clock"
    );
    breaker
        .try_acquire()
        .expect("the first call after the period probes")
        .success();
    assert_eq!(breaker.state(), State::Closed);
}
