//! Shared helpers for the criterion benchmarks in `benches/` and the examples in `examples/`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use staunch::breaker::{BreakerConfig, CircuitBreaker};
use tokio::runtime::Runtime;

/// Runs `iters` calls of `call` back to back inside one `block_on`, and times them. Each
/// result is reduced to its value, as a caller's `match` would: what every contender returns
/// then reaches `black_box` as the same 16 bytes, whatever the size of its error type.
pub fn time_async<E>(
    rt: &Runtime,
    iters: u64,
    mut call: impl AsyncFnMut() -> Result<u64, E>,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call().await.ok());
        }
        start.elapsed()
    })
}

/// A consecutive-failures (5) breaker with automatic half-open, open for `open`: tripped on a
/// current-thread runtime that a thread of its own keeps running, so that the open period's
/// timer ticks while its rejections are measured, as it would in a service.
pub fn tripped_automatic(open: Duration) -> CircuitBreaker {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let handle = runtime.handle().clone();
    std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    let _on_the_runtime = handle.enter();
    let breaker = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(5)
            .with_open_duration(open)
            .with_automatic_half_open(true),
    )
    .expect("a valid config");
    for _ in 0..5 {
        let _ = breaker.call_blocking(|| Err::<(), _>(()));
    }
    assert!(breaker.try_acquire().is_err(), "tripped");
    breaker
}

/// An operation that is `Pending` once (waking its task at once) and then ready with `Ok(1)`:
/// a call that waits, as a network call does, for the hedge benchmarks.
#[derive(Debug, Default)]
pub struct AfterWaiting(bool);

impl Future for AfterWaiting {
    type Output = Result<u64, std::io::Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.0 {
            return Poll::Ready(Ok(black_box(1)));
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// `tower::hedge`'s policy for the hedge benchmarks: every request may be cloned and hedged.
#[derive(Clone, Copy, Debug)]
pub struct HedgeEveryRequest;

impl tower::hedge::Policy<u64> for HedgeEveryRequest {
    fn clone_request(&self, request: &u64) -> Option<u64> {
        Some(*request)
    }

    fn can_retry(&self, _: &u64) -> bool {
        true
    }
}

/// `tower::hedge` around `service`, hedging at the p95 of a histogram primed with 50 ms
/// latencies (10 data points needed, a one-hour rotation), so that it would hedge, and a call
/// answered sooner never does.
pub fn tower_hedge<S>(service: S) -> tower::hedge::Hedge<S, HedgeEveryRequest>
where
    S: tower::Service<u64> + Clone,
    S::Error: Into<tower::BoxError>,
{
    tower::hedge::Hedge::new_with_mock_latencies(
        service,
        HedgeEveryRequest,
        10,
        0.95,
        Duration::from_secs(3600),
        &[50; 100],
    )
}
