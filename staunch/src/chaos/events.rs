//! The `tracing` event and `metrics` counters of an injection. Compiled to nothing when both
//! features are off.
//!
//! - event (target `staunch::chaos`, level DEBUG) per injection: `chaos` (the name), `kind`
//!   ([`Injection::as_str`]) and `delay`;
//! - `staunch_chaos_injected_total` (labels `policy` = the name, `kind` = `error`, `delay` or
//!   `result`): a delayed substitute counts once as a delay and once as a result.

use super::Injection;

#[cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables)
)]
pub(crate) fn injected(name: &'static str, injection: Injection) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "staunch::chaos",
        chaos = name,
        kind = injection.as_str(),
        delay = ?injection.delay(),
        "injected a fault"
    );
    #[cfg(feature = "metrics")]
    {
        let count = |kind: &'static str| {
            metrics::counter!("staunch_chaos_injected_total", "policy" => name, "kind" => kind)
                .increment(1);
        };
        if injection.is_error() {
            count("error");
        }
        if injection.delay().is_some() {
            count("delay");
        }
        if injection.is_result() {
            count("result");
        }
    }
}
