//! gRPC's server pushback, `grpc-retry-pushback-ms` (gRPC A6): a pure, bounded parser that
//! never panics.

use std::time::Duration;

use ::http::{HeaderMap, HeaderName};

use super::MAX_RETRY_AFTER;

/// `grpc-retry-pushback-ms`: the metadata key by which a gRPC server tells a client when to
/// retry, or not to (gRPC A6, "Pushback").
pub const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// What a server's pushback asks of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pushback {
    /// Retry no sooner than this. At most [`MAX_RETRY_AFTER`], like a `Retry-After`.
    After(Duration),
    /// Do not retry at all: the value was negative or malformed, or there were several (gRPC
    /// A6: "If the value for pushback is negative or unparseble, then it will be seen as the
    /// server asking the client not to retry at all").
    Stop,
}

/// Parses one `grpc-retry-pushback-ms` value: an ASCII signed 32-bit number of milliseconds.
///
/// A negative value asks the client not to retry, and so does anything that does not parse:
/// empty, fractional, out of the 32-bit range, non-ASCII. As grpc-go and grpc-java do, a `+`
/// sign and leading zeros are accepted (A6 asks servers not to send them, not clients to refuse
/// them), and so is surrounding whitespace. Never panics; never more than [`MAX_RETRY_AFTER`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::http::{Pushback, parse_pushback};
///
/// assert_eq!(parse_pushback(b"250"), Pushback::After(Duration::from_millis(250)));
/// assert_eq!(parse_pushback(b"-1"), Pushback::Stop);
/// assert_eq!(parse_pushback(b"soon"), Pushback::Stop);
/// ```
pub fn parse_pushback(value: &[u8]) -> Pushback {
    let value = value.trim_ascii();
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Pushback::Stop;
    }
    // Leading zeros aside, an i32 has at most 10 digits: anything longer is out of range.
    let significant = &digits[digits.iter().take_while(|d| **d == b'0').count()..];
    if significant.len() > 10 {
        return Pushback::Stop;
    }
    let magnitude = significant
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let millis = if negative { -magnitude } else { magnitude };
    match i32::try_from(millis) {
        Ok(millis) if millis >= 0 => {
            Pushback::After(Duration::from_millis(millis as u64).min(MAX_RETRY_AFTER))
        }
        _ => Pushback::Stop,
    }
}

/// The pushback of a response's headers (or a gRPC response's trailers), or `None` if there is
/// none. More than one value is [`Pushback::Stop`], as in grpc-go: the server's intent is
/// unclear, and retrying is the riskier reading. A refusal is reported as a `tracing` debug
/// event (feature `tracing`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use staunch::http::{Pushback, grpc_pushback};
///
/// let mut trailers = HeaderMap::new();
/// assert_eq!(grpc_pushback(&trailers), None);
/// trailers.insert("grpc-retry-pushback-ms", "1000".parse().unwrap());
/// assert_eq!(grpc_pushback(&trailers), Some(Pushback::After(Duration::from_secs(1))));
/// ```
pub fn grpc_pushback(headers: &HeaderMap) -> Option<Pushback> {
    let mut values = headers.get_all(GRPC_RETRY_PUSHBACK_MS).iter();
    let first = values.next()?;
    let pushback = match values.next() {
        None => parse_pushback(first.as_bytes()),
        Some(_) => Pushback::Stop,
    };
    if pushback == Pushback::Stop {
        refused(first.as_bytes());
    }
    Some(pushback)
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn refused(value: &[u8]) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "staunch::http",
        header = GRPC_RETRY_PUSHBACK_MS.as_str(),
        // Bounded and escaped: the value is untrusted input.
        value = %value[..value.len().min(64)].escape_ascii(),
        "the server's pushback asks not to retry (negative, malformed or repeated)"
    );
}

#[cfg(test)]
mod tests {
    use ::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Pushback {
        Pushback::After(Duration::from_millis(n))
    }

    #[test]
    fn table_of_values() {
        let table: &[(&[u8], Pushback)] = &[
            (b"0", ms(0)),
            (b"1", ms(1)),
            (b"250", ms(250)),
            (b" 250\t", ms(250)),
            (b"+250", ms(250)),
            (b"000250", ms(250)),
            (b"-0", ms(0)),
            (b"86400000", Pushback::After(MAX_RETRY_AFTER)),
            (b"2147483647", Pushback::After(MAX_RETRY_AFTER)),
            (b"00000000002147483647", Pushback::After(MAX_RETRY_AFTER)),
            // out of the signed 32-bit range
            (b"2147483648", Pushback::Stop),
            (b"99999999999999999999999", Pushback::Stop),
            // negative: do not retry
            (b"-1", Pushback::Stop),
            (b"-2147483648", Pushback::Stop),
            // malformed: do not retry
            (b"", Pushback::Stop),
            (b" ", Pushback::Stop),
            (b"-", Pushback::Stop),
            (b"+", Pushback::Stop),
            (b"--1", Pushback::Stop),
            (b"1.5", Pushback::Stop),
            (b"1e3", Pushback::Stop),
            (b"0x10", Pushback::Stop),
            (b"1 2", Pushback::Stop),
            (b"\xff1", Pushback::Stop),
            ("１".as_bytes(), Pushback::Stop),
        ];
        for (value, expected) in table {
            assert_eq!(
                parse_pushback(value),
                *expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn headers_with_none_one_or_several_values() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_pushback(&headers), None);
        headers.insert(GRPC_RETRY_PUSHBACK_MS, HeaderValue::from_static("10"));
        assert_eq!(grpc_pushback(&headers), Some(ms(10)));
        headers.append(GRPC_RETRY_PUSHBACK_MS, HeaderValue::from_static("10"));
        assert_eq!(grpc_pushback(&headers), Some(Pushback::Stop));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_and_stay_bounded(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Pushback::After(wait) = parse_pushback(&value) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn every_i32_reads_as_grpc_does(n in any::<i32>(), zeros in 0usize..4) {
            let digits = format!("{}{}", "0".repeat(zeros), n.unsigned_abs());
            let text = if n < 0 { format!("-{digits}") } else { digits };
            let expected = match u64::try_from(n) {
                Ok(n) => Pushback::After(Duration::from_millis(n).min(MAX_RETRY_AFTER)),
                Err(_) => Pushback::Stop,
            };
            prop_assert_eq!(parse_pushback(text.as_bytes()), expected);
        }
    }
}
