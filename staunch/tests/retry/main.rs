//! Integration tests for `staunch::retry`: one test per rule of DESIGN.md §1 "Retry", in paused
//! or manual time.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::classify::Class;
use staunch::retry::{CallOptions, RetryBudget};
use staunch::{CancellationToken, Deadline, ManualClock, Retry, RetryConfig, StopReason};
use support::{Boom, Counter, fixed, ms};
// The async cases, which need the `tokio` feature; the blocking ones run without it.
#[cfg(feature = "tokio")]
use {staunch::retry::BudgetConfig, tokio::time::Instant};

#[test]
fn zero_attempts_is_a_config_error_not_a_silent_success() {
    let err = Retry::new(RetryConfig::new().with_max_attempts(0)).unwrap_err();
    assert_eq!(err.field(), "max_attempts");
    assert!(err.to_string().contains("counts the first call"), "{err}");
    let err = Retry::new(
        RetryConfig::new().with_backoff(Backoff::exponential(ms(1)).with_multiplier(0.5)),
    )
    .unwrap_err();
    assert_eq!(err.field(), "multiplier");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn attempts_are_bounded_and_count_the_first_call() {
    let calls = Counter::default();
    let err = fixed(ms(10), 4)
        .call(|| {
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 4);
    assert_eq!(err.reason(), StopReason::Exhausted);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.inner(), Some(&Boom(4)), "the last error is kept");
    assert_eq!(err.elapsed(), ms(30), "three waits after the first failure");

    let once = Counter::default();
    let err = fixed(ms(10), 1)
        .call(|| {
            once.bump();
            async { Err::<(), _>(Boom(0)) }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (once.get(), err.attempts(), err.reason()),
        (1, 1, StopReason::Exhausted)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn waits_follow_the_seeded_backoff_exactly() {
    let backoff = Backoff::exponential(ms(100))
        .with_max_delay(ms(700))
        .with_jitter(Jitter::Full)
        .with_seed(7);
    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(6)
            .with_backoff(backoff),
    )
    .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let _ = retry
        .call(|| {
            seen.push(start.elapsed());
            async { Err::<(), _>(Boom(0)) }
        })
        .await;
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    // tokio's timer fires on the next whole millisecond.
    let expected: Vec<Duration> = backoff
        .delays()
        .unwrap()
        .take(5)
        .map(|d| ms(d.as_nanos().div_ceil(1_000_000) as u64))
        .collect();
    assert_eq!(gaps, expected);
    assert!(gaps.iter().all(|d| *d <= ms(700)));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn only_retriable_failures_are_retried() {
    let calls = Counter::default();
    let retry = fixed(ms(1), 5).retry_if(|e: &Boom| e.0 % 2 == 1);
    let err = retry
        .call(|| {
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 2, "1 is transient, 2 is permanent");
    assert_eq!(err.reason(), StopReason::Permanent);
    assert!(err.is_permanent());
    assert_eq!(err.into_inner(), Some(Boom(2)));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn ignored_errors_are_returned_without_retry() {
    let calls = Counter::default();
    let retry = fixed(ms(1), 5).classify(|_: &Result<(), Boom>| Class::Ignored);
    let err = retry
        .call(|| {
            calls.bump();
            async { Err::<(), _>(Boom(9)) }
        })
        .await
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (1, StopReason::Permanent));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_success_classified_as_failure_is_retried_then_returned_as_is() {
    let calls = Counter::default();
    // An HTTP-like status that arrives as Ok: 503 is a failure.
    let retry = fixed(ms(5), 3).classify(|r: &Result<u16, Boom>| match r {
        Ok(503) => Class::Transient,
        Ok(_) => Class::Success,
        Err(_) => Class::Transient,
    });
    let status = retry
        .call(|| {
            calls.bump();
            async { Ok::<u16, Boom>(503) }
        })
        .await;
    assert_eq!(
        status.unwrap(),
        503,
        "after the last attempt the response itself comes back"
    );
    assert_eq!(calls.get(), 3);

    let flips = Counter::default();
    let status = retry
        .call(|| {
            let n = flips.bump();
            async move { Ok::<u16, Boom>(if n < 2 { 503 } else { 200 }) }
        })
        .await;
    assert_eq!(status.unwrap(), 200);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn retry_after_hint_sets_the_least_wait() {
    let retry = fixed(ms(10), 3).classify(|r: &Result<(), Boom>| match r {
        Ok(()) => Class::Success,
        Err(_) => Class::RetryAfter(Duration::from_secs(2)),
    });
    let start = Instant::now();
    let mut seen = Vec::new();
    let _ = retry
        .call(|| {
            seen.push(start.elapsed());
            async { Err::<(), _>(Boom(0)) }
        })
        .await;
    assert_eq!(
        seen,
        [
            Duration::ZERO,
            Duration::from_secs(2),
            Duration::from_secs(4)
        ]
    );
}

/// The first attempt's duration as a call without a deadline reports it: unknown, since its
/// start was not read, unless the `metrics` feature reads it for its histograms.
fn untimed_first(measured: Duration) -> Option<Duration> {
    cfg!(feature = "metrics").then_some(measured)
}

/// Up to 3 attempts 10 ms apart: the second fails with a 5 ms hint, the third permanently.
fn logged(
    clock: &ManualClock,
    first_timed: bool,
) -> Retry<impl Fn(&Result<(), Boom>) -> Class + Clone> {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(3)
            .with_backoff(Backoff::constant(ms(10)).with_jitter(Jitter::None))
            .with_first_attempt_timed(first_timed),
    )
    .unwrap()
    .with_clock(clock.clone().into())
    .classify(|r: &Result<(), Boom>| match r {
        Ok(()) => Class::Success,
        Err(Boom(2)) => Class::RetryAfter(ms(5)),
        Err(Boom(3)) => Class::Permanent,
        Err(_) => Class::Transient,
    })
}

/// Each attempt takes 20 ms more than the one before, from 30 ms, then fails.
fn slower_and_slower(clock: &ManualClock, calls: &Counter) -> Result<(), Boom> {
    let n = calls.bump();
    clock.advance(ms(20 + 10 * u64::from(n)));
    Err(Boom(n))
}

fn log_of<E>(err: &staunch::Error<E>) -> Vec<(u32, Option<Duration>, Class)> {
    err.attempt_log()
        .iter()
        .map(|a| (a.number(), a.duration(), a.class()))
        .collect()
}

#[test]
fn the_error_logs_each_attempt_with_its_duration_and_class() {
    let clock = ManualClock::new();
    let calls = Counter::default();
    let err = logged(&clock, false)
        .call_blocking(|| slower_and_slower(&clock, &calls))
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(
        log_of(&err),
        [
            // Not measured is not zero: the first attempt's start was never read.
            (1, untimed_first(ms(30)), Class::Transient),
            (2, Some(ms(40)), Class::RetryAfter(ms(5))),
            (3, Some(ms(50)), Class::Permanent),
        ]
    );
}

#[test]
fn the_first_attempt_is_timed_when_asked_or_when_the_time_is_read_anyway() {
    let clock = ManualClock::new();
    let calls = Counter::default();
    let err = logged(&clock, true)
        .call_blocking(|| slower_and_slower(&clock, &calls))
        .unwrap_err();
    assert_eq!(log_of(&err)[0], (1, Some(ms(30)), Class::Transient));

    // A deadline makes the call read the time at its start: the first attempt is timed free.
    let calls = Counter::default();
    let err = Deadline::after_from(clock.now(), Duration::from_secs(60))
        .scope_sync(|| logged(&clock, false).call_blocking(|| slower_and_slower(&clock, &calls)))
        .unwrap_err();
    assert_eq!(log_of(&err)[0], (1, Some(ms(30)), Class::Transient));
}

#[cfg(not(feature = "metrics"))]
#[test]
fn a_first_attempt_that_succeeds_reads_no_clock_unless_asked() {
    let clock = ManualClock::new();
    logged(&clock, false)
        .call_blocking(|| Ok::<_, Boom>(()))
        .unwrap();
    assert_eq!(clock.reads(), 0);
    logged(&clock, true)
        .call_blocking(|| Ok::<_, Boom>(()))
        .unwrap();
    assert_eq!(clock.reads(), 1, "the start, and nothing else on success");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn async_attempts_are_logged_in_tokio_time() {
    let calls = Counter::default();
    let err = fixed(ms(10), 3)
        .call(|| {
            let n = calls.bump();
            async move {
                tokio::time::sleep(ms(20 + 10 * u64::from(n))).await;
                Err::<(), _>(Boom(n))
            }
        })
        .await
        .unwrap_err();
    assert_eq!(
        log_of(&err),
        [
            (1, untimed_first(ms(30)), Class::Transient),
            (2, Some(ms(40)), Class::Transient),
            (3, Some(ms(50)), Class::Transient),
        ]
    );
    assert_eq!(
        err.elapsed(),
        ms(10 + 40 + 10 + 50),
        "unchanged: from the first failure"
    );
}

#[test]
fn on_retry_sees_each_retry_before_its_wait() {
    use staunch::retry::RetryEvent;
    use std::sync::{Arc, Mutex};

    let clock = ManualClock::new();
    let calls = Counter::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let retry = logged(&clock, true).with_name("db").on_retry({
        let seen = Arc::clone(&seen);
        let clock = clock.clone();
        let start = clock.now();
        move |event: &RetryEvent<'_, (), Boom>| {
            seen.lock().unwrap().push((
                event.policy().to_owned(),
                event.attempt(),
                event.delay(),
                event.class(),
                event.duration(),
                event.error().cloned(),
                // Called before the wait: the clock stands where the attempt ended.
                clock.elapsed_since(start),
            ));
        }
    });
    let err = retry
        .call_blocking(|| slower_and_slower(&clock, &calls))
        .unwrap_err();
    assert_eq!(err.attempts(), 3);
    let db = || "db".to_owned();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                db(),
                1,
                ms(10),
                Class::Transient,
                Some(ms(30)),
                Some(Boom(1)),
                ms(30)
            ),
            // The hint (5 ms) is shorter than the step: the wait is the step.
            (
                db(),
                2,
                ms(10),
                Class::RetryAfter(ms(5)),
                Some(ms(40)),
                Some(Boom(2)),
                ms(80)
            ),
        ],
        "no event for the third attempt: nothing is retried after it"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn on_retry_closures_infer_their_types_where_the_policy_is_used() {
    let retries = Counter::default();
    let retry = fixed(ms(10), 3).on_retry(|event| {
        retries.bump();
        assert!(event.error().is_some_and(|e: &Boom| e.0 < 3));
        assert_eq!(event.value(), None::<&u8>);
    });
    let calls = Counter::default();
    let err = retry
        .call(|| {
            let n = calls.bump();
            async move { Err::<u8, _>(Boom(n)) }
        })
        .await
        .unwrap_err();
    assert_eq!((err.attempts(), retries.get()), (3, 2));
    // Hooks stack, innermost first.
    let order = std::sync::Mutex::new(Vec::new());
    let stacked = fixed(ms(1), 2)
        .on_retry(|_: &staunch::retry::RetryEvent<'_, (), Boom>| order.lock().unwrap().push(1))
        .on_retry(|_: &staunch::retry::RetryEvent<'_, (), Boom>| order.lock().unwrap().push(2));
    let _ = stacked.call(|| async { Err::<(), _>(Boom(0)) }).await;
    assert_eq!(*order.lock().unwrap(), [1, 2]);
}

/// A connection whose queries fail until it has been repaired `repairs_needed` times.
#[cfg(feature = "tokio")]
#[derive(Debug, Default)]
struct Connection {
    queries: u32,
    repairs: u32,
    repairs_needed: u32,
}

#[cfg(feature = "tokio")]
impl Connection {
    async fn query(&mut self) -> Result<u32, Boom> {
        self.queries += 1;
        tokio::task::yield_now().await;
        if self.repairs >= self.repairs_needed {
            Ok(self.queries)
        } else {
            Err(Boom(self.queries))
        }
    }

    async fn repair(&mut self) {
        self.repairs += 1;
    }
}

/// One attempt through a borrowed connection, repaired after a failure.
#[cfg(feature = "tokio")]
async fn query_and_repair(conn: &mut Connection) -> (&mut Connection, Result<u32, Boom>) {
    let result = conn.query().await;
    if result.is_err() {
        conn.repair().await;
    }
    (conn, result)
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_context_is_lent_to_each_attempt_and_comes_back() {
    let mut conn = Connection {
        repairs_needed: 2,
        ..Connection::default()
    };
    let (_, answer) = fixed(ms(10), 5)
        .call_with_context(&mut conn, query_and_repair)
        .await;
    assert_eq!(answer.unwrap(), 3, "the third query, after two repairs");
    assert_eq!(
        (conn.queries, conn.repairs),
        (3, 2),
        "one connection throughout"
    );

    // When retrying stops, the context comes back with the error.
    let mut broken = Connection {
        repairs_needed: 99,
        ..Connection::default()
    };
    let (back, err) = fixed(ms(10), 2)
        .call_with_context(&mut broken, query_and_repair)
        .await;
    assert_eq!(back.queries, 2);
    assert_eq!(err.unwrap_err().reason(), StopReason::Exhausted);

    // And when the deadline refuses the first attempt, before it is lent at all.
    let mut idle = Connection::default();
    let (back, err) = Deadline::after(Duration::ZERO)
        .scope(fixed(ms(10), 2).call_with_context(&mut idle, query_and_repair))
        .await;
    assert_eq!(
        (back.queries, err.unwrap_err().reason()),
        (0, StopReason::Deadline)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_an_owned_context_can_be_spawned() {
    let retry = fixed(Duration::ZERO, 3);
    let task = tokio::spawn(async move {
        let conn = Connection {
            repairs_needed: 1,
            ..Connection::default()
        };
        retry
            .call_with_context(conn, |mut conn| async move {
                let result = conn.query().await;
                if result.is_err() {
                    conn.repair().await;
                }
                (conn, result)
            })
            .await
    });
    let (conn, answer) = task.await.unwrap();
    assert_eq!((answer.unwrap(), conn.repairs), (2, 1));
}

/// Constant 100 ms between up to 10 attempts, retrying for at most `limit` in all.
fn limited(limit: Duration) -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(10)
            .with_backoff(Backoff::constant(ms(100)).with_jitter(Jitter::None))
            .with_max_duration(limit),
    )
    .unwrap()
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn max_duration_stops_before_a_sleep_that_would_pass_it() {
    // Each attempt takes 50 ms and fails: they end at 50, 200, 350, 500 ms from the start.
    // After the fourth, a 100 ms sleep would end at 600 ms, past the 500 ms limit.
    let start = Instant::now();
    let calls = Counter::default();
    let err = limited(ms(500))
        .call(|| {
            let n = calls.bump();
            async move {
                tokio::time::sleep(ms(50)).await;
                Err::<(), _>(Boom(n))
            }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts(), err.inner()),
        (StopReason::MaxDuration, 4, Some(&Boom(4)))
    );
    assert_eq!(
        start.elapsed(),
        ms(500),
        "stopped at once, without the sleep"
    );
    assert!(!err.is_deadline(), "its own reason, not the deadline's");
}

#[test]
fn max_duration_allows_a_sleep_that_ends_exactly_at_it() {
    // Instant attempts at 0, 100, 200 and 300 ms: the sleep ending at 300 ms is allowed.
    let clock = ManualClock::new();
    let calls = Counter::default();
    let err = limited(ms(300))
        .with_clock(clock.clone().into())
        .call_blocking(|| Err::<(), _>(Boom(calls.bump())))
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::MaxDuration, 4));
    // The longest limit there is never overflows, and stops nothing.
    let calls = Counter::default();
    let err = limited(Duration::MAX)
        .with_clock(clock.into())
        .call_blocking(|| Err::<(), _>(Boom(calls.bump())))
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Exhausted, 10));
}

#[test]
fn a_zero_max_duration_is_a_config_error() {
    let err = Retry::new(RetryConfig::new().with_max_duration(Duration::ZERO)).unwrap_err();
    assert_eq!(err.field(), "max_duration");
}

/// Exponential from 100 ms with no jitter: attempt 3 fails with a hint, the others without.
fn hinted_on_the_third(hint: Duration) -> Retry<impl Fn(&Result<(), Boom>) -> Class + Clone> {
    Retry::new(
        RetryConfig::new().with_max_attempts(6).with_backoff(
            Backoff::exponential(ms(100))
                .with_max_delay(Duration::from_secs(10))
                .with_jitter(Jitter::None),
        ),
    )
    .unwrap()
    .classify(move |r: &Result<(), Boom>| match r {
        Ok(()) => Class::Success,
        Err(Boom(3)) => Class::RetryAfter(hint),
        Err(_) => Class::Transient,
    })
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn after_a_hinted_wait_the_backoff_restarts_from_the_initial_delay() {
    // gRPC A6: "If this attempt also fails, retry delay will reset to initial backoff".
    let retry = hinted_on_the_third(Duration::from_secs(1));
    let start = Instant::now();
    let mut seen = Vec::new();
    let calls = Counter::default();
    let _ = retry
        .call(|| {
            seen.push(start.elapsed());
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        })
        .await;
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    // 100, 200, then the hint (1 s, above the 400 ms step), then from the start again.
    assert_eq!(gaps, [100, 200, 1000, 100, 200].map(ms));
}

#[test]
fn a_hint_shorter_than_the_step_still_restarts_the_backoff() {
    let clock = ManualClock::new();
    let retry = hinted_on_the_third(ms(10)).with_clock(clock.clone().into());
    let start = clock.now();
    let mut seen = Vec::new();
    let _ = retry.call_blocking(|| {
        seen.push(clock.elapsed_since(start));
        Err::<(), _>(Boom(seen.len() as u32))
    });
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    // The hinted wait is the step (400 ms, the longer); the step after it is the first again.
    assert_eq!(gaps, [100, 200, 400, 100, 200].map(ms));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_the_ceiling_stops_instead_of_calling_early() {
    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(5)
            .with_max_retry_after(Duration::from_secs(30)),
    )
    .unwrap()
    .classify(|_: &Result<(), Boom>| Class::RetryAfter(Duration::from_secs(3600)));
    let calls = Counter::default();
    let start = Instant::now();
    let err = retry
        .call(|| {
            calls.bump();
            async { Err::<(), _>(Boom(1)) }
        })
        .await
        .unwrap_err();
    assert_eq!(
        (calls.get(), err.reason()),
        (1, StopReason::RetryAfterTooLong)
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "no sleep at all");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn never_sleeps_past_the_deadline_and_stops_with_the_last_error() {
    let start = Instant::now();
    let calls = Counter::default();
    let err = Deadline::after(Duration::from_secs(1))
        .scope(fixed(ms(400), 10).call(|| {
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        }))
        .await
        .unwrap_err();
    // Attempts at 0, 400 and 800 ms; a wait to 1200 ms would pass the deadline.
    assert_eq!(calls.get(), 3);
    assert_eq!(err.reason(), StopReason::Deadline);
    assert_eq!(err.inner(), Some(&Boom(3)));
    assert_eq!(
        start.elapsed(),
        ms(800),
        "stopped at once, not at the deadline"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_wait_ending_exactly_at_the_deadline_leaves_no_time_and_is_refused() {
    let calls = Counter::default();
    let err = Deadline::after(ms(500))
        .scope(fixed(ms(500), 10).call(|| {
            calls.bump();
            async { Err::<(), _>(Boom(0)) }
        }))
        .await
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (1, StopReason::Deadline));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_the_deadline() {
    let deadline = Deadline::after(ms(100));
    tokio::time::advance(ms(100)).await;
    let calls = Counter::default();
    let err = fixed(ms(1), 3)
        .call_with(&CallOptions::new().with_deadline(deadline), || {
            calls.bump();
            async { Ok::<_, Boom>(()) }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 0, "the dependency is never called");
    assert_eq!(
        (err.reason(), err.attempts(), err.inner()),
        (StopReason::Deadline, 0, None)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn explicit_and_scoped_deadlines_the_tighter_wins() {
    let calls = Counter::default();
    let loose = CallOptions::new().with_deadline(Deadline::after(Duration::from_secs(60)));
    let err = Deadline::after(ms(250))
        .scope(fixed(ms(100), 10).call_with(&loose, || {
            calls.bump();
            async { Err::<(), _>(Boom(0)) }
        }))
        .await
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (3, StopReason::Deadline));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_long_attempt_that_eats_the_deadline_is_not_followed_by_another() {
    let calls = Counter::default();
    let err = Deadline::after(Duration::from_secs(1))
        .scope(fixed(ms(1), 10).call(|| {
            calls.bump();
            async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Err::<(), _>(Boom(0))
            }
        }))
        .await
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (1, StopReason::Deadline));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn dropping_the_future_cancels_mid_sleep() {
    let calls = Counter::default();
    let task = tokio::spawn({
        let calls = calls.clone();
        async move {
            fixed(Duration::from_secs(10), 5)
                .call(|| {
                    calls.bump();
                    async { Err::<(), _>(Boom(0)) }
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(calls.get(), 1, "asleep before the second attempt");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.get(), 1, "no attempt after the drop");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_token_ends_the_sleep_at_once_and_reports_cancellation() {
    let token = CancellationToken::new();
    let options = CallOptions::new().with_cancellation(token.clone());
    let calls = Counter::default();
    let start = Instant::now();
    let retry = fixed(Duration::from_secs(3600), 5);
    let call = retry.call_with(&options, || {
        let n = calls.bump();
        async move { Err::<(), _>(Boom(n)) }
    });
    let canceller = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        token.cancel();
    };
    let (result, ()) = tokio::join!(call, canceller);
    let err = result.unwrap_err();
    assert_eq!(
        err.reason(),
        StopReason::Cancelled,
        "not reported as exhausted"
    );
    assert!(err.is_cancelled());
    assert_eq!((err.attempts(), err.inner()), (1, Some(&Boom(1))));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "woke when the token fired"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_token_also_abandons_an_attempt_in_flight() {
    let token = CancellationToken::new();
    let options = CallOptions::new().with_cancellation(token.clone());
    let retry = fixed(ms(1), 5);
    let call = retry.call_with(&options, std::future::pending::<Result<(), Boom>>);
    let (result, ()) = tokio::join!(call, async { token.cancel() });
    let err = result.unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts(), err.inner()),
        (StopReason::Cancelled, 1, None)
    );
}

#[test]
fn blocking_calls_keep_the_same_rules_in_manual_time() {
    let clock = ManualClock::new();
    let backoff = Backoff::exponential(ms(100))
        .with_jitter(Jitter::Equal)
        .with_seed(3);
    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(4)
            .with_backoff(backoff),
    )
    .unwrap()
    .with_clock(clock.clone().into());
    let start = clock.now();
    let mut seen = Vec::new();
    let err = retry
        .call_blocking(|| {
            seen.push(clock.elapsed_since(start));
            Err::<(), _>(Boom(seen.len() as u32))
        })
        .unwrap_err();
    let mut expected = vec![Duration::ZERO];
    for delay in backoff.delays().unwrap().take(3) {
        expected.push(*expected.last().unwrap() + delay);
    }
    assert_eq!(seen, expected);
    assert_eq!(
        (err.reason(), err.attempts(), err.into_inner()),
        (StopReason::Exhausted, 4, Some(Boom(4)))
    );

    // The deadline in a sync scope binds blocking calls too.
    let deadline = Deadline::after_from(clock.now(), ms(250));
    let calls = Counter::default();
    let err = deadline
        .scope_sync(|| {
            fixed(ms(100), 10)
                .with_clock(clock.clone().into())
                .call_blocking(|| {
                    calls.bump();
                    Err::<(), _>(Boom(0))
                })
        })
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (3, StopReason::Deadline));
}

#[test]
fn a_blocking_sleep_wakes_when_another_thread_cancels() {
    let token = CancellationToken::new();
    let (asleep_tx, asleep_rx) = std::sync::mpsc::channel();
    let caller = std::thread::spawn({
        let token = token.clone();
        move || {
            // One hour between attempts on the real clock: only the token can end this.
            fixed(Duration::from_secs(3600), 3).call_blocking_with(
                &CallOptions::new().with_cancellation(token),
                || {
                    let _ = asleep_tx.send(());
                    Err::<(), _>(Boom(1))
                },
            )
        }
    });
    asleep_rx.recv().expect("the first attempt ran");
    token.cancel();
    let err = caller.join().expect("caller thread").unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Cancelled, 1));
}

#[test]
fn a_cancelled_token_stops_a_blocking_call_before_it_starts() {
    let token = CancellationToken::new();
    token.cancel();
    let calls = Counter::default();
    let err = fixed(ms(1), 3)
        .call_blocking_with(&CallOptions::new().with_cancellation(token), || {
            calls.bump();
            Ok::<_, Boom>(())
        })
        .unwrap_err();
    assert_eq!(
        (calls.get(), err.reason(), err.attempts()),
        (0, StopReason::Cancelled, 0)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_ratio_budget_caps_amplification_across_calls() {
    const CALLS: u32 = 1000;
    let ratio = 0.6;
    let floor = 5; // 1 per second over a 5 s window
    let budget = RetryBudget::new(
        BudgetConfig::ratio(ratio)
            .with_min_per_second(1)
            .with_window(Duration::from_secs(5)),
    )
    .unwrap();
    let retry = fixed(Duration::ZERO, 5).with_budget(budget);
    let attempts = Counter::default();
    let mut by_reason = std::collections::HashMap::new();
    for _ in 0..CALLS {
        let err = retry
            .call(|| {
                attempts.bump();
                async { Err::<(), _>(Boom(0)) }
            })
            .await
            .unwrap_err();
        *by_reason.entry(err.reason()).or_insert(0) += 1;
    }
    let cap = f64::from(CALLS) * (1.0 + ratio) + f64::from(floor);
    assert!(
        f64::from(attempts.get()) <= cap,
        "{} attempts > cap {cap}",
        attempts.get()
    );
    // ...and the budget is used, not refused outright: 0.6 is not rounded down either.
    assert!(
        f64::from(attempts.get()) >= cap - 5.0,
        "{} attempts",
        attempts.get()
    );
    assert!(by_reason[&StopReason::Budget] > 0, "{by_reason:?}");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_token_bucket_stops_retries_once_half_drained() {
    let budget = RetryBudget::new(BudgetConfig::token_bucket(10, 0.1)).unwrap();
    let retry = fixed(Duration::ZERO, 3).with_budget(budget.clone());
    let attempts = Counter::default();
    for _ in 0..100 {
        let _ = retry
            .call(|| {
                attempts.bump();
                async { Err::<(), _>(Boom(0)) }
            })
            .await;
    }
    // Retries run only while more than 5 of 10 tokens remain: at most 5 retries in all.
    assert!(attempts.get() <= 100 + 5, "{}", attempts.get());
    let err = retry
        .call(|| async { Err::<(), _>(Boom(0)) })
        .await
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Budget, 1));

    // A shared handle: another policy sees the same drained bucket.
    let other = fixed(Duration::ZERO, 3).with_budget(budget);
    assert!(
        other
            .call(|| async { Err::<(), _>(Boom(0)) })
            .await
            .unwrap_err()
            .is_budget()
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn without_a_budget_every_call_makes_every_attempt() {
    let attempts = Counter::default();
    let retry = fixed(Duration::ZERO, 5);
    for _ in 0..100 {
        let _ = retry
            .call(|| {
                attempts.bump();
                async { Err::<(), _>(Boom(0)) }
            })
            .await;
    }
    assert_eq!(
        attempts.get(),
        500,
        "the amplification a budget exists to prevent"
    );
}

#[test]
fn the_error_keeps_the_last_failure_as_its_source() {
    let err = fixed(Duration::ZERO, 2)
        .with_clock(ManualClock::new().into())
        .call_blocking(|| Err::<(), _>(Boom(7)))
        .unwrap_err();
    let source = std::error::Error::source(&err).expect("a source");
    assert_eq!(source.to_string(), "boom #7");
    assert_eq!(
        err.to_string(),
        "attempts exhausted after 2 attempts (transient, transient); last error: boom #7"
    );
}

#[test]
fn public_types_are_send_sync_and_unpin() {
    fn send_sync<T: Send + Sync>() {}
    fn unpin<T: Unpin>() {}
    send_sync::<Retry>();
    send_sync::<RetryBudget>();
    send_sync::<CancellationToken>();
    send_sync::<Deadline>();
    send_sync::<CallOptions>();
    send_sync::<staunch::Error<std::io::Error>>();
    send_sync::<staunch::ConfigError>();
    send_sync::<staunch::Name>();
    send_sync::<staunch::AttemptRecord>();
    send_sync::<staunch::retry::BudgetSnapshot>();
    send_sync::<staunch::retry::RetryEvent<'static, u8, std::io::Error>>();
    let hooked = fixed(ms(1), 2).on_retry(|_: &staunch::retry::RetryEvent<'_, u8, Boom>| {});
    fn send_sync_value<T: Send + Sync>(_: &T) {}
    send_sync_value(&hooked);
    unpin::<Retry>();
    unpin::<staunch::Error<std::io::Error>>();

    #[cfg(feature = "tokio")]
    {
        fn send_future<F: std::future::Future + Send>(_: F) {}
        let retry = fixed(ms(1), 2);
        send_future(retry.call(|| async { Ok::<_, Boom>(()) }));
        send_future(hooked.call(|| async { Ok::<_, Boom>(1) }));
        let mut context = 0u32;
        send_future(
            retry.call_with_context(&mut context, |n: &mut u32| async move {
                *n += 1;
                (n, Ok::<_, Boom>(()))
            }),
        );
    }
}

#[cfg(feature = "tower")]
mod tower_layer;
