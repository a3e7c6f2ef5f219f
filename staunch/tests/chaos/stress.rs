//! Real threads on one policy: concurrent calls take distinct keys, so together they draw
//! exactly the injections of keys 0, 1, 2, ..., whatever the interleaving; a call made while the
//! policy is off takes none. Bounded by the number of calls, never by wall time.

use std::collections::HashMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use staunch::chaos::{Chaos, ChaosConfig, Injection};

const THREADS: usize = 4;
const CALLS_PER_THREAD: usize = 50_000;

fn config() -> ChaosConfig {
    // Every draw while on is a delay, each (almost surely) a different one.
    ChaosConfig::new()
        .with_delay_between(1.0, Duration::ZERO, Duration::from_secs(3600))
        .with_seed(2026)
}

fn tally(injections: impl IntoIterator<Item = Injection>) -> HashMap<Injection, u32> {
    let mut counts = HashMap::new();
    for injection in injections {
        *counts.entry(injection).or_insert(0) += 1;
    }
    counts
}

#[test]
fn concurrent_calls_draw_the_keyed_sequence_and_an_off_call_takes_no_key() {
    let chaos = Chaos::new(config()).unwrap();
    let switch = chaos.switch();
    // Every thread draws its first half with the policy on, its second half while the switch
    // flips.
    let (start, halfway) = (Barrier::new(THREADS + 1), Barrier::new(THREADS + 1));
    let finished = AtomicUsize::new(0);
    let drawn: Vec<Injection> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let chaos = chaos.clone();
                let (start, halfway, finished) = (&start, &halfway, &finished);
                scope.spawn(move || {
                    start.wait();
                    let mut drawn: Vec<Injection> =
                        (0..CALLS_PER_THREAD / 2).map(|_| chaos.decide()).collect();
                    halfway.wait();
                    drawn.extend((CALLS_PER_THREAD / 2..CALLS_PER_THREAD).map(|_| chaos.decide()));
                    finished.fetch_add(1, Ordering::Relaxed);
                    drawn
                })
            })
            .collect();
        start.wait();
        halfway.wait();
        let mut on = false;
        while finished.load(Ordering::Relaxed) < THREADS {
            switch.set_enabled(on);
            on = !on;
            std::thread::yield_now();
        }
        switch.enable();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    assert_eq!(drawn.len(), THREADS * CALLS_PER_THREAD);
    let on: Vec<Injection> = drawn.into_iter().filter(|i| i.is_injected()).collect();
    assert!(on.len() >= THREADS * CALLS_PER_THREAD / 2, "{}", on.len());
    let reference = Chaos::new(config()).unwrap();
    let expected = (0..on.len() as u64).map(|key| reference.decide_keyed(key));
    assert_eq!(
        tally(on.iter().copied()),
        tally(expected),
        "keys 0..n, each once"
    );
    // The next call takes the next key.
    assert_eq!(chaos.decide(), reference.decide_keyed(on.len() as u64));
}
