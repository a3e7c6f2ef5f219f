//! Fault injection: one test per rule of the chaos policy, in paused time.

mod pipeline;
mod stress;
mod telemetry;
mod tower_layer;

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use staunch::chaos::{Chaos, ChaosConfig, Injection};
use support::{Boom, Counter, ms};
use tokio::time::Instant;

/// Makers as plain functions, so that a config can be named.
type MakeError = fn() -> Boom;
type MakeResult = fn() -> u32;

/// Every kind at once, seeded: the policy of the pinned sequence.
fn mixed(seed: u64) -> ChaosConfig<MakeError, MakeResult> {
    ChaosConfig::new()
        .with_error(0.25, (|| Boom(0)) as MakeError)
        .with_delay_between(0.4, ms(100), ms(500))
        .with_result(0.25, (|| 99) as MakeResult)
        .with_seed(seed)
}

#[test]
fn a_seeded_policy_injects_the_same_exact_sequence_on_every_run() {
    let chaos = Chaos::new(mixed(42)).unwrap();
    let drawn: Vec<Injection> = (0..12).map(|_| chaos.decide()).collect();
    // Pinned: a change here changes every seeded test of every user.
    let ns = Duration::from_nanos;
    let expected = [
        Injection::None,
        Injection::Result,
        Injection::DelayedResult(ns(125_616_911)),
        Injection::Delay(ns(455_563_000)),
        Injection::Error,
        Injection::Error,
        Injection::Result,
        Injection::Error,
        Injection::Result,
        Injection::Error,
        Injection::Error,
        Injection::None,
    ];
    assert_eq!(drawn, expected);
    // The n-th draw is the draw of key n, on this policy and on a fresh one.
    let again = Chaos::new(mixed(42)).unwrap();
    let keyed: Vec<Injection> = (0..12).map(|key| again.decide_keyed(key)).collect();
    assert_eq!(keyed, expected);
    let other: Vec<Injection> = (0..12)
        .map(|_| Chaos::new(mixed(43)).unwrap().decide())
        .collect();
    assert_ne!(other, expected, "another seed, another sequence");
}

#[test]
fn a_keyed_draw_does_not_depend_on_order_and_does_not_advance_the_sequence() {
    let chaos = Chaos::new(mixed(7)).unwrap();
    let forward: Vec<Injection> = (0..50).map(|k| chaos.decide_keyed(k)).collect();
    let backward: Vec<Injection> = (0..50).rev().map(|k| chaos.decide_keyed(k)).collect();
    assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(
        chaos.decide(),
        forward[0],
        "the unkeyed sequence starts at key 0"
    );
}

#[test]
fn off_injects_nothing_and_draws_nothing() {
    let chaos = Chaos::new(mixed(42).with_enabled(false)).unwrap();
    assert!(!chaos.is_enabled());
    for _ in 0..100 {
        assert_eq!(chaos.decide(), Injection::None);
        assert_eq!(chaos.decide_keyed(3), Injection::None);
    }
    // Nothing was drawn while off: once on, the sequence starts at its first draw.
    chaos.switch().enable();
    let first = Chaos::new(mixed(42)).unwrap().decide_keyed(1);
    assert_eq!(chaos.decide(), Chaos::new(mixed(42)).unwrap().decide());
    assert_eq!(chaos.decide(), first);
}

#[tokio::test(start_paused = true)]
async fn off_calls_the_operation_unchanged() {
    let calls = Counter::default();
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(1.0, || Boom(0))
            .with_delay(1.0, Duration::from_secs(9))
            .with_enabled(false),
    )
    .unwrap();
    let start = Instant::now();
    for _ in 0..10 {
        let value = chaos
            .call(|| async { Ok::<_, Boom>(calls.bump()) })
            .await
            .unwrap();
        assert_eq!(value, calls.get());
    }
    assert_eq!(calls.get(), 10);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_replaces_the_call_at_once() {
    let calls = Counter::default();
    let chaos = Chaos::new(ChaosConfig::new().with_error(1.0, || Boom(7))).unwrap();
    let start = Instant::now();
    let err = chaos
        .call(|| async { Ok::<u32, _>(calls.bump()) })
        .await
        .unwrap_err();
    assert_eq!(err, Boom(7), "the operation's own error type");
    assert_eq!(calls.get(), 0, "the operation is not called");
    assert_eq!(start.elapsed(), Duration::ZERO, "an injected error is fast");
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_holds_the_call_back_on_tokios_clock() {
    let polled_at = std::sync::Mutex::new(None);
    let chaos = Chaos::new(ChaosConfig::new().with_delay(1.0, ms(300))).unwrap();
    let start = Instant::now();
    let value = chaos
        .call(|| async {
            *polled_at.lock().unwrap() = Some(start.elapsed());
            Ok::<_, Boom>(5)
        })
        .await
        .unwrap();
    assert_eq!(value, 5);
    assert_eq!(
        *polled_at.lock().unwrap(),
        Some(ms(300)),
        "the call starts after the delay"
    );
    assert_eq!(start.elapsed(), ms(300));
}

#[tokio::test(start_paused = true)]
async fn a_drawn_delay_lies_in_its_range_and_the_sequence_matches_the_draws() {
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_delay_between(1.0, ms(600), ms(2000))
            .with_seed(3),
    )
    .unwrap();
    let twin = Chaos::new(
        ChaosConfig::new()
            .with_delay_between(1.0, ms(600), ms(2000))
            .with_seed(3),
    )
    .unwrap();
    for _ in 0..20 {
        let expected = twin.decide().delay().unwrap();
        assert!((ms(600)..=ms(2000)).contains(&expected));
        let start = Instant::now();
        chaos.call(|| async { Ok::<_, Boom>(()) }).await.unwrap();
        // tokio's timer counts whole milliseconds and rounds a sleep up to the next one.
        assert_eq!(
            start.elapsed(),
            ms(expected.as_nanos().div_ceil(1_000_000) as u64)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_substitute_replaces_the_call_after_a_delay_drawn_with_it() {
    let calls = Counter::default();
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_delay(1.0, ms(2000))
            .with_result(1.0, || 503_u16),
    )
    .unwrap();
    let start = Instant::now();
    let status = chaos
        .call(|| async {
            calls.bump();
            Ok::<u16, Boom>(200)
        })
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(calls.get(), 0);
    assert_eq!(start.elapsed(), ms(2000), "a slow substitute");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_delayed_call_drops_the_operation_unpolled() {
    let polled = Counter::default();
    let chaos = Chaos::new(ChaosConfig::new().with_delay(1.0, Duration::from_secs(5))).unwrap();
    let call = chaos.call(|| async {
        polled.bump();
        Ok::<_, Boom>(())
    });
    let cut = tokio::time::timeout(ms(100), call).await;
    assert!(cut.is_err());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(polled.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_switch_turns_a_running_policy_on_and_off_and_changes_its_rates() {
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(1.0, || Boom(1))
            .with_enabled(false),
    )
    .unwrap();
    let clone = chaos.clone();
    let switch = chaos.switch();
    let call = || clone.call(|| async { Ok::<_, Boom>(1) });
    assert!(call().await.is_ok());
    switch.enable();
    assert!(chaos.is_enabled() && switch.is_enabled());
    assert_eq!(call().await, Err(Boom(1)), "every clone shares the switch");
    switch.set_error_rate(0.0).unwrap();
    assert!(call().await.is_ok());
    switch.set_error_rate(1.0).unwrap();
    switch.set_enabled(false);
    assert!(call().await.is_ok());
}

#[test]
fn the_switch_validates_rates_and_refuses_a_kind_with_nothing_to_inject() {
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(0.5, || Boom(1))
            .with_name("db"),
    )
    .unwrap();
    let switch = chaos.switch();
    for bad in [f64::NAN, -0.5, 1.5, f64::INFINITY] {
        let err = switch.set_error_rate(bad).unwrap_err();
        assert_eq!(err.field(), "error_rate", "{err}");
        let err = switch.set_delay_rate(bad).unwrap_err();
        assert_eq!(err.field(), "delay_rate", "{err}");
    }
    assert_eq!(switch.error_rate(), 0.5, "unchanged by a refused setting");
    let err = switch.set_result_rate(0.1).unwrap_err();
    assert_eq!(err.field(), "result_rate");
    assert!(err.message().contains("with_result"), "{err}");
    switch.set_result_rate(0.0).unwrap();
    switch.set_delay_rate(1.0).unwrap();
    assert_eq!(
        (
            switch.error_rate(),
            switch.delay_rate(),
            switch.result_rate()
        ),
        (0.5, 1.0, 0.0)
    );
    assert_eq!(switch.name(), "db");
    assert!(format!("{switch:?}").contains("db"));
}

#[test]
fn an_invalid_config_is_refused_when_the_policy_is_built() {
    let err = Chaos::new(ChaosConfig::new().with_error(2.0, || Boom(0))).unwrap_err();
    assert_eq!(err.field(), "error_rate");
    let err = Chaos::new(ChaosConfig::new().with_delay_between(0.1, ms(5), ms(1))).unwrap_err();
    assert_eq!(err.field(), "delay");
}

#[test]
fn public_types_are_send_sync_and_unpin_where_they_should_be() {
    fn send_sync<T: Send + Sync>() {}
    fn unpin<T: Unpin>() {}
    send_sync::<Chaos<MakeError, MakeResult>>();
    send_sync::<staunch::chaos::ChaosSwitch>();
    send_sync::<ChaosConfig>();
    send_sync::<staunch::chaos::Call<std::future::Ready<Result<u32, Boom>>>>();
    unpin::<staunch::chaos::Call<std::future::Ready<Result<u32, Boom>>>>();
}
