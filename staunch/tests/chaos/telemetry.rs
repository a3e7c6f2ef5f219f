//! Telemetry: one `tracing` event and a `metrics` count per injection, none for a call left
//! alone.
#![cfg(all(feature = "tracing", feature = "metrics"))]

use std::time::Duration;

use staunch::chaos::{Chaos, ChaosConfig, Injection};

#[path = "../support/telemetry.rs"]
mod capture;
use capture::{Events, Metrics, with_events};

use crate::support::Boom;

#[tokio::test(start_paused = true)]
async fn every_injection_is_reported_by_kind_and_name() {
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(0.0, || Boom(1))
            .with_delay(0.0, Duration::from_millis(40))
            .with_result(0.0, || 7_u32)
            .with_name("pricing"),
    )
    .unwrap();
    let switch = chaos.switch();
    // One call per injection kind, and one left alone.
    let plan = [
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (0.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
    ];
    let counters = Metrics::default();
    let events = Events::default();
    let mut injected = Vec::new();
    for (error, delay, result) in plan {
        switch.set_error_rate(error).unwrap();
        switch.set_delay_rate(delay).unwrap();
        switch.set_result_rate(result).unwrap();
        let injection = chaos.decide();
        injected.push(injection);
        let call = metrics::with_local_recorder(&counters, || {
            with_events(&events, || {
                chaos.apply(injection, || async { Ok::<u32, Boom>(1) })
            })
        });
        let _ = call.await;
    }
    assert_eq!(
        injected,
        [
            Injection::Error,
            Injection::Delay(Duration::from_millis(40)),
            Injection::Result,
            Injection::DelayedResult(Duration::from_millis(40)),
            Injection::None
        ]
    );
    let count = |kind: &str| {
        counters.counter(&format!(
            "staunch_chaos_injected_total{{kind={kind},policy=pricing}}"
        ))
    };
    assert_eq!((count("error"), count("delay"), count("result")), (1, 2, 2));
    let events = events.0.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(
        events[0].contains("chaos=pricing") && events[0].contains("kind=error"),
        "{events:#?}"
    );
    assert!(
        events[3].contains("kind=delayed_result") && events[3].contains("40ms"),
        "{events:#?}"
    );
}
