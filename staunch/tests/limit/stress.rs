//! Multi-thread stress: many threads and tasks on one limit, acquiring, waiting, cancelling at
//! random, with an adaptive limit moving under them. Bounded by the number of calls, never by
//! wall time. At the end every slot is free and the queue empty.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use staunch::CancellationToken;
use staunch::limit::{Aimd, ConcurrencyLimit, LimitConfig};
use staunch::retry::CallOptions;

const THREADS: usize = 4;
const CALLS: usize = 20_000;

fn check_in_flight(limit: &ConcurrencyLimit, in_flight: &AtomicI64, ceiling: i64) {
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(now <= ceiling, "{now} in flight, above {ceiling}");
    let _ = limit;
}

fn stress(config: LimitConfig, ceiling: i64) {
    let limit = ConcurrencyLimit::new(config).unwrap();
    let in_flight = Arc::new(AtomicI64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limit, in_flight) = (limit.clone(), Arc::clone(&in_flight));
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64);
                for _ in 0..CALLS {
                    let permit = match rng.u8(0..4) {
                        0 => limit.try_acquire().ok(),
                        1 => {
                            // A token fired now and then, before or during the wait.
                            let token = CancellationToken::new();
                            if rng.bool() {
                                token.cancel();
                            }
                            let options = CallOptions::new().with_cancellation(token);
                            limit.acquire_blocking(&options).ok()
                        }
                        _ => limit.acquire_blocking(&CallOptions::new()).ok(),
                    };
                    let Some(permit) = permit else { continue };
                    check_in_flight(&limit, &in_flight, ceiling);
                    if rng.u8(0..8) == 0 {
                        std::thread::yield_now();
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match rng.u8(0..4) {
                        0 => permit.success(),
                        1 => permit.dropped(),
                        2 => permit.ignore(),
                        _ => drop(permit),
                    }
                }
            })
        })
        .collect();

    // Async waiters on a multi-threaded runtime, dropped at random mid-wait.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on({
        let (limit, in_flight) = (limit.clone(), Arc::clone(&in_flight));
        async move {
            let tasks: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (limit, in_flight) = (limit.clone(), Arc::clone(&in_flight));
                    tokio::spawn(async move {
                        let mut rng = fastrand::Rng::with_seed(100 + t as u64);
                        for _ in 0..CALLS / 4 {
                            let acquire = limit.acquire();
                            let permit = if rng.bool() {
                                // Cancelled by drop, at a random point of the wait.
                                tokio::time::timeout(Duration::from_micros(rng.u64(0..50)), acquire)
                                    .await
                                    .ok()
                                    .and_then(Result::ok)
                            } else {
                                acquire.await.ok()
                            };
                            if let Some(permit) = permit {
                                check_in_flight(&limit, &in_flight, ceiling);
                                tokio::task::yield_now().await;
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                if rng.bool() {
                                    permit.success();
                                }
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
    });
    for thread in threads {
        thread.join().unwrap();
    }
    let snapshot = limit.snapshot();
    assert_eq!(
        (snapshot.in_flight, snapshot.queued),
        (0, 0),
        "every slot free, nobody queued: {snapshot:?}"
    );
}

#[test]
fn a_fixed_limit_ends_with_every_slot_free() {
    stress(
        LimitConfig::fixed(3)
            .with_max_queue(6)
            .with_max_wait(Duration::from_millis(2)),
        3,
    );
}

#[test]
fn an_adaptive_limit_ends_with_every_slot_free() {
    stress(
        LimitConfig::aimd(
            Aimd::new()
                .with_initial_limit(3)
                .with_min_limit(1)
                .with_max_limit(6),
        )
        .with_max_queue(6)
        .with_max_wait(Duration::from_millis(2)),
        // The limit moves while calls are in flight: a shrink leaves calls above it until they
        // finish; never above the ceiling.
        6,
    );
}
