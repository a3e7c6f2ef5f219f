//! The concurrency limit: slots, the FIFO queue, waits bounded by `max_wait` and the deadline,
//! guard permits, blocking waits, and the adaptive algorithms driven through permits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use staunch::limit::{Aimd, ConcurrencyLimit, Error, Gradient2, LimitConfig, Refusal, Vegas};
use staunch::retry::CallOptions;
use staunch::{CancellationToken, Deadline, ManualClock};

const MS: Duration = Duration::from_millis(1);

fn limit(config: LimitConfig) -> ConcurrencyLimit {
    ConcurrencyLimit::new(config).expect("valid config")
}

#[test]
fn a_full_limit_refuses_at_once_and_a_dropped_permit_frees_its_slot() {
    let limit = limit(LimitConfig::fixed(2));
    let a = limit.try_acquire().unwrap();
    let b = limit.try_acquire().unwrap();
    let refused = limit.try_acquire().unwrap_err();
    assert_eq!(refused.reason(), Refusal::LimitFull);
    assert_eq!(refused.retry_after(), None);
    assert_eq!(limit.snapshot().in_flight, 2);
    drop(a);
    let c = limit.try_acquire().expect("the dropped permit's slot");
    b.success();
    c.dropped(); // a fixed limit learns nothing, but frees the slot all the same
    let snapshot = limit.snapshot();
    assert_eq!((snapshot.in_flight, snapshot.queued), (0, 0));
    assert_eq!(snapshot.refused_limit_full, 1);
}

#[test]
fn bad_settings_are_errors_that_name_the_setting() {
    let cases = [
        (LimitConfig::fixed(0), "limit"),
        (LimitConfig::fixed(1 << 25), "limit"),
        (
            LimitConfig::fixed(1).with_max_wait(Duration::ZERO),
            "max_wait",
        ),
        (LimitConfig::fixed(1).with_max_queue(u32::MAX), "max_queue"),
        (
            LimitConfig::aimd(Aimd::new().with_min_limit(300)),
            "min_limit",
        ),
        (
            LimitConfig::aimd(Aimd::new().with_backoff_ratio(f64::NAN)),
            "backoff_ratio",
        ),
        (
            LimitConfig::vegas(Vegas::new().with_smoothing(f64::NAN)),
            "smoothing",
        ),
        (
            LimitConfig::gradient2(Gradient2::new().with_min_limit(0)),
            "min_limit",
        ),
    ];
    for (config, field) in cases {
        let err = ConcurrencyLimit::new(config).unwrap_err();
        assert_eq!(err.field(), field, "{config:?}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn with_no_queue_a_full_limit_refuses_without_waiting() {
    let limit = limit(LimitConfig::fixed(1));
    let _held = limit.acquire().await.unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        limit.acquire().await.unwrap_err().reason(),
        Refusal::LimitFull
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(3)
            .with_max_wait(60_000 * MS),
    );
    let held = limit.try_acquire().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (limit, order) = (limit.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let permit = limit.acquire().await.expect("served in turn");
            order.lock().unwrap().push(i);
            tokio::time::sleep(MS).await;
            permit.success();
        }));
        // Each joins the queue before the next starts.
        tokio::task::yield_now().await;
    }
    assert_eq!(limit.snapshot().queued, 3);
    // A newcomer does not overtake the queue, even when a slot frees: the queue is full.
    assert_eq!(
        limit.try_acquire().unwrap_err().reason(),
        Refusal::LimitFull
    );
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    assert_eq!(limit.snapshot().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_newcomer_never_overtakes_a_waiter() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(4)
            .with_max_wait(60_000 * MS),
    );
    let held = limit.try_acquire().unwrap();
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move { limit.acquire().await.map(drop) }
    });
    tokio::task::yield_now().await;
    drop(held); // handed to the waiter, not freed
    assert_eq!(
        limit.try_acquire().unwrap_err().reason(),
        Refusal::LimitFull,
        "the slot went to the waiter"
    );
    waiter.await.unwrap().unwrap();
    assert!(limit.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let limit = limit(LimitConfig::fixed(1).with_max_queue(1));
    let _held = limit.try_acquire().unwrap();
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move { limit.acquire().await.map(drop) }
    });
    tokio::task::yield_now().await;
    let start = tokio::time::Instant::now();
    assert_eq!(
        limit.acquire().await.unwrap_err().reason(),
        Refusal::LimitFull
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    waiter.abort();
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_at_max_wait() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(100 * MS),
    );
    let _held = limit.try_acquire().unwrap();
    let start = tokio::time::Instant::now();
    let refused = limit.acquire().await.unwrap_err();
    assert_eq!(refused.reason(), Refusal::QueueTimeout);
    assert_eq!(start.elapsed(), 100 * MS);
    let snapshot = limit.snapshot();
    assert_eq!((snapshot.queued, snapshot.refused_queue_timeout), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_wait_never_outlasts_the_deadline_in_scope() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(1000 * MS),
    );
    let _held = limit.try_acquire().unwrap();
    let start = tokio::time::Instant::now();
    let refused = Deadline::after(30 * MS)
        .scope(async { limit.acquire().await.map(drop) })
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Refusal::Deadline);
    assert_eq!(
        start.elapsed(),
        30 * MS,
        "cut at the deadline, not max_wait"
    );

    // A deadline already passed: refused at once, without joining the queue.
    let passed = Deadline::after(Duration::ZERO);
    let refused = limit.acquire_until(passed).await.unwrap_err();
    assert_eq!(refused.reason(), Refusal::Deadline);
    assert_eq!(start.elapsed(), 30 * MS);
    assert_eq!(limit.snapshot().refused_deadline, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_leaves_the_queue_and_a_granted_one_frees_its_slot() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(2)
            .with_max_wait(60_000 * MS),
    );
    let held = limit.try_acquire().unwrap();
    // Cancelled while waiting.
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move { limit.acquire().await.map(drop) }
    });
    tokio::task::yield_now().await;
    assert_eq!(limit.snapshot().queued, 1);
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(limit.snapshot().queued, 0);

    // Granted, then dropped before its next poll: the slot is not lost.
    let mut granted = Box::pin(limit.acquire());
    assert!(futures_poll(granted.as_mut()).is_pending());
    assert_eq!(limit.snapshot().queued, 1);
    drop(held); // handed over to `granted`
    assert_eq!(limit.snapshot().in_flight, 1);
    drop(granted);
    let snapshot = limit.snapshot();
    assert_eq!((snapshot.in_flight, snapshot.queued), (0, 0));
}

fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn a_blocked_thread_wakes_when_a_slot_frees() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(3_600_000 * MS),
    );
    let held = limit.try_acquire().unwrap();
    let waiter = std::thread::spawn({
        let limit = limit.clone();
        move || {
            limit
                .call_blocking(&CallOptions::new(), || Ok::<_, ()>(7))
                .unwrap()
        }
    });
    while limit.snapshot().queued == 0 {
        std::thread::yield_now();
    }
    drop(held);
    assert_eq!(waiter.join().unwrap(), 7);
    assert_eq!(limit.snapshot().in_flight, 0);
}

#[test]
fn a_blocked_thread_wakes_when_its_token_fires() {
    let limit = limit(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(3_600_000 * MS),
    );
    let _held = limit.try_acquire().unwrap();
    let token = CancellationToken::new();
    let waiter = std::thread::spawn({
        let (limit, token) = (limit.clone(), token.clone());
        move || {
            let options = CallOptions::new().with_cancellation(token);
            limit.acquire_blocking(&options).map(drop)
        }
    });
    while limit.snapshot().queued == 0 {
        std::thread::yield_now();
    }
    token.cancel();
    assert_eq!(waiter.join().unwrap(), Err(Error::Cancelled));
    assert_eq!(limit.snapshot().queued, 0);
}

#[test]
fn a_blocking_wait_on_a_manual_clock_times_out_in_virtual_time() {
    let clock = ManualClock::new();
    let limit = ConcurrencyLimit::builder(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(250 * MS),
    )
    .clock(clock.clone().into())
    .build()
    .unwrap();
    let _held = limit.try_acquire().unwrap();
    let start = clock.now();
    let err = limit.acquire_blocking(&CallOptions::new()).unwrap_err();
    assert_eq!(err.refused().unwrap().reason(), Refusal::QueueTimeout);
    assert_eq!(clock.elapsed_since(start), 250 * MS);

    let options = CallOptions::new().with_deadline(Deadline::after_from(clock.now(), 100 * MS));
    let err = limit.acquire_blocking(&options).unwrap_err();
    assert_eq!(err.refused().unwrap().reason(), Refusal::Deadline);
    assert_eq!(limit.snapshot().queued, 0);
}

// ---- adaptive limits, driven through permits in paused time ---------------------------------

/// Runs one call of `rtt` with `extra` other calls held in flight, and its outcome.
async fn sample(limit: &ConcurrencyLimit, rtt: Duration, extra: u32, dropped: bool) -> u32 {
    let others: Vec<_> = (0..extra).map(|_| limit.try_acquire().unwrap()).collect();
    let permit = limit.try_acquire().unwrap();
    tokio::time::sleep(rtt).await;
    if dropped {
        permit.dropped();
    } else {
        permit.success();
    }
    for other in others {
        other.ignore(); // no sample from the fillers
    }
    limit.limit()
}

#[tokio::test(start_paused = true)]
async fn aimd_follows_drops_and_successes_step_by_step() {
    let limit = limit(LimitConfig::aimd(
        Aimd::new()
            .with_initial_limit(4)
            .with_min_limit(2)
            .with_max_limit(6)
            .with_timeout(100 * MS),
    ));
    let steps = [
        (10 * MS, 1, false, 5), // 2 in flight, 2 * 2 >= 4: +1
        (10 * MS, 0, false, 5), // 1 in flight: app-limited
        (10 * MS, 2, false, 6),
        (10 * MS, 5, false, 6),  // the ceiling
        (101 * MS, 0, false, 5), // slower than the timeout: 6 * 0.9 = 5.4
        (10 * MS, 0, true, 4),
        (10 * MS, 0, true, 3),
        (10 * MS, 0, true, 2),
        (10 * MS, 0, true, 2), // the floor
    ];
    for (i, (rtt, extra, dropped, expected)) in steps.into_iter().enumerate() {
        assert_eq!(
            sample(&limit, rtt, extra, dropped).await,
            expected,
            "step {i}"
        );
    }
    // A cancelled call (a permit dropped without an outcome) gives no sample.
    let permit = limit.try_acquire().unwrap();
    let other = limit.try_acquire().unwrap();
    tokio::time::sleep(500 * MS).await;
    drop(permit);
    drop(other);
    assert_eq!(limit.limit(), 2);
}

#[tokio::test(start_paused = true)]
async fn vegas_follows_latency_step_by_step() {
    let limit = limit(LimitConfig::vegas(
        Vegas::new()
            .with_alpha(3)
            .with_beta(6)
            .with_initial_limit(10)
            .with_max_concurrency(20)
            .with_seed(7),
    ));
    // VegasLimitTest's increase and decrease, with real waits on the paused clock.
    assert_eq!(sample(&limit, 10 * MS, 9, false).await, 10); // rtt_noload = 10 ms
    assert_eq!(sample(&limit, 10 * MS, 9, false).await, 16); // no queueing: + beta
    assert_eq!(sample(&limit, 50 * MS, 10, false).await, 15); // queue 13 > 6: - log10(16)
    assert_eq!(sample(&limit, 10 * MS, 1, true).await, 14); // a drop
}

#[tokio::test(start_paused = true)]
async fn gradient2_follows_latency_step_by_step() {
    let limit = limit(LimitConfig::gradient2(
        Gradient2::new()
            .with_initial_limit(20)
            .with_min_limit(10)
            .with_max_concurrency(30),
    ));
    assert_eq!(sample(&limit, 10 * MS, 19, false).await, 20); // 20.8
    assert_eq!(sample(&limit, 10 * MS, 19, false).await, 21); // 21.6
    assert_eq!(sample(&limit, 10 * MS, 19, false).await, 22); // 22.4
    assert_eq!(sample(&limit, 40 * MS, 21, false).await, 21); // gradient 1.5 * 14.5 / 40
}

#[tokio::test(start_paused = true)]
async fn a_growing_limit_admits_waiters() {
    let limit = limit(
        LimitConfig::aimd(
            Aimd::new()
                .with_initial_limit(2)
                .with_min_limit(1)
                .with_max_limit(10),
        )
        .with_max_queue(4)
        .with_max_wait(60_000 * MS),
    );
    let a = limit.try_acquire().unwrap();
    let b = limit.try_acquire().unwrap();
    let waiters = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (limit, waiters) = (limit.clone(), Arc::clone(&waiters));
            tokio::spawn(async move {
                let permit = limit.acquire().await.unwrap();
                waiters.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(1000 * MS).await;
                permit.ignore();
            })
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(limit.snapshot().queued, 2);
    a.success(); // 2 in flight of 2: +1, and the freed slot: both waiters get one
    while waiters.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(limit.limit(), 3);
    assert_eq!(limit.snapshot().in_flight, 3);
    for task in tasks {
        task.await.unwrap();
    }
    drop(b);
    assert_eq!(limit.snapshot().in_flight, 0);
}
