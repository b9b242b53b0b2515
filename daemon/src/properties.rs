//! The ZFS user properties in which the daemon keeps its state, and their value formats.
//!
//! Every property is under the `icu.hoody:` namespace. ZFS requires a `:` in a user property
//! name (`zfs_prop_user()` in `module/zcommon/zfs_prop.c`). Times are RFC 3339 in UTC with
//! milliseconds, so `zfs get` shows them readably and no time zone can shift them.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// Container id, on a container's filesystem.
pub const CONTAINER_ID: &str = "icu.hoody:container-id";
/// Project id, on a container's filesystem.
pub const PROJECT_ID: &str = "icu.hoody:project-id";
/// Unix uid of the owner, in decimal, on a container's filesystem. Absent means root.
pub const OWNER: &str = "icu.hoody:owner";
/// Creation time, on a container's filesystem and on each snapshot the daemon made.
pub const CREATED: &str = "icu.hoody:created";
/// Marker `true`, on each filesystem and snapshot the daemon made.
pub const MANAGED: &str = "icu.hoody:managed";
/// Alias, on a snapshot. Absent when the snapshot has none.
pub const ALIAS: &str = "icu.hoody:alias";
/// Expiry time, on a snapshot. Absent when the snapshot is permanent.
pub const EXPIRES: &str = "icu.hoody:expires";
/// Time of the last restore from a snapshot.
pub const LAST_USED: &str = "icu.hoody:last-used";

/// Role of a dataset of a container: `live`, `timeline`, `deleted` or `work`. Absent on a live
/// container made before roles existed.
pub const ROLE: &str = "icu.hoody:role";
/// Group id shared by snapshots made together by one group request.
pub const GROUP: &str = "icu.hoody:group";
/// Prefix of the journal entries on the internal root, one per container with an operation in
/// progress: `icu.hoody:op:<escaped container id>`.
pub const OPERATION_PREFIX: &str = "icu.hoody:op:";

pub const ROLE_LIVE: &str = "live";
pub const ROLE_TIMELINE: &str = "timeline";
pub const ROLE_DELETED: &str = "deleted";
pub const ROLE_WORK: &str = "work";

/// Value of [`MANAGED`].
pub const MANAGED_VALUE: &str = "true";

/// Formats a time as stored in properties and sent over D-Bus.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored time. Returns `None` for anything that is not RFC 3339, and for times
/// whose UTC year is not 0 to 9999, because [`format_time`] could not show them in RFC 3339
/// (`9999-12-31T23:30:00-01:00` is in the year 10000 in UTC).
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(value)
        .ok()?
        .with_timezone(&Utc);
    (0..=9999).contains(&time.year()).then_some(time)
}

/// Converts a ZFS `creation` value (whole seconds since the epoch) to a time.
pub fn time_from_epoch(seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Reads an owner uid. `None` for a value that is not a decimal uid, which grants nobody.
pub fn parse_owner(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_format_has_milliseconds_and_z() {
        let time = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap();
        assert_eq!(format_time(time), "2026-12-04T00:30:00.000Z");
    }

    #[test]
    fn time_parse_round_trips() {
        let time = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap();
        assert_eq!(parse_time(&format_time(time)), Some(time));
    }

    #[test]
    fn time_parse_rejects_garbage() {
        for value in [
            "abc",
            "-1",
            "",
            "12345678901234567890",
            "2026-13-01T00:00:00Z",
            "9999-12-31T23:30:00-01:00",
        ] {
            assert_eq!(parse_time(value), None, "{value:?} was parsed");
        }
    }

    #[test]
    fn owner_parse_takes_decimal_uids_only() {
        assert_eq!(parse_owner("2001"), Some(2001));
        assert_eq!(parse_owner("0"), Some(0));
        for value in ["", "-1", "+5", " 1", "1e3", "4294967296", "alice"] {
            assert_eq!(parse_owner(value), None, "{value:?} was parsed");
        }
    }

    #[test]
    fn time_parse_converts_offsets_to_utc() {
        let parsed = parse_time("2026-12-04T01:30:00.000+01:00").unwrap();
        assert_eq!(format_time(parsed), "2026-12-04T00:30:00.000Z");
    }
}
