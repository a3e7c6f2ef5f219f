//! `tracing` events and `metrics` counters. Every function compiles to nothing when its feature
//! is off.
//!
//! Metrics (label `policy` = the policy's name):
//! - `staunch_retry_attempts_total`: attempts started.
//! - `staunch_retry_retries_total`: retries scheduled.
//! - `staunch_retry_suppressed_total` (label `reason`): retries that would have run but for the
//!   budget, the deadline or an over-long Retry-After.
//! - `staunch_retry_outcomes_total` (label `outcome`): `success` or the stop reason.
//! - `staunch_fallback_used_total` (label `reason`): fallbacks run, by the failure they covered.

// With only one of the two features on, some arguments go unused.
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables)
)]

use std::time::Duration;

use crate::StopReason;
use crate::classify::Class;

#[inline]
pub(crate) fn retry_attempt(policy: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_retry_attempts_total", "policy" => policy).increment(1);
}

#[inline]
pub(crate) fn retry_scheduled(policy: &'static str, attempt: u32, delay: Duration, class: Class) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::retry", policy, attempt, ?delay, ?class, "attempt failed; retrying");
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_retry_retries_total", "policy" => policy).increment(1);
}

#[inline]
pub(crate) fn retry_succeeded(policy: &'static str, attempts: u32) {
    #[cfg(feature = "tracing")]
    if attempts > 1 {
        tracing::debug!(target: "staunch::retry", policy, attempts, "succeeded after retrying");
    }
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_retry_outcomes_total", "policy" => policy, "outcome" => "success")
        .increment(1);
}

#[inline]
pub(crate) fn retry_stopped(policy: &'static str, reason: StopReason, attempts: u32) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::retry", policy, attempts, reason = reason.as_str(), "stopped retrying");
    #[cfg(feature = "metrics")]
    {
        // Before the first attempt nothing was suppressed: the call never ran.
        let suppressed = matches!(
            reason,
            StopReason::Budget | StopReason::Deadline | StopReason::RetryAfterTooLong
        );
        if suppressed && attempts > 0 {
            metrics::counter!("staunch_retry_suppressed_total", "policy" => policy, "reason" => reason.as_str())
                .increment(1);
        }
        metrics::counter!("staunch_retry_outcomes_total", "policy" => policy, "outcome" => reason.as_str())
            .increment(1);
    }
}

#[inline]
pub(crate) fn fallback_used(reason: StopReason) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::fallback", reason = reason.as_str(), "call failed; using the fallback");
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_fallback_used_total", "reason" => reason.as_str()).increment(1);
}
