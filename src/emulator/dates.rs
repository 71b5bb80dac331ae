//! The emulator's dates, on the `time` crate: RFC 3339 timestamps as the APIs
//! write them, and `yyyy-MM-dd` dates as days since the epoch.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Days since the epoch of a `yyyy-MM-dd` date (exactly that: four-digit year,
/// two-digit month and day, nothing after), if it is a date.
pub(crate) fn epoch_day(date: &str) -> Option<i64> {
    let format = format_description!("[year repr:full sign:automatic]-[month]-[day]");
    if date.len() != 10 || !date.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let date = Date::parse(date, format).ok()?;
    Some(i64::from(
        date.to_julian_day() - OffsetDateTime::UNIX_EPOCH.date().to_julian_day(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(epoch_day("1970-01-01"), Some(0));
        assert_eq!(epoch_day("2000-03-01"), Some(11_017));
        assert_eq!(epoch_day("2024-02-29"), Some(19_782));
        for bad in [
            "2023-02-29",
            "2030-13-01",
            "2024-00-10",
            "2030-1-01",
            "2030-01-01T00:00:00Z",
            "+030-01-01",
            "24-01-01",
            "2024/01/01",
            "2024-01-3x",
            "",
        ] {
            assert_eq!(epoch_day(bad), None, "{bad}");
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        // Round trip.
        for day in [0u64, 11_017, 19_782, 20_000, 25_000] {
            let text = rfc3339(day * 86_400);
            assert_eq!(epoch_day(&text[..10]), Some(day as i64), "{text}");
        }
    }
}
