//! Weekly operating hours in a business's own time zone, and the "open now?" rule.
//!
//! An interval may close after midnight (`22:00`–`02:00`); it then belongs to the day it opens
//! on. Times are local wall-clock times; the conversion from an instant uses the business's IANA
//! zone, so daylight-saving changes are handled by the zone database, not by us.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::value::ValueError;

/// Opening intervals for each day of the week.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OperatingHours {
    /// Monday's intervals.
    #[serde(default)]
    pub monday: Vec<Interval>,
    /// Tuesday's intervals.
    #[serde(default)]
    pub tuesday: Vec<Interval>,
    /// Wednesday's intervals.
    #[serde(default)]
    pub wednesday: Vec<Interval>,
    /// Thursday's intervals.
    #[serde(default)]
    pub thursday: Vec<Interval>,
    /// Friday's intervals.
    #[serde(default)]
    pub friday: Vec<Interval>,
    /// Saturday's intervals.
    #[serde(default)]
    pub saturday: Vec<Interval>,
    /// Sunday's intervals.
    #[serde(default)]
    pub sunday: Vec<Interval>,
}

/// One opening interval, local time, `HH:MM`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Opening time, e.g. `09:00`.
    pub open: String,
    /// Closing time, e.g. `17:30`; earlier than `open` means after midnight.
    pub close: String,
}

fn parse_hhmm(raw: &str) -> Result<u32, ValueError> {
    let invalid = || ValueError {
        code: "invalid_time",
        message: format!("{raw:?} is not a time written as HH:MM"),
    };
    if raw.len() != 5 || raw.as_bytes()[2] != b':' {
        return Err(invalid());
    }
    let time = NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| invalid())?;
    Ok(time.hour() * 60 + time.minute())
}

impl OperatingHours {
    /// Hours that are open every day from `open` to `close`.
    ///
    /// # Errors
    /// When the times are not `HH:MM`.
    pub fn every_day(open: &str, close: &str) -> Result<Self, ValueError> {
        let day = vec![Interval {
            open: open.to_owned(),
            close: close.to_owned(),
        }];
        let hours = Self {
            monday: day.clone(),
            tuesday: day.clone(),
            wednesday: day.clone(),
            thursday: day.clone(),
            friday: day.clone(),
            saturday: day.clone(),
            sunday: day,
        };
        hours.validate()?;
        Ok(hours)
    }

    fn day(&self, weekday: Weekday) -> &[Interval] {
        match weekday {
            Weekday::Mon => &self.monday,
            Weekday::Tue => &self.tuesday,
            Weekday::Wed => &self.wednesday,
            Weekday::Thu => &self.thursday,
            Weekday::Fri => &self.friday,
            Weekday::Sat => &self.saturday,
            Weekday::Sun => &self.sunday,
        }
    }

    /// Checks every interval: well-formed times, open ≠ close, at most 6 intervals a day, and no
    /// two intervals of a day overlapping.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ValueError> {
        for weekday in WEEK {
            let intervals = self.day(weekday);
            if intervals.len() > 6 {
                return Err(ValueError {
                    code: "too_many_intervals",
                    message: format!("{weekday} has more than 6 opening intervals"),
                });
            }
            let mut spans = Vec::with_capacity(intervals.len());
            for interval in intervals {
                let open = parse_hhmm(&interval.open)?;
                let close = parse_hhmm(&interval.close)?;
                if open == close {
                    return Err(ValueError {
                        code: "empty_interval",
                        message: format!("{weekday}: opening and closing times are equal"),
                    });
                }
                let end = if close < open { close + 24 * 60 } else { close };
                spans.push((open, end));
            }
            spans.sort_unstable();
            if spans.windows(2).any(|w| w[1].0 < w[0].1) {
                return Err(ValueError {
                    code: "overlapping_intervals",
                    message: format!("{weekday} has overlapping opening intervals"),
                });
            }
        }
        Ok(())
    }

    /// Whether the business is open at `at`, in time zone `tz`. Invalid intervals count as
    /// closed (they cannot be stored, see [`OperatingHours::validate`]).
    pub fn is_open_at(&self, at: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        let local = at.with_timezone(&tz);
        let minute = local.hour() * 60 + local.minute();
        let today = local.weekday();
        let yesterday = today.pred();
        let spans = |weekday: Weekday| {
            self.day(weekday)
                .iter()
                .filter_map(|i| Some((parse_hhmm(&i.open).ok()?, parse_hhmm(&i.close).ok()?)))
        };
        let open_today = spans(today).any(|(open, close)| {
            if close > open {
                (open..close).contains(&minute)
            } else {
                minute >= open
            }
        });
        let spill_from_yesterday =
            spans(yesterday).any(|(open, close)| close < open && minute < close);
        open_today || spill_from_yesterday
    }
}

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid instant")
    }

    #[test]
    fn open_in_local_time() {
        let hours = OperatingHours::every_day("09:00", "17:00").expect("valid");
        let helsinki = chrono_tz::Europe::Helsinki;
        // 2026-11-25 is a Wednesday; Helsinki is UTC+2 in November.
        assert!(!hours.is_open_at(at(2026, 11, 25, 6, 59), helsinki));
        assert!(hours.is_open_at(at(2026, 11, 25, 7, 0), helsinki));
        assert!(hours.is_open_at(at(2026, 11, 25, 14, 59), helsinki));
        assert!(!hours.is_open_at(at(2026, 11, 25, 15, 0), helsinki));
    }

    #[test]
    fn overnight_interval_spills_into_next_day() {
        let hours = OperatingHours {
            friday: vec![Interval {
                open: "22:00".into(),
                close: "02:00".into(),
            }],
            ..OperatingHours::default()
        };
        hours.validate().expect("valid");
        let utc = chrono_tz::UTC;
        // 2026-11-27 is a Friday.
        assert!(hours.is_open_at(at(2026, 11, 27, 23, 0), utc));
        assert!(hours.is_open_at(at(2026, 11, 28, 1, 59), utc));
        assert!(!hours.is_open_at(at(2026, 11, 28, 2, 0), utc));
        assert!(!hours.is_open_at(at(2026, 11, 27, 1, 0), utc));
    }

    #[test]
    fn validation_rules() {
        assert_eq!(
            OperatingHours::every_day("9:00", "17:00")
                .expect_err("format")
                .code,
            "invalid_time"
        );
        assert_eq!(
            OperatingHours::every_day("25:00", "17:00")
                .expect_err("hour")
                .code,
            "invalid_time"
        );
        assert_eq!(
            OperatingHours::every_day("10:00", "10:00")
                .expect_err("empty")
                .code,
            "empty_interval"
        );
        let overlapping = OperatingHours {
            monday: vec![
                Interval {
                    open: "09:00".into(),
                    close: "12:00".into(),
                },
                Interval {
                    open: "11:00".into(),
                    close: "14:00".into(),
                },
            ],
            ..OperatingHours::default()
        };
        assert_eq!(
            overlapping.validate().expect_err("overlap").code,
            "overlapping_intervals"
        );
    }
}
