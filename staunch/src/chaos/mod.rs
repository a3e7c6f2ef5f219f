//! Fault injection: errors, delays and substitute results, on purpose, to test the rest.
//!
//! A fallback that never ran is a fallback that does not work. Retries, breakers, timeouts and
//! fallbacks exist for the day a dependency fails, and that day is a poor time to find out that
//! the fallback price is never shown, that the breaker counts the wrong errors, or that a slow
//! dependency holds every request past its deadline. A [`Chaos`] policy makes that day happen
//! on demand, in a test or in a staging environment: with the probabilities you set, it
//! replaces calls with an error, delays them, or replaces them with a substitute result. Polly's
//! chaos strategies (Simmy) are the model.
//!
//! # Where it goes
//!
//! Innermost, just around the call to the dependency, so that every other policy meets an
//! injected fault exactly as it would a real one: an injected delay runs inside the attempt
//! timeout and times out like a slow dependency; an injected error has the operation's own
//! error type, so the classifier classifies it, the breaker counts it, retry retries it and the
//! fallback covers it. With a [`Pipeline`](crate::Pipeline), that is
//! [`Pipeline::call_with_chaos`](crate::Pipeline::call_with_chaos) (the same as
//! `pipeline.call(|| chaos.call(&mut op))`), or, for a tower service,
//! `Pipeline::layer_with_chaos`: the pipeline's layer over a [`ChaosLayer`] (feature `tower`).
//!
//! # How the kinds combine
//!
//! Each kind has its own rate, a probability per call; any of them may be zero. A call draws
//! independently, in this order, and only for a kind whose rate is above zero:
//!
//! 1. **error**, with probability `e`: the call is not made, and the error comes back at once;
//!    nothing else is drawn;
//! 2. **delay**, with probability `d`: the call waits a delay (fixed, or drawn uniformly from a
//!    range);
//! 3. **result**, with probability `r`: the call is not made, and the substitute comes back
//!    (after the delay, if one was drawn).
//!
//! So a call gets an error with probability `e`, a delay with `(1-e)d`, a substitute with
//! `(1-e)r` (a slow substitute, such as a 503 after two seconds, with `(1-e)dr`), and nothing
//! with `(1-e)(1-d)(1-r)`. The order follows Polly's documented one (fault, then latency, then
//! outcome): an injected error is fast, like a refused connection; a delay can slow a real call
//! or a substitute. Each draw is described by an [`Injection`]; [`Chaos::decide`] draws one
//! and [`Chaos::apply`] carries it out, for shells of your own.
//!
//! # Randomness
//!
//! Each call draws from a generator of its own, seeded from the policy's seed and the call's
//! key: the `n`-th call to draw gets key `n` (over every clone of the policy). With
//! [`ChaosConfig::with_seed`], a test therefore sees the same injections on every run;
//! [`Chaos::decide_keyed`] keys a call yourself (by request number and attempt, say), so that
//! the same call meets the same fault however concurrent calls interleave. Without a seed, the
//! policy takes one from `fastrand`'s thread-local generator.
//!
//! # Switching at run time
//!
//! [`Chaos::switch`] gives a [`ChaosSwitch`]: a cheap, cloneable handle that turns the policy
//! on and off and changes its rates while calls run, for the test that asserts the fallback
//! path or the admin endpoint of a staging environment. Build the policy off
//! ([`ChaosConfig::with_enabled(false)`](ChaosConfig::with_enabled)) in code that ships.
//!
//! # Cost
//!
//! While the policy is off, a call pays one atomic load: no draw, no clock, no allocation, the
//! operation's future polled as is. While on, a call that draws nothing to inject pays an
//! atomic increment (none when keyed) and a few draws from a generator on the stack; an
//! injection allocates one box for its delay's timer and its error or substitute.
//!
//! # Telemetry
//!
//! Each injection is reported, with the policy's [name](ChaosConfig::with_name): a `tracing`
//! event (target `staunch::chaos`, level DEBUG, with `chaos`, `kind` and `delay`) and the
//! `metrics` counter `staunch_chaos_injected_total` (labels `policy`, the name, and `kind` =
//! `error`, `delay` or `result`; a delayed substitute counts once as each). See
//! [`telemetry`](crate::telemetry) for every metric and event.
//!
//! # Examples
//!
//! A service's test turns injection on, sees its fallback answer, and turns it off again:
//!
//! ```
//! use std::time::Duration;
//! use staunch::Pipeline;
//! use staunch::chaos::{Chaos, ChaosConfig};
//! use staunch::deadline::AttemptTimeout;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), staunch::ConfigError> {
//! // In the service: off until a test turns it on.
//! let chaos = Chaos::new(
//!     ChaosConfig::new()
//!         .with_delay(1.0, Duration::from_secs(2))
//!         .with_enabled(false),
//! )?;
//! let pricing = Pipeline::new()
//!     .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(500)))?
//!     .fallback(|_err| async { 9.99 });
//! let price = || pricing.call_with_chaos(&chaos, || async { Ok::<f64, std::io::Error>(12.50) });
//!
//! // In the test.
//! let switch = chaos.switch();
//! switch.enable();
//! assert_eq!(price().await.unwrap(), 9.99); // the delay outlasted the attempt timeout
//! switch.disable();
//! assert_eq!(price().await.unwrap(), 12.50);
//! # Ok(())
//! # }
//! ```

mod call;
mod config;
mod decide;
mod events;
#[cfg(feature = "tower")]
mod layer;
#[cfg(all(test, loom))]
mod loom_tests;
mod policy;
#[cfg(feature = "tower")]
mod service;
mod switch;

pub use call::Call;
pub use config::{ChaosConfig, Inject, NoInjection};
pub use decide::Injection;
#[cfg(feature = "tower")]
pub use layer::ChaosLayer;
pub use policy::Chaos;
#[cfg(feature = "tower")]
pub use service::ChaosService;
pub use switch::ChaosSwitch;
