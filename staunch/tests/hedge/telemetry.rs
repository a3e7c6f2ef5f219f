//! The `tracing` events and `metrics` counters of hedged calls, captured by a thread-local
//! recorder and subscriber.

use staunch::retry::{BudgetConfig, RetryBudget};

use crate::capture::{Events, Metrics, with_events};
use crate::support::{Script, Step, fixed, ms};

/// Runs `f` in a paused current-thread runtime with a fresh recorder and subscriber.
fn observe<F: Future<Output = ()>>(f: impl FnOnce() -> F) -> (Metrics, Vec<String>) {
    let counters = Metrics::default();
    let events = Events::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&counters, || {
        with_events(&events, || runtime.block_on(f()));
    });
    let events = events.0.lock().unwrap().clone();
    (counters, events)
}

#[test]
fn hedges_sent_won_and_refused_are_counted_and_traced() {
    let budget = RetryBudget::new(BudgetConfig::ratio(0.5).with_min_per_second(0)).unwrap();
    let (counters, events) = observe(|| async move {
        let hedge = fixed(ms(10), 3).with_name("replicas").with_budget(budget);
        // Call 1: no budget for a hedge yet. Call 2: one hedge, which wins, then no budget for
        // a second.
        for _ in 0..2 {
            let script = Script::new([Step::ok(100), Step::ok(5), Step::ok(5)]);
            hedge.call(|| script.attempt()).await.unwrap();
        }
    });
    assert_eq!(
        counters.counter("staunch_hedge_sent_total{policy=replicas,trigger=delay}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_hedge_won_total{policy=replicas}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_hedge_refused_total{policy=replicas,reason=budget}"),
        1
    );
    for text in ["hedge sent", "hedge won", "hedge refused"] {
        assert!(
            events
                .iter()
                .any(|e| e.contains(text) && e.contains("policy=replicas")),
            "{text}: {events:#?}"
        );
    }
}

#[test]
fn a_call_answered_before_the_delay_reports_nothing() {
    let (counters, events) = observe(|| async {
        let script = Script::new([Step::ok(5)]);
        fixed(ms(10), 3).call(|| script.attempt()).await.unwrap();
    });
    assert_eq!(
        counters.counter("staunch_hedge_sent_total{policy=default,trigger=delay}"),
        0
    );
    assert!(events.is_empty(), "{events:#?}");
}
