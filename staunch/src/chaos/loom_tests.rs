//! loom models of the chaos policy's shared state. Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p staunch --lib --release
//! --no-default-features --features chaos -- loom_`.

use std::time::Duration;

use loom::thread;

use super::{Chaos, ChaosConfig, Injection};

const MS: Duration = Duration::from_millis(1);

#[test]
fn loom_a_call_that_sees_the_policy_on_sees_the_rates_set_before() {
    loom::model(|| {
        // Off, with stale rates that would delay every call.
        let chaos = Chaos::new(
            ChaosConfig::new()
                .with_error(0.0, || ())
                .with_delay(1.0, MS)
                .with_enabled(false)
                .with_seed(1),
        )
        .unwrap();
        let switch = chaos.switch();
        let tester = thread::spawn(move || {
            switch.set_delay_rate(0.0).unwrap();
            switch.set_error_rate(1.0).unwrap();
            switch.enable();
        });
        let injection = chaos.decide();
        assert!(
            matches!(injection, Injection::None | Injection::Error),
            "on, with a rate from before the switch: {injection:?}"
        );
        tester.join().unwrap();
        assert_eq!(chaos.decide(), Injection::Error);
    });
}

#[test]
fn loom_concurrent_calls_take_distinct_keys() {
    loom::model(|| {
        let config = ChaosConfig::new()
            .with_delay_between(1.0, MS, Duration::from_secs(3600))
            .with_seed(5);
        let chaos = Chaos::new(config).unwrap();
        let other = chaos.clone();
        let racer = thread::spawn(move || other.decide());
        let mine = chaos.decide();
        let theirs = racer.join().unwrap();
        let reference = Chaos::new(config).unwrap();
        let (first, second) = (reference.decide_keyed(0), reference.decide_keyed(1));
        assert_ne!(first, second);
        assert!(
            (mine, theirs) == (first, second) || (mine, theirs) == (second, first),
            "{mine:?} {theirs:?}"
        );
    });
}
