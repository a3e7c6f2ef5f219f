//! `Retry-After` (RFC 9110, section 10.2.3): a pure, bounded parser that never panics.

use std::time::{Duration, SystemTime};

use ::http::HeaderMap;
use ::http::header::{DATE, RETRY_AFTER};

/// The longest `Retry-After` the parser returns: one day. Longer hints (and delta-seconds too
/// large for a `u64`) are clamped to it.
///
/// A day is far above any sensible [`RetryConfig::with_max_retry_after`](crate::RetryConfig::with_max_retry_after)
/// (60 s by default): a clamped hint still exceeds that ceiling, so retrying stops with
/// [`StopReason::RetryAfterTooLong`](crate::StopReason::RetryAfterTooLong) rather than waiting.
/// The bound only keeps absurd values (`Retry-After: 99999999999999999999`, a date in the year
/// 9999) from turning into durations that overflow instant arithmetic downstream.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses one `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Fri, 31 Dec 1999 23:59:59 GMT`, and the two obsolete formats RFC 9110 requires recipients
/// to accept), relative to `now`.
///
/// Pure: `now` is the wall-clock reference for an HTTP-date (the response's `Date`, ideally; see
/// [`retry_after`]). Returns `None` for anything malformed: empty, signed (`-5`, `+5`),
/// fractional, non-ASCII, or not a date. Never panics, and never returns more than
/// [`MAX_RETRY_AFTER`]; a date in the past is zero.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use staunch::http::{MAX_RETRY_AFTER, parse_retry_after};
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after(b"120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after(b"Sun, 06 Nov 1994 08:51:37 GMT", now),
///     Some(Duration::from_secs(120)),
/// );
/// assert_eq!(parse_retry_after(b"Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after(b"99999999999999999999999", now), Some(MAX_RETRY_AFTER));
/// assert_eq!(parse_retry_after(b"-1", now), None);
/// assert_eq!(parse_retry_after(b"soon", now), None);
/// ```
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    parse_with(value, || now)
}

/// The `Retry-After` of a response's headers, or `None` if it has none that parses.
///
/// An HTTP-date is measured from the response's own `Date` header when that is present and
/// valid (both stamps then come from the server's clock, so a skewed local clock does not
/// matter), and from `now` otherwise. When several `Retry-After` fields are present, the longest
/// valid one wins: the server asked for at least that much. Invalid fields are ignored.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use staunch::http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("date", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
/// headers.insert("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT".parse().unwrap());
/// // The local clock (here: far off) is not used when the response carries a valid Date.
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(30)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_with(headers, || now)
}

/// [`retry_after`] with the fallback clock read only if an HTTP-date needs it.
pub(crate) fn retry_after_with(
    headers: &HeaderMap,
    now: impl Fn() -> SystemTime,
) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter().peekable();
    values.peek()?;
    // The reference for HTTP-dates, read at most once and only when a date needs it.
    let cell = std::cell::OnceCell::new();
    let reference = || {
        *cell.get_or_init(|| {
            headers
                .get(DATE)
                .and_then(|date| parse_http_date(date.as_bytes()))
                .unwrap_or_else(&now)
        })
    };
    values
        .filter_map(|value| parse_with(value.as_bytes(), reference))
        .max()
}

fn parse_with(value: &[u8], now: impl FnOnce() -> SystemTime) -> Option<Duration> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    if value.iter().all(u8::is_ascii_digit) {
        return Some(delta_seconds(value));
    }
    let date = parse_http_date(value)?;
    let wait = date.duration_since(now()).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Decimal digits to seconds, saturating at [`MAX_RETRY_AFTER`] (so any length is fine).
fn delta_seconds(digits: &[u8]) -> Duration {
    let max = MAX_RETRY_AFTER.as_secs();
    let mut secs: u64 = 0;
    for digit in digits {
        secs = secs * 10 + u64::from(digit - b'0');
        if secs >= max {
            return MAX_RETRY_AFTER;
        }
    }
    Duration::from_secs(secs)
}

/// An HTTP-date in any of RFC 9110's three formats; `None` for non-ASCII or malformed input.
fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    // Every valid date is 24 to 30 ASCII bytes; refusing longer input keeps the work bounded.
    if value.len() > 64 {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text).ok()
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use ::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    fn rfc_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn table_of_values() {
        let now = rfc_now();
        let table: &[(&[u8], Option<Duration>)] = &[
            (b"0", secs(0)),
            (b"120", secs(120)),
            (b" 120\t", secs(120)),
            (b"000120", secs(120)),
            (b"86399", secs(86_399)),
            (b"86400", Some(MAX_RETRY_AFTER)),
            (b"18446744073709551615", Some(MAX_RETRY_AFTER)),
            (b"18446744073709551616", Some(MAX_RETRY_AFTER)),
            (
                b"999999999999999999999999999999999999",
                Some(MAX_RETRY_AFTER),
            ),
            // the three date formats
            (b"Sun, 06 Nov 1994 08:51:37 GMT", secs(120)),
            (b"Sunday, 06-Nov-94 08:51:37 GMT", secs(120)),
            (b"Sun Nov  6 08:51:37 1994", secs(120)),
            // past and far
            (b"Sun, 06 Nov 1994 08:49:36 GMT", secs(0)),
            (b"Thu, 01 Jan 1970 00:00:00 GMT", secs(0)),
            (b"Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_RETRY_AFTER)),
            // malformed
            (b"", None),
            (b"   ", None),
            (b"-1", None),
            (b"+1", None),
            (b"1.5", None),
            (b"1e3", None),
            (b"120, 120", None),
            (b"0x10", None),
            (b"Sun, 06 Nov 1994 08:51:37", None),
            (b"Mon, 06 Nov 1994 08:51:37 GMT", None), // wrong weekday
            (b"Sun, 31 Feb 1994 08:51:37 GMT", None),
            (b"Sun, 06 Nov 1994 25:51:37 GMT", None),
            ("Sün, 06 Nov 1994 08:51:37 GMT".as_bytes(), None),
            (b"\xff\xfe120", None),
            ("１２０".as_bytes(), None), // full-width digits are not ASCII digits
        ];
        for (value, expected) in table {
            assert_eq!(
                parse_retry_after(value, now),
                *expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn headers_prefer_the_responses_own_date_and_take_the_longest_of_several() {
        let far_off_local_clock = UNIX_EPOCH; // 1970: a date in 1994 would be 24 years away
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, far_off_local_clock), None);

        headers.insert(
            DATE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        headers.append(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        assert_eq!(retry_after(&headers, far_off_local_clock), secs(30));

        headers.append(RETRY_AFTER, HeaderValue::from_static("45"));
        headers.append(RETRY_AFTER, HeaderValue::from_static("garbage"));
        assert_eq!(retry_after(&headers, far_off_local_clock), secs(45));

        // An invalid Date falls back to `now`.
        headers.insert(DATE, HeaderValue::from_static("yesterday"));
        headers.remove(RETRY_AFTER);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        assert_eq!(retry_after(&headers, rfc_now()), secs(30));
    }

    #[test]
    fn the_fallback_clock_is_read_only_for_a_date_without_a_valid_date_header() {
        let reads = std::cell::Cell::new(0);
        let now = || {
            reads.set(reads.get() + 1);
            rfc_now()
        };
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        assert_eq!(retry_after_with(&headers, now), secs(5));
        assert_eq!(reads.get(), 0, "delta-seconds need no clock");
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:47 GMT"),
        );
        headers.append(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:57 GMT"),
        );
        assert_eq!(retry_after_with(&headers, now), secs(20));
        assert_eq!(reads.get(), 1, "read once for two dates");
    }

    fn any_time() -> impl Strategy<Value = SystemTime> {
        // From 1970 to well past 9999, so both sides of every date are covered.
        (0u64..400_000_000_000).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            value in proptest::collection::vec(any::<u8>(), 0..80),
            now in any_time(),
        ) {
            if let Some(wait) = parse_retry_after(&value, now) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic_and_stay_bounded(value in "\\PC{0,40}", now in any_time()) {
            if let Some(wait) = parse_retry_after(value.as_bytes(), now) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn date_shaped_strings_never_panic(
            value in "[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
            now in any_time(),
        ) {
            if let Some(wait) = parse_retry_after(value.as_bytes(), now) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn delta_seconds_round_trip_and_clamp(n in any::<u64>(), zeros in 0usize..5) {
            let text = format!("{}{n}", "0".repeat(zeros));
            let expected = Duration::from_secs(n).min(MAX_RETRY_AFTER);
            prop_assert_eq!(parse_retry_after(text.as_bytes(), UNIX_EPOCH), Some(expected));
        }

        #[test]
        fn negative_numbers_are_malformed(n in 1u64..) {
            let text = format!("-{n}");
            prop_assert_eq!(parse_retry_after(text.as_bytes(), UNIX_EPOCH), None);
        }

        #[test]
        fn dates_round_trip_to_the_second(
            now in any_time(),
            // Dates up to 9999-12-31, which is 253402300799 s after the epoch.
            at in 0u64..253_402_300_800,
        ) {
            let date = UNIX_EPOCH + Duration::from_secs(at);
            let text = httpdate::fmt_http_date(date);
            let expected = date
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
                .min(MAX_RETRY_AFTER);
            prop_assert_eq!(parse_retry_after(text.as_bytes(), now), Some(expected));
        }
    }
}
