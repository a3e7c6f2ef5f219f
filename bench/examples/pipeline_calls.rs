//! Runs one contender of `benches/pipeline.rs` a fixed number of times, for instruction counts:
//!
//! `valgrind --tool=callgrind target/release/examples/pipeline_calls staunch_closure 100000`
//!
//! Divide the difference of two runs' totals (say 100000 and 200000 calls) by the difference in
//! calls for the instructions per call, free of start-up.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use staunch::backoff::Backoff;
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::deadline::AttemptTimeout;
use staunch::{Pipeline, Retry, RetryConfig};
use tower::{Layer, Service, ServiceExt, service_fn};

fn bare_service(req: u64) -> std::future::Ready<Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(req)))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "staunch_closure".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let pipeline = Pipeline::new()
        .retry(
            Retry::new(
                RetryConfig::new()
                    .with_max_attempts(4)
                    .with_backoff(Backoff::exponential(Duration::from_millis(10))),
            )
            .expect("a valid retry"),
        )
        .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5)).expect("a breaker"))
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_secs(1)))
        .expect("a valid timeout")
        .fallback_value(0u64);
    rt.block_on(async {
        match which.as_str() {
            "staunch_closure" => {
                for i in 0..n {
                    black_box(
                        pipeline
                            .call(|| std::future::ready(Ok::<_, io::Error>(black_box(i))))
                            .await
                            .ok(),
                    );
                }
            }
            "staunch_tower" => {
                let mut svc = pipeline.layer().layer(service_fn(bare_service));
                for i in 0..n {
                    black_box(svc.ready().await.expect("ready").call(i).await.ok());
                }
            }
            other => panic!("unknown contender {other}"),
        }
    });
}
