//! A service's own resilience test, with fault injection: the test turns injection on, checks
//! that the service answers with its fallback, and turns injection off again.
//!
//! The service is `Shop`. Its `quote` asks a pricing dependency for a price through a tower
//! stack: staunch's pipeline (a circuit breaker, a 200 ms attempt timeout, a fallback price)
//! with a chaos layer innermost (`Pipeline::layer_with_chaos`), that the shop builds off. Nothing is injected in production;
//! a test (or an admin endpoint in staging) takes the shop's `ChaosSwitch` and turns it on.
//!
//! The tests at the bottom are the point: `cargo test -p staunch --features chaos,tower --example
//! chaos_integration_test`. `main` tells the same story on stdout:
//! `cargo run -p staunch --features chaos,tower --example chaos_integration_test`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use shop::Shop;

/// The service under test, as it would live in its own crate.
mod shop {
    use std::fmt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use staunch::Pipeline;
    use staunch::breaker::{BreakerConfig, CircuitBreaker};
    use staunch::chaos::{Chaos, ChaosConfig, ChaosSwitch};
    use staunch::deadline::AttemptTimeout;
    use staunch::retry::BoxError;
    use tower::util::BoxCloneService;
    use tower::{Layer, ServiceExt, service_fn};

    /// A price, and whether it is the fallback rather than the pricing service's answer.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(crate) struct Price {
        pub(crate) cents: u64,
        pub(crate) fallback: bool,
    }

    /// The last price known, shown when pricing cannot answer in time.
    pub(crate) const FALLBACK: Price = Price {
        cents: 999,
        fallback: true,
    };

    /// What the pricing client fails with.
    #[derive(Debug)]
    pub(crate) enum PricingError {
        Unavailable,
    }

    impl fmt::Display for PricingError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("pricing is unavailable")
        }
    }

    impl std::error::Error for PricingError {}

    /// The shop: a pricing client behind staunch, with fault injection built in and off.
    pub(crate) struct Shop {
        pricing: BoxCloneService<u32, Price, BoxError>,
        chaos: ChaosSwitch,
        calls: Arc<AtomicU32>,
    }

    impl Shop {
        pub(crate) fn new() -> Result<Self, staunch::ConfigError> {
            // Off until someone turns it on; what it injects is set at run time.
            let chaos = Chaos::new(
                ChaosConfig::new()
                    .with_error(0.0, || PricingError::Unavailable)
                    .with_delay(0.0, Duration::from_secs(2))
                    .with_enabled(false)
                    .with_name("pricing"),
            )?;
            let switch = chaos.switch();
            let pipeline = Pipeline::new()
                .breaker(CircuitBreaker::new(
                    BreakerConfig::consecutive_failures(3)
                        .with_open_duration(Duration::from_secs(5)),
                )?)
                .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?
                .fallback(|_err| async { FALLBACK });
            // The pricing dependency, in process here; in a real shop, an HTTP client.
            let calls = Arc::new(AtomicU32::new(0));
            let dependency = service_fn({
                let calls = Arc::clone(&calls);
                move |sku: u32| {
                    let calls = Arc::clone(&calls);
                    async move {
                        calls.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, PricingError>(Price {
                            cents: 1000 + u64::from(sku),
                            fallback: false,
                        })
                    }
                }
            });
            // Chaos innermost: the pipeline meets injected faults as it would meet real ones.
            let pricing = pipeline.layer_with_chaos(chaos).layer(dependency);
            Ok(Self {
                pricing: BoxCloneService::new(pricing),
                chaos: switch,
                calls,
            })
        }

        /// The price of `sku`.
        pub(crate) async fn quote(&self, sku: u32) -> Result<Price, BoxError> {
            self.pricing.clone().oneshot(sku).await
        }

        /// The switch of the fault injection, for tests and the admin endpoint.
        pub(crate) fn chaos(&self) -> &ChaosSwitch {
            &self.chaos
        }

        /// Calls that reached the pricing dependency.
        pub(crate) fn pricing_calls(&self) -> u32 {
            self.calls.load(Ordering::Relaxed)
        }
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Paused time: the injected delays and the breaker's open period pass at once.
    let shop = Shop::new()?;
    let chaos = shop.chaos();
    println!("injection off:        {:?}", shop.quote(250).await?);
    chaos.set_error_rate(1.0)?;
    chaos.enable();
    for _ in 0..4 {
        println!("pricing failing:      {:?}", shop.quote(250).await?);
    }
    chaos.set_error_rate(0.0)?;
    chaos.set_delay_rate(1.0)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = tokio::time::Instant::now();
    let slow = shop.quote(250).await?;
    println!("pricing 2 s slow:     {slow:?} after {:?}", start.elapsed());
    chaos.disable();
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("injection off again:  {:?}", shop.quote(250).await?);
    println!("calls that reached pricing: {}", shop.pricing_calls());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::shop::{FALLBACK, Price, Shop};

    const LIVE: Price = Price {
        cents: 1250,
        fallback: false,
    };

    #[tokio::test(start_paused = true)]
    async fn the_live_price_while_injection_is_off() {
        let shop = Shop::new().unwrap();
        assert!(!shop.chaos().is_enabled(), "built off");
        assert_eq!(shop.quote(250).await.unwrap(), LIVE);
        assert_eq!(shop.pricing_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fallback_price_while_pricing_fails_and_the_live_one_once_it_recovers() {
        let shop = Shop::new().unwrap();
        let chaos = shop.chaos();
        chaos.set_error_rate(1.0).unwrap();
        chaos.enable();
        for _ in 0..10 {
            assert_eq!(shop.quote(250).await.unwrap(), FALLBACK);
        }
        assert_eq!(shop.pricing_calls(), 0, "every call was replaced");

        chaos.disable();
        // The breaker opened on the third failure: the fallback answers until it probes again.
        assert_eq!(shop.quote(250).await.unwrap(), FALLBACK);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(shop.quote(250).await.unwrap(), LIVE);
        assert_eq!(shop.pricing_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fallback_price_in_time_while_pricing_is_slow() {
        let shop = Shop::new().unwrap();
        let chaos = shop.chaos();
        chaos.set_delay_rate(1.0).unwrap();
        chaos.enable();
        let start = Instant::now();
        assert_eq!(shop.quote(250).await.unwrap(), FALLBACK);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(200),
            "the attempt timeout"
        );
        assert_eq!(shop.pricing_calls(), 0, "the delayed call never started");

        chaos.disable();
        assert_eq!(shop.quote(250).await.unwrap(), LIVE);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }
}
