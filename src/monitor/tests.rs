//! Tests of the schedule: durations, interval slots with jitter, cron times, catch-up.

use super::*;
use time::macros::datetime;

fn ms(t: time::OffsetDateTime) -> Millis {
    (t.unix_timestamp_nanos() / 1_000_000) as Millis
}

fn err(r: Result<impl std::fmt::Debug, ScheduleError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn durations_take_a_number_and_one_unit() {
    let d = |t| parse_duration("k", t).unwrap();
    assert_eq!(d("60s"), Duration::from_secs(60));
    assert_eq!(d("15m"), Duration::from_secs(900));
    assert_eq!(d("6h"), Duration::from_secs(6 * 3600));
    assert_eq!(d(" 1d "), Duration::from_secs(86_400));
    assert_eq!(d("0s"), Duration::ZERO);
    assert_eq!(format_duration(d("90s")), "90s");
    assert_eq!(format_duration(d("120m")), "2h");
}

#[test]
fn bad_durations_name_the_key_and_say_what_is_allowed() {
    let e = err(parse_duration("monitors[1].thresholds.cpu.for", "15"));
    assert!(e.starts_with("monitors[1].thresholds.cpu.for: "), "{e}");
    assert!(e.contains("\"15\" has no unit"), "{e}");
    assert!(e.contains("s, m, h or d"), "{e}");
    let e = err(parse_duration("k", "5x"));
    assert!(e.contains("unknown unit \"x\""), "{e}");
    let e = err(parse_duration("k", "1.5h"));
    assert!(e.contains("unknown unit"), "{e}");
    let e = err(parse_duration("k", "m5"));
    assert!(e.contains("does not start with a number"), "{e}");
    let e = err(parse_duration("k", ""));
    assert!(e.contains("empty duration"), "{e}");
    let e = err(parse_duration("k", "400d"));
    assert!(e.contains("too large"), "{e}");
    let e = err(parse_duration("k", "99999999999999999999999s"));
    assert!(e.contains("too large"), "{e}");
    let e = err(Schedule::every("monitors[0].every", "0s"));
    assert!(e.starts_with("monitors[0].every: "), "{e}");
    assert!(e.contains("at least 1s"), "{e}");
}

#[test]
fn settings_take_every_or_schedule_or_the_kinds_default() {
    let six_h = Duration::from_secs(6 * 3600);
    let e = err(Schedule::from_settings(
        "monitors[3]",
        Some("60s"),
        Some("0 2 * * *"),
        six_h,
    ));
    assert!(e.starts_with("monitors[3].schedule: "), "{e}");
    assert!(e.contains("not both"), "{e}");
    assert_eq!(
        Schedule::from_settings("m", None, None, six_h).unwrap(),
        Schedule::Every { every: six_h }
    );
    let e = err(Schedule::from_settings(
        "monitors[2]",
        Some("60"),
        None,
        six_h,
    ));
    assert!(e.starts_with("monitors[2].every: "), "{e}");
    let e = err(Schedule::from_settings(
        "monitors[2]",
        None,
        Some("0 2 * *"),
        six_h,
    ));
    assert!(e.starts_with("monitors[2].schedule: "), "{e}");
    let cron = Schedule::from_settings("m", None, Some("0 2 * * *"), six_h).unwrap();
    assert_eq!(cron.describe(), "cron \"0 2 * * *\" UTC");
    assert_eq!(Schedule::every("k", "60s").unwrap().describe(), "every 1m");
}

#[test]
fn bad_cron_expressions_are_rejected_with_the_key() {
    for (text, says) in [
        ("0 2 * *", "has 4 fields"),
        ("0 0 2 * * *", "has 6 fields"),
        ("61 * * * *", "is not valid"),
        ("0 25 * * *", "is not valid"),
        ("x y z w v", "is not valid"),
        ("0 0 31 2 *", "never matches"),
    ] {
        let e = err(Schedule::cron("monitors[5].schedule", text));
        assert!(e.starts_with("monitors[5].schedule: "), "{text}: {e}");
        assert!(e.contains(says), "{text}: {e}");
        assert!(
            e.contains("minute hour day-of-month month day-of-week"),
            "{e}"
        );
    }
}

#[test]
fn time_zones_are_iana_names_and_a_bad_one_names_the_key_with_an_example() {
    assert_eq!("UTC".parse::<CronZone>(), Ok(CronZone::UTC));
    assert_eq!(CronZone::default(), CronZone::UTC);
    let berlin = CronZone::parse("monitors[0].timezone", " Europe/Berlin ").unwrap();
    assert_eq!(berlin.name(), "Europe/Berlin");
    for (text, says) in [
        ("Europe/Berln", "did you mean \"Europe/Berlin\"?"),
        ("europe/berlin", "did you mean \"Europe/Berlin\"?"),
        ("Mars/Olympus_Mons", "is not a known time zone;"),
        ("", "is empty"),
        ("+02:00", "is not a known time zone"),
    ] {
        let e = err(CronZone::parse("monitors[4].timezone", text));
        assert!(e.starts_with("monitors[4].timezone: "), "{text}: {e}");
        assert!(e.contains(says), "{text}: {e}");
        assert!(e.contains("e.g. \"Europe/Berlin\""), "{text}: {e}");
    }
    // Only a cron schedule has a wall clock to read.
    let e = err(Schedule::every("monitors[1].every", "60s")
        .unwrap()
        .with_zone("monitors[1].timezone", berlin));
    assert!(e.starts_with("monitors[1].timezone: "), "{e}");
    assert!(e.contains("applies only to a cron `schedule`"), "{e}");
    let s = Schedule::cron("k", "0 2 * * *")
        .unwrap()
        .with_zone("k", berlin)
        .unwrap();
    assert_eq!(s.describe(), "cron \"0 2 * * *\" Europe/Berlin");
    assert_ne!(
        s,
        Schedule::cron("k", "0 2 * * *").unwrap(),
        "the zone is part of it"
    );
}

fn berlin(expr: &str) -> Schedule {
    Schedule::cron("k", expr)
        .unwrap()
        .with_zone("k", CronZone::parse("k", "Europe/Berlin").unwrap())
        .unwrap()
}

/// The slots a scheduler claims one after the other from `from`: each run claimed at its
/// slot and the next asked for 30 s later.
fn slots(s: &Schedule, from: Millis, n: usize) -> Vec<Millis> {
    let mut out = Vec::new();
    let mut last = None;
    let mut now = from;
    for _ in 0..n {
        let next = s.next_after("m", now, last);
        out.push(next);
        last = Some(next);
        now = next + 30_000;
    }
    out
}

#[test]
fn a_nightly_job_in_berlin_across_both_dst_changes() {
    // Europe/Berlin 2026: 29 March 02:00 CET -> 03:00 CEST (02:xx does not exist),
    // 25 October 03:00 CEST -> 02:00 CET (02:xx happens twice).
    let s = berlin("0 2 * * *");
    assert_eq!(
        slots(&s, ms(datetime!(2026-03-27 12:00 UTC)), 4),
        vec![
            ms(datetime!(2026-03-28 01:00 UTC)), // 02:00 CET
            // The gap day: 02:00 does not exist; croner runs the job once, at the first
            // minute after the gap (03:00 CEST).
            ms(datetime!(2026-03-29 01:00 UTC)),
            ms(datetime!(2026-03-30 00:00 UTC)), // 02:00 CEST
            ms(datetime!(2026-03-31 00:00 UTC)),
        ]
    );
    assert_eq!(
        slots(&s, ms(datetime!(2026-10-23 12:00 UTC)), 3),
        vec![
            ms(datetime!(2026-10-24 00:00 UTC)), // 02:00 CEST
            // The repeated hour: once, at the first 02:00 (CEST), not again at 02:00 CET.
            ms(datetime!(2026-10-25 00:00 UTC)),
            ms(datetime!(2026-10-26 01:00 UTC)), // 02:00 CET
        ]
    );
    // A minute inside the gap also moves to 03:00, not to 03:30.
    assert_eq!(
        berlin("30 2 * * *").next_after("m", ms(datetime!(2026-03-29 00:00 UTC)), None),
        ms(datetime!(2026-03-29 01:00 UTC))
    );
    // The same expression in UTC is a fixed hour of UTC all year.
    let utc = Schedule::cron("k", "0 2 * * *").unwrap();
    assert_eq!(
        slots(&utc, ms(datetime!(2026-03-28 12:00 UTC)), 2),
        vec![
            ms(datetime!(2026-03-29 02:00 UTC)),
            ms(datetime!(2026-03-30 02:00 UTC))
        ]
    );
}

#[test]
fn a_stepped_job_in_berlin_skips_the_gap_and_runs_in_both_passes_of_the_repeated_hour() {
    let s = berlin("*/30 * * * *");
    assert_eq!(
        slots(&s, ms(datetime!(2026-03-29 00:10 UTC)), 3),
        vec![
            ms(datetime!(2026-03-29 00:30 UTC)), // 01:30 CET
            ms(datetime!(2026-03-29 01:00 UTC)), // 03:00 CEST: 02:00 and 02:30 skipped
            ms(datetime!(2026-03-29 01:30 UTC)), // 03:30 CEST
        ]
    );
    assert_eq!(
        slots(&s, ms(datetime!(2026-10-24 23:50 UTC)), 5),
        vec![
            ms(datetime!(2026-10-25 00:00 UTC)), // 02:00 CEST
            ms(datetime!(2026-10-25 00:30 UTC)), // 02:30 CEST
            ms(datetime!(2026-10-25 01:00 UTC)), // 02:00 CET
            ms(datetime!(2026-10-25 01:30 UTC)), // 02:30 CET
            ms(datetime!(2026-10-25 02:00 UTC)), // 03:00 CET
        ]
    );
}

#[test]
fn after_downtime_over_a_dst_change_a_zoned_job_catches_up_once() {
    let s = berlin("0 2 * * *");
    // Last ran on the 27th; back on the 29th at noon: the gap day's run (03:00 CEST) is the
    // one missed slot that runs now.
    let last = ms(datetime!(2026-03-27 01:00 UTC));
    let now = ms(datetime!(2026-03-29 10:00 UTC));
    let catch_up = s.next_after("m", now, Some(last));
    assert_eq!(catch_up, ms(datetime!(2026-03-29 01:00 UTC)));
    assert_eq!(
        s.next_after("m", now, Some(catch_up)),
        ms(datetime!(2026-03-30 00:00 UTC))
    );
    // Back during the second pass of the repeated hour, after the 02:00 CEST run: nothing
    // to catch up, the next run is tomorrow's.
    let ran = ms(datetime!(2026-10-25 00:00 UTC));
    let now = ms(datetime!(2026-10-25 01:15 UTC)); // 02:15 CET
    assert_eq!(
        s.next_after("m", now, Some(ran)),
        ms(datetime!(2026-10-26 01:00 UTC))
    );
}

#[test]
fn cron_next_times_are_the_next_matching_minute_in_utc() {
    let s = Schedule::cron("k", "0 2 * * *").unwrap();
    let at_0159 = ms(datetime!(2026-03-01 01:59 UTC));
    let at_0200 = ms(datetime!(2026-03-01 02:00 UTC));
    let next_day = ms(datetime!(2026-03-02 02:00 UTC));
    assert_eq!(s.next_after("scan", at_0159, None), at_0200);
    assert_eq!(
        s.next_after("scan", at_0200, None),
        next_day,
        "strictly after now"
    );
    // The 02:00 run is claimed; from 02:00:30 the next one is tomorrow.
    assert_eq!(
        s.next_after("scan", at_0200 + 30_000, Some(at_0200)),
        next_day
    );
    // No jitter for cron.
    assert_eq!(s.jitter_ms("scan"), 0);
    let every_15 = Schedule::cron("k", "*/15 * * * *").unwrap();
    assert_eq!(
        every_15.next_after("x", ms(datetime!(2026-03-01 10:07:13 UTC)), None),
        ms(datetime!(2026-03-01 10:15 UTC))
    );
    // Names work (croner's aliases), e.g. Mondays 09:30.
    let mondays = Schedule::cron("k", "30 9 * * MON").unwrap();
    assert_eq!(
        mondays.next_after("x", ms(datetime!(2026-03-01 12:00 UTC)), None),
        ms(datetime!(2026-03-02 09:30 UTC))
    );
}

#[test]
fn after_downtime_a_cron_monitor_catches_up_once() {
    let s = Schedule::cron("k", "0 2 * * *").unwrap();
    let last = ms(datetime!(2026-03-01 02:00 UTC));
    let now = ms(datetime!(2026-03-05 12:00 UTC));
    let catch_up = s.next_after("scan", now, Some(last));
    assert_eq!(
        catch_up,
        ms(datetime!(2026-03-05 02:00 UTC)),
        "the latest missed slot, due now"
    );
    assert!(catch_up <= now);
    // Once that slot is claimed, the next is tomorrow's: not one per missed day.
    assert_eq!(
        s.next_after("scan", now, Some(catch_up)),
        ms(datetime!(2026-03-06 02:00 UTC))
    );
}

#[test]
fn interval_jitter_is_deterministic_and_bounded() {
    let minute = Schedule::every("k", "60s").unwrap();
    let hour = Schedule::every("k", "1h").unwrap();
    let second = Schedule::every("k", "1s").unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let name = format!("monitor-{i}");
        let j = minute.jitter_ms(&name);
        assert!((0..=6_000).contains(&j), "10 % of 60 s: {j}");
        assert_eq!(j, minute.jitter_ms(&name), "same name, same jitter");
        assert!(
            (0..=30_000).contains(&hour.jitter_ms(&name)),
            "capped at 30 s"
        );
        assert!((0..=100).contains(&second.jitter_ms(&name)));
        seen.insert(j);
    }
    assert!(seen.len() > 100, "names spread out: {}", seen.len());
}

#[test]
fn interval_slots_follow_the_interval_plus_jitter() {
    let s = Schedule::every("k", "60s").unwrap();
    let j = s.jitter_ms("uptime");
    let now = ms(datetime!(2026-03-01 10:00:30 UTC));
    // Never ran: due at once, at the current slot (within the last interval).
    let first = s.next_after("uptime", now, None);
    assert!(first <= now && first > now - 60_000, "{first} vs {now}");
    assert_eq!(
        (first - j).rem_euclid(60_000),
        0,
        "slots are minute multiples + jitter"
    );
    // That slot claimed: the next one is one interval later.
    assert_eq!(s.next_after("uptime", now, Some(first)), first + 60_000);
    assert_eq!(
        s.next_after("uptime", first + 59_999, Some(first)),
        first + 60_000
    );
    // Two replicas compute the same slots.
    assert_eq!(
        Schedule::every("k", "60s")
            .unwrap()
            .next_after("uptime", now, None),
        first
    );
    // After ten days down: one catch-up slot (the latest), then the regular cadence.
    let later = now + 10 * 86_400_000 + 12_345;
    let catch_up = s.next_after("uptime", later, Some(first));
    assert!(catch_up <= later && catch_up > later - 60_000);
    assert_eq!(
        s.next_after("uptime", later, Some(catch_up)),
        catch_up + 60_000
    );
}

#[test]
fn run_outcomes_round_trip_their_names() {
    for o in RunOutcome::ALL {
        assert_eq!(RunOutcome::parse(o.as_str()), Some(o));
    }
    assert_eq!(RunOutcome::parse("nope"), None);
}
