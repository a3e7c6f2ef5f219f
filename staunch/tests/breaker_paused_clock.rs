//! A breaker built while tokio's clock runs, then driven by a paused clock: its open period
//! follows the paused clock. In a process of its own, because the breaker's fast rejection
//! trusts coarse real-time readings until some breaker in the process sees tokio's clock paused.

use std::time::Duration;

use staunch::breaker::{BreakerConfig, CircuitBreaker, State};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn pausing_the_clock_before_the_trip_puts_the_open_period_on_the_paused_clock() {
    let breaker =
        CircuitBreaker::new(BreakerConfig::consecutive_failures(1).with_open_duration(HOUR))
            .unwrap();
    tokio::time::pause();
    let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.call(|| async { Ok::<_, &str>(()) }).await;
    assert!(rejected.unwrap_err().is_open());

    tokio::time::advance(HOUR).await;
    let probe = breaker.call(|| async { Ok::<_, &str>(()) }).await;
    assert!(probe.is_ok(), "an hour of paused time ends the open period");
    assert_eq!(breaker.state(), State::Closed);
}
