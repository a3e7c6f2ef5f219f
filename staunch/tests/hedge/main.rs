//! Integration tests for `staunch::hedge`: one test per rule of DESIGN.md "Tail latency
//! (hedging)", in paused time, plus the property that a hedged call takes the fastest of the
//! attempts it started.
#![cfg(feature = "tokio")]

#[cfg(all(feature = "tracing", feature = "metrics"))]
#[path = "../support/telemetry.rs"]
mod capture;
mod pipeline;
mod support;
#[cfg(all(feature = "tracing", feature = "metrics"))]
mod telemetry;
#[cfg(feature = "tower")]
mod tower_layer;

use std::time::Duration;

use proptest::prelude::*;
use staunch::classify::Class;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeEvent, HedgeEventKind, Trigger};
use staunch::retry::{BudgetConfig, CallOptions, RetryBudget};
use staunch::{CancellationToken, ConfigError, Deadline, StopReason};
use support::{Script, Step, fixed, ms};
use tokio::time::Instant;

#[test]
fn bad_settings_are_build_time_errors_naming_the_setting() {
    let field = |config: HedgeConfig| -> &'static str {
        let err: ConfigError = Hedge::new(config).unwrap_err();
        err.field()
    };
    let config = HedgeConfig::new(HedgeDelay::fixed(ms(10)));
    assert_eq!(field(config.with_max_attempts(0)), "max_attempts");
    assert_eq!(field(config.with_max_attempts(6)), "max_attempts");
    assert_eq!(
        field(config.with_delay(HedgeDelay::percentile(100.0))),
        "percentile"
    );
    assert_eq!(
        field(config.with_delay(HedgeDelay::percentile(0.0))),
        "percentile"
    );
    assert_eq!(
        field(config.with_delay(HedgeDelay::percentile(90.0).with_min(ms(9)).with_max(ms(8)))),
        "min"
    );
    assert!(Hedge::new(config.with_max_attempts(1)).is_ok());
    assert!(Hedge::new(config.with_max_attempts(5)).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_first_answer_before_the_delay_sends_no_hedge() {
    let script = Script::new([Step::ok(5)]);
    let start = Instant::now();
    let value = fixed(ms(20), 3).call(|| script.attempt()).await.unwrap();
    assert_eq!((value, start.elapsed()), (0, ms(5)));
    assert_eq!(script.started(), [ms(0)]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_is_hedged_after_the_delay_and_the_first_answer_wins() {
    let script = Script::new([Step::ok(1000), Step::ok(5)]);
    let start = Instant::now();
    let value = fixed(ms(20), 2).call(|| script.attempt()).await.unwrap();
    assert_eq!(value, 1, "the hedge's answer");
    assert_eq!(start.elapsed(), ms(25));
    assert_eq!(script.started(), [ms(0), ms(20)]);
    // The loser is dropped the moment the winner answers, not when it would have finished.
    assert_eq!(script.dropped(), [Some(ms(25)), None]);
}

#[tokio::test(start_paused = true)]
async fn hedges_go_out_a_delay_apart_up_to_max_attempts() {
    let script = Script::new([Step::ok(100), Step::ok(100), Step::ok(100), Step::ok(1)]);
    let start = Instant::now();
    let value = fixed(ms(10), 3).call(|| script.attempt()).await.unwrap();
    assert_eq!(value, 0, "the first attempt answers first, at 100 ms");
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(script.started(), [ms(0), ms(10), ms(20)], "three in all");
    assert_eq!(script.dropped(), [None, Some(ms(100)), Some(ms(100))]);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_one_hedges_nothing() {
    let script = Script::new([Step::ok(1000), Step::ok(1)]);
    let start = Instant::now();
    let value = fixed(ms(10), 1).call(|| script.attempt()).await.unwrap();
    assert_eq!((value, start.elapsed()), (0, ms(1000)));
    assert_eq!(script.started().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_sends_the_next_attempt_at_once() {
    let script = Script::new([Step::transient(5), Step::ok(10)]);
    let start = Instant::now();
    let value = fixed(ms(50), 2).call(|| script.attempt()).await.unwrap();
    assert_eq!(value, 1);
    assert_eq!(
        script.started(),
        [ms(0), ms(5)],
        "not after the 50 ms delay"
    );
    assert_eq!(start.elapsed(), ms(15));
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_the_next_hedge_is_due_a_delay_later() {
    // A6: "subsequent hedged requests will resume at hedgingDelay".
    let script = Script::new([
        Step::ok(1000),
        Step::transient(2),
        Step::ok(1000),
        Step::ok(1),
    ]);
    let value = fixed(ms(10), 4).call(|| script.attempt()).await.unwrap();
    assert_eq!(value, 3);
    assert_eq!(script.started(), [ms(0), ms(10), ms(12), ms(22)]);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_ends_the_call_and_drops_the_others() {
    let script = Script::new([Step::ok(1000), Step::permanent(5)]);
    let start = Instant::now();
    let err = fixed(ms(20), 2)
        .call(|| script.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(err.inner(), Some(&support::Fail::Permanent(1)));
    assert_eq!(err.attempts(), 2);
    assert_eq!(start.elapsed(), ms(25));
    assert_eq!(script.dropped(), [Some(ms(25)), None]);
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_error_says_so_with_each_class() {
    let script = Script::new([
        Step::transient(30),
        Step::retry_after(5, 1),
        Step::transient(40),
    ]);
    let err = fixed(ms(10), 3)
        .call(|| script.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Exhausted);
    assert_eq!(err.attempts(), 3);
    // In the order they failed: the hedge at 10 ms failed at 15 (its hint pushed the third
    // attempt to 16), the first at 30, the third at 56.
    assert_eq!(
        err.attempt_log()
            .iter()
            .map(|a| a.class())
            .collect::<Vec<_>>(),
        [Class::RetryAfter(ms(1)), Class::Transient, Class::Transient]
    );
    assert_eq!(script.started(), [ms(0), ms(10), ms(16)]);
    assert_eq!(
        err.inner(),
        Some(&support::Fail::Transient(2)),
        "the last failure"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "attempts exhausted after 3 attempts (retry after 1ms, transient, transient)"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ok_the_classifier_calls_a_failure_is_returned_as_is_when_nothing_answers_better() {
    let hedge = fixed(ms(10), 2).classify(|r: &Result<u32, support::Fail>| match r {
        Ok(0) => Class::Transient, // a "503" that arrived as Ok
        Ok(_) => Class::Success,
        Err(_) => Class::Transient,
    });
    let script = Script::new([Step::ok(1), Step::ok(1)]);
    // Both attempts answer `Ok(index)`: attempt 0's Ok(0) is a failure, the next wins.
    assert_eq!(hedge.call(|| script.attempt()).await.unwrap(), 1);
    let always_zero = hedge
        .clone()
        .classify(|_: &Result<u32, support::Fail>| Class::Transient);
    let zeros = Script::new([Step::ok(1), Step::ok(1)]);
    assert_eq!(always_zero.call(|| zeros.attempt()).await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn hedges_spend_the_retry_budget_and_a_refused_hedge_waits_for_the_attempts_in_flight() {
    // Ratio 0.5 with no floor: a hedge is allowed while hedges <= 0.5 x calls.
    let budget =
        RetryBudget::new(BudgetConfig::ratio(0.5).with_min_per_second(0)).expect("valid budget");
    let hedge = fixed(ms(10), 2).with_budget(budget);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let script = Script::new([Step::ok(100), Step::ok(1)]);
        let start = Instant::now();
        let value = hedge.call(|| script.attempt()).await.unwrap();
        seen.push((value, start.elapsed(), script.started().len()));
    }
    let refused = (0, ms(100), 1); // no hedge: the call waited for its first attempt
    let hedged = (1, ms(11), 2);
    assert_eq!(seen, [refused, hedged, refused, hedged]);
}

#[tokio::test(start_paused = true)]
async fn a_spent_token_bucket_sends_no_hedge_and_a_failure_then_ends_the_call_as_budget() {
    let budget = RetryBudget::new(BudgetConfig::token_bucket(2, 0.1)).expect("valid budget");
    let hedge = fixed(ms(10), 3).with_budget(budget);
    // Two failed calls of one attempt each drain the bucket to 0 (no retry at or below half).
    let one = fixed(ms(10), 1).with_budget(hedge.budget().unwrap().clone());
    for _ in 0..2 {
        let failing = Script::new([Step::transient(1)]);
        let _ = one.call(|| failing.attempt()).await;
    }
    let script = Script::new([Step::transient(50), Step::ok(1)]);
    let start = Instant::now();
    let err = hedge.call(|| script.attempt()).await.unwrap_err();
    assert_eq!(err.reason(), StopReason::Budget);
    assert_eq!(
        script.started(),
        [ms(0)],
        "no hedge at 10 ms, no attempt after the failure"
    );
    assert_eq!(
        start.elapsed(),
        ms(50),
        "the call waited for the attempt in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_at_or_past_the_deadline() {
    // The hedges would go at 20, 40, 60: the deadline at 60 lets two through.
    let script = Script::new([Step::ok(100); 5]);
    let start = Instant::now();
    let value = Deadline::after(ms(60))
        .scope(fixed(ms(20), 5).call(|| script.attempt()))
        .await
        .unwrap();
    assert_eq!(value, 0);
    assert_eq!(script.started(), [ms(0), ms(20), ms(40)]);
    // The standalone policy does not cut an attempt short (a pipeline's attempt timeout does).
    assert_eq!(start.elapsed(), ms(100));

    // A failure after the deadline sends nothing more: the call ends on it.
    let script = Script::new([Step::transient(70), Step::ok(1)]);
    let options = CallOptions::new().with_deadline(Deadline::after(ms(60)));
    let err = fixed(ms(100), 3)
        .call_with(&options, || script.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Deadline);
    assert_eq!(script.started(), [ms(0)]);

    // Out of time before the first attempt: nothing is called.
    let past = CallOptions::new().with_deadline(Deadline::after(Duration::ZERO));
    let err = fixed(ms(10), 2)
        .call_with(&past, || async { Ok::<_, support::Fail>(1) })
        .await
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Deadline, 0));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_delays_the_next_attempt_and_one_too_long_stops_hedging() {
    let script = Script::new([Step::retry_after(5, 30), Step::ok(1)]);
    let value = fixed(ms(100), 2).call(|| script.attempt()).await.unwrap();
    assert_eq!(value, 1);
    assert_eq!(
        script.started(),
        [ms(0), ms(35)],
        "5 ms, then the 30 ms hint"
    );

    let hedge = Hedge::new(
        HedgeConfig::new(HedgeDelay::fixed(ms(100)))
            .with_max_attempts(2)
            .with_max_retry_after(ms(20)),
    )
    .unwrap()
    .classify(support::classify as support::Classifier);
    let script = Script::new([Step::retry_after(5, 30), Step::ok(1)]);
    let err = hedge.call(|| script.attempt()).await.unwrap_err();
    assert_eq!(err.reason(), StopReason::RetryAfterTooLong);
    assert_eq!(script.started(), [ms(0)]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_drops_every_attempt_in_flight() {
    let script = Script::new([Step::ok(1000); 3]);
    let hedge = fixed(ms(10), 3);
    let call = hedge.call(|| script.attempt());
    let outcome = tokio::time::timeout(ms(25), call).await;
    assert!(outcome.is_err(), "timed out");
    assert_eq!(script.started(), [ms(0), ms(10), ms(20)]);
    assert_eq!(
        script.dropped(),
        [Some(ms(25)), Some(ms(25)), Some(ms(25))],
        "every attempt dropped with the call, none left running"
    );
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_token_ends_the_call_and_drops_every_attempt() {
    let script = Script::new([Step::transient(5), Step::ok(1000), Step::ok(1000)]);
    let token = CancellationToken::new();
    let options = CallOptions::new().with_cancellation(token.clone());
    let hedge = fixed(ms(10), 3);
    let cancel = async {
        tokio::time::sleep(ms(30)).await;
        token.cancel();
    };
    let (outcome, ()) = tokio::join!(hedge.call_with(&options, || script.attempt()), cancel);
    let err = outcome.unwrap_err();
    assert_eq!(err.reason(), StopReason::Cancelled);
    assert_eq!(err.attempts(), 3);
    assert_eq!(
        err.inner(),
        Some(&support::Fail::Transient(0)),
        "the failure so far"
    );
    assert_eq!(script.live(), 0);
    assert_eq!(script.started(), [ms(0), ms(5), ms(15)]);
}

#[tokio::test(start_paused = true)]
async fn the_hook_sees_hedges_sent_won_and_refused() {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let budget = RetryBudget::new(BudgetConfig::ratio(0.5).with_min_per_second(0)).unwrap();
    let hedge = fixed(ms(10), 2)
        .with_budget(budget)
        .with_name("replicas")
        .on_hedge({
            let events = events.clone();
            move |event: &HedgeEvent| events.lock().unwrap().push(*event)
        });
    for _ in 0..2 {
        let script = Script::new([Step::ok(100), Step::ok(1)]);
        hedge.call(|| script.attempt()).await.unwrap();
    }
    let events = events.lock().unwrap().clone();
    let kinds: Vec<(u32, HedgeEventKind)> = events.iter().map(|e| (e.attempt, e.kind)).collect();
    assert_eq!(
        kinds,
        [
            // The first call: one call, 0.5 allowed: refused.
            (2, HedgeEventKind::Refused(StopReason::Budget)),
            // The second: two calls pay for one hedge, which wins.
            (
                2,
                HedgeEventKind::Sent {
                    trigger: Trigger::Delay
                }
            ),
            (2, HedgeEventKind::Won),
        ]
    );
    assert!(events.iter().all(|e| e.policy == "replicas"));
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_delay_starts_at_the_ceiling_then_follows_the_percentile() {
    let hedge = Hedge::new(HedgeConfig::new(
        HedgeDelay::percentile(90.0)
            .with_min(ms(1))
            .with_max(ms(500))
            .with_min_samples(50),
    ))
    .unwrap();
    assert_eq!(hedge.delay(), ms(500), "the ceiling before enough samples");
    for _ in 0..64 {
        hedge
            .call(|| async {
                tokio::time::sleep(ms(20)).await;
                Ok::<_, support::Fail>(())
            })
            .await
            .unwrap();
    }
    let delay = hedge.delay();
    assert!(
        delay.abs_diff(ms(20)) <= ms(1),
        "p90 of 20 ms calls: {delay:?}"
    );
    // A stuck call is now hedged after about 20 ms.
    let script = Script::new([Step::ok(1000), Step::ok(5)]);
    hedge.call(|| script.attempt()).await.unwrap();
    let hedged_at = script.started()[1];
    // Timers fire on whole milliseconds: at the delay, or within a millisecond after it.
    assert!(
        delay <= hedged_at && hedged_at <= delay + ms(1),
        "{hedged_at:?}"
    );
}

/// With a fifth of calls slow, the p90 is the slow latency. Hedges win most of those calls, so
/// if the dropped slow first attempts gave no sample, the estimate would see mostly fast ones,
/// its p90 would fall to the fast latency, and every slow call would be hedged; read as
/// latencies, their times so far would only creep up a hedge's latency at a time. Counted as
/// censored (Kaplan–Meier), they put the estimate back at the slow latency.
#[tokio::test(start_paused = true)]
async fn dropped_first_attempts_keep_the_adaptive_delay_from_spiralling_down() {
    let hedge = Hedge::new(
        HedgeConfig::new(
            HedgeDelay::percentile(90.0)
                .with_min(ms(1))
                .with_max(ms(2000))
                .with_min_samples(20),
        )
        .with_max_attempts(2),
    )
    .unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut hedges = 0;
    for _ in 0..3000 {
        let slow = |rng: &mut fastrand::Rng| if rng.u32(0..5) == 0 { 1000 } else { 10 };
        let script = Script::new([Step::ok(slow(&mut rng)), Step::ok(slow(&mut rng))]);
        hedge.call(|| script.attempt()).await.unwrap();
        hedges += script.started().len() - 1;
    }
    let delay = hedge.delay();
    assert!(delay >= ms(900), "the p90 stays near 1 s: {delay:?}");
    assert!(
        hedges < 3000 / 3,
        "only slow calls are hedged: {hedges} of 3000"
    );
}

#[test]
fn the_futures_are_send_when_their_parts_are() {
    fn is_send<T: Send>(_: &T) {}
    let hedge = fixed(ms(1), 2);
    is_send(&hedge.call(|| async { Ok::<_, support::Fail>(1) }));
    fn is_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    is_sync::<Hedge>();
}

proptest! {
    // Each case runs a paused runtime: a few hundred are plenty.
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For any latencies, a hedged call (every attempt succeeding) answers at the earliest
    /// `start + latency` over the attempts started before the first answer (attempt `i` starts
    /// at `i × delay`), with the answer of the attempt that achieves it (the oldest on a tie).
    #[test]
    fn a_hedged_call_takes_the_fastest_attempt_it_started(
        latencies in proptest::collection::vec(0u64..200, 5),
        delay in 0u64..100,
        max_attempts in 1u32..=5,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (value, took, started) = runtime.block_on(async {
            let steps: Vec<Step> = latencies.iter().map(|&l| Step::ok(l)).collect();
            let script = Script::new(steps);
            let start = Instant::now();
            let value = fixed(ms(delay), max_attempts).call(|| script.attempt()).await.unwrap();
            (value, start.elapsed(), script.started().len())
        });
        let finish = |i: usize| i as u64 * delay + latencies[i];
        let n = max_attempts as usize;
        let best = (0..n).map(finish).min().unwrap();
        let winner = (0..n).find(|&i| finish(i) == best).unwrap();
        prop_assert_eq!(took, ms(best));
        prop_assert_eq!(value as usize, winner);
        // Started: every attempt due before the answer, and none due after it.
        let due_before = (1..n).filter(|&i| (i as u64 * delay) < best).count() + 1;
        let due_by = (1..n).filter(|&i| (i as u64 * delay) <= best).count() + 1;
        prop_assert!(due_before <= started && started <= due_by, "started {}", started);
    }
}
