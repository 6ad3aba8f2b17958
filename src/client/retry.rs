//! The retry policy: which failures are retried, how long to wait.
//!
//! Transient failures (connect, timeout, 408/409/429/5xx, a 200 that carries
//! an error or cannot be parsed) are retried with capped exponential backoff
//! and jitter, so a fleet of workers that failed together does not retry in
//! lockstep. A server's `Retry-After` wins over the computed delay. Other 4xx
//! (bad request, context too long, auth) fail at once: retrying cannot help.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;

use super::ErrorKind;

/// Whether a failure of this kind is worth another attempt.
pub(crate) fn is_retryable(kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::Connect
        | ErrorKind::Timeout
        | ErrorKind::RateLimited
        | ErrorKind::Server
        | ErrorKind::ErrorBody
        | ErrorKind::Decode => true,
        ErrorKind::Client | ErrorKind::Cancelled => false,
    }
}

/// Classifies an HTTP error status.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::RateLimited,
        // 408 Request Timeout and 409 Conflict are transient by definition;
        // OpenAI's own SDKs retry both.
        408 | 409 => ErrorKind::Server,
        500.. => ErrorKind::Server,
        _ => ErrorKind::Client,
    }
}

/// The delay before retry number `retry` (0 for the first retry):
/// `base * 2^retry` capped at `max`, with "equal jitter" (half fixed, half
/// random), which spreads retries out but never waits near zero.
pub(crate) fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
    let cap = exp.min(max);
    let half = cap / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos));
    half + jitter
}

/// Parses a `Retry-After` value: delay-seconds (fractions tolerated) or an
/// HTTP-date (IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`). A date in
/// the past means "now". Returns `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = UNIX_EPOCH + Duration::from_secs(parse_imf_fixdate(value)?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Seconds since the Unix epoch of an IMF-fixdate, the only HTTP-date form
/// servers may send (RFC 9110 §5.6.7).
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let (_weekday, rest) = s.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1970..=9999).contains(&year) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's algorithm,
/// restricted to years >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        // 1994-11-06T08:49:37Z is 784111777 (RFC 9110's example).
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_imf_fixdate(date), Some(784_111_777));
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(7)));
        // In the past: retry now.
        let later = UNIX_EPOCH + Duration::from_secs(784_111_800);
        assert_eq!(parse_retry_after(date, later), Some(Duration::ZERO));
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 PST"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..200 {
            let d0 = backoff(0, base, max);
            assert!(d0 >= Duration::from_millis(50) && d0 <= base, "{d0:?}");
            let d2 = backoff(2, base, max);
            assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400));
            let big = backoff(40, base, max);
            assert!(big >= max / 2 && big <= max);
        }
    }

    #[test]
    fn status_classification() {
        assert_eq!(kind_for_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_for_status(408), ErrorKind::Server);
        assert_eq!(kind_for_status(503), ErrorKind::Server);
        assert_eq!(kind_for_status(400), ErrorKind::Client);
        assert_eq!(kind_for_status(401), ErrorKind::Client);
        assert!(!is_retryable(kind_for_status(400)));
        assert!(is_retryable(kind_for_status(500)));
        assert!(is_retryable(ErrorKind::Decode));
    }
}
