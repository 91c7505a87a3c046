//! Time for the simulator: the formats Wazuh and OpenSearch print (`...Z`, alert
//! timestamps with `+0000`, epoch milliseconds) and the parsing the indexer needs
//! (`date_optional_time` and date math such as `now-24h` or `now-1d/d`).

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Seconds since the epoch with sub-second precision.
pub fn unix_f64(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

pub fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(UtcOffset::UTC)
}

/// `2024-05-01T10:20:30Z`: how the Wazuh API prints dates.
pub fn wazuh_z(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2024-05-01T10:20:30.123456Z`: cluster synchronisation dates.
pub fn wazuh_micro_z(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// `2024-05-01T10:20:30.123+0000`: the `timestamp` of an alert as wazuh-analysisd writes it.
pub fn alert_ts(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `2024-05-01T10:20:30.123Z`: how OpenSearch prints a date as `value_as_string`.
pub fn iso_millis(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `2024.05.01`: the daily suffix of `wazuh-alerts-4.x-*` indices.
pub fn index_day(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!("{:04}.{:02}.{:02}", t.year(), t.month() as u8, t.day())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            self.i += 1;
        }
        Some(v)
    }
}

/// Parse OpenSearch's `date_optional_time` (`2024`, `2024-05-01`, `2024-05-01T10:20`,
/// `2024-05-01T10:20:30.123+0000`, `...Z`, `...+02:00`) into epoch milliseconds (UTC
/// when no offset is given).
pub fn parse_date_millis(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let year = c.digits(4)? as i32;
    let (mut month, mut day) = (1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
        }
    }
    if c.eat(b'T') || c.eat(b't') {
        hour = c.digits(2)?;
        if c.eat(b':') {
            minute = c.digits(2)?;
            if c.eat(b':') {
                second = c.digits(2)?;
                if c.eat(b'.') || c.eat(b',') {
                    let start = c.i;
                    let mut frac = 0u64;
                    let mut n = 0;
                    while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                        if n < 9 {
                            frac = frac * 10 + u64::from(d - b'0');
                            n += 1;
                        }
                        c.i += 1;
                    }
                    if c.i == start {
                        return None;
                    }
                    for _ in n..9 {
                        frac *= 10;
                    }
                    nanos = frac as u32;
                }
            }
        }
    }
    let mut offset = 0i32;
    match c.peek() {
        None => {}
        Some(b'Z') | Some(b'z') => c.i += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let hh = c.digits(2)? as i32;
            c.eat(b':');
            let mm = if c.peek().is_some() {
                c.digits(2)? as i32
            } else {
                0
            };
            offset = (hh * 3600 + mm * 60) * if sign == b'-' { -1 } else { 1 };
        }
        Some(_) => return None,
    }
    if c.i != c.b.len() {
        return None;
    }
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let t = PrimitiveDateTime::new(date, time)
        .assume_offset(UtcOffset::from_whole_seconds(offset).ok()?);
    Some(millis(t))
}

fn add_months(t: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    let total = i64::from(t.year()) * 12 + i64::from(t.month() as u8 - 1) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let last = time::util::days_in_month(month, year);
    let date = Date::from_calendar_date(year, month, t.day().min(last)).ok()?;
    Some(PrimitiveDateTime::new(date, t.time()).assume_utc())
}

fn round_down(t: OffsetDateTime, unit: u8) -> Option<OffsetDateTime> {
    let t = utc(t);
    let day = |d: Date| PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc();
    Some(match unit {
        b'y' => day(Date::from_calendar_date(t.year(), Month::January, 1).ok()?),
        b'M' => day(Date::from_calendar_date(t.year(), t.month(), 1).ok()?),
        b'w' => {
            let back = i64::from(t.weekday().number_days_from_monday());
            day(t.date()) - Duration::days(back)
        }
        b'd' => day(t.date()),
        b'h' | b'H' => t.replace_time(Time::from_hms(t.hour(), 0, 0).ok()?),
        b'm' => t.replace_time(Time::from_hms(t.hour(), t.minute(), 0).ok()?),
        b's' => t.replace_time(Time::from_hms(t.hour(), t.minute(), t.second()).ok()?),
        _ => return None,
    })
}

fn step(t: OffsetDateTime, n: i64, unit: u8) -> Option<OffsetDateTime> {
    Some(match unit {
        b'y' => add_months(t, n.checked_mul(12)?)?,
        b'M' => add_months(t, n)?,
        b'w' => t + Duration::weeks(n),
        b'd' => t + Duration::days(n),
        b'h' | b'H' => t + Duration::hours(n),
        b'm' => t + Duration::minutes(n),
        b's' => t + Duration::seconds(n),
        _ => return None,
    })
}

/// Resolve an OpenSearch date expression to epoch milliseconds: a date, `now`, or an
/// anchor (`now` or `<date>||`) followed by `+N<unit>`, `-N<unit>` and `/<unit>` rounding.
/// `round_up` selects the end of a rounded unit (used by `gt` and `lte`), as OpenSearch does.
pub fn resolve_date(expr: &str, now_ms: i64, round_up: bool) -> Result<i64, String> {
    let expr = expr.trim();
    let (anchor, mut rest) = if let Some(r) = expr.strip_prefix("now") {
        (now_ms, r)
    } else if let Some((date, r)) = expr.split_once("||") {
        (
            parse_date_millis(date)
                .ok_or_else(|| format!("failed to parse date field [{expr}]"))?,
            r,
        )
    } else {
        return parse_date_millis(expr)
            .ok_or_else(|| format!("failed to parse date field [{expr}]"));
    };
    let bad = || format!("failed to parse date field [{expr}]: invalid date math");
    let mut t = from_millis(anchor);
    while let Some(op) = rest.as_bytes().first().copied() {
        rest = &rest[1..];
        match op {
            b'+' | b'-' => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let n: i64 = if digits == 0 {
                    1
                } else {
                    rest[..digits].parse().map_err(|_| bad())?
                };
                rest = &rest[digits..];
                let unit = *rest.as_bytes().first().ok_or_else(bad)?;
                rest = &rest[1..];
                t = step(t, if op == b'-' { -n } else { n }, unit).ok_or_else(bad)?;
            }
            b'/' => {
                let unit = *rest.as_bytes().first().ok_or_else(bad)?;
                rest = &rest[1..];
                let down = round_down(t, unit).ok_or_else(bad)?;
                t = if round_up {
                    step(down, 1, unit).ok_or_else(bad)? - Duration::milliseconds(1)
                } else {
                    down
                };
            }
            _ => return Err(bad()),
        }
    }
    Ok(millis(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_wazuh_and_opensearch() {
        let t = from_millis(1_714_558_830_123);
        assert_eq!(wazuh_z(t), "2024-05-01T10:20:30Z");
        assert_eq!(alert_ts(t), "2024-05-01T10:20:30.123+0000");
        assert_eq!(iso_millis(t), "2024-05-01T10:20:30.123Z");
        assert_eq!(index_day(t), "2024.05.01");
        assert_eq!(wazuh_micro_z(t), "2024-05-01T10:20:30.123000Z");
    }

    #[test]
    fn parses_date_optional_time_variants() {
        let ms = 1_714_558_830_123;
        assert_eq!(parse_date_millis("2024-05-01T10:20:30.123+0000"), Some(ms));
        assert_eq!(parse_date_millis("2024-05-01T10:20:30.123Z"), Some(ms));
        assert_eq!(parse_date_millis("2024-05-01T12:20:30.123+02:00"), Some(ms));
        assert_eq!(parse_date_millis("2024-05-01"), Some(1_714_521_600_000));
        assert_eq!(parse_date_millis("2024-05-01T10:20:30"), Some(ms - 123));
        assert_eq!(parse_date_millis("yesterday"), None);
        assert_eq!(parse_date_millis("2024-13-01"), None);
        assert_eq!(parse_date_millis("2024-05-01T10:20:30.123+0000 junk"), None);
    }

    #[test]
    fn resolves_date_math_with_rounding() {
        let now = 1_714_558_830_123; // 2024-05-01T10:20:30.123Z
        assert_eq!(resolve_date("now", now, false), Ok(now));
        assert_eq!(resolve_date("now-24h", now, false), Ok(now - 86_400_000));
        assert_eq!(resolve_date("now-1d/d", now, false), Ok(1_714_435_200_000));
        assert_eq!(
            resolve_date("now/d", now, true),
            Ok(1_714_521_600_000 + 86_400_000 - 1)
        );
        assert_eq!(
            resolve_date("2024-05-01||+1M", now, false),
            Ok(parse_date_millis("2024-06-01").unwrap())
        );
        assert!(resolve_date("now-3q", now, false).is_err());
        assert!(resolve_date("tomorrow", now, false).is_err());
    }
}
