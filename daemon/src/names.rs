//! Validation of every caller-given string before it reaches ZFS, and the mapping from container
//! ids to dataset names.
//!
//! ZFS accepts only ASCII letters, digits and `-_.: ` in a name component (`valid_char()` in
//! `module/zcommon/zfs_namecheck.c`), and at most 255 bytes in a whole snapshot name
//! (`ZFS_MAX_DATASET_NAME_LEN`, 256 with the NUL, in `include/sys/fs/zfs.h`). Container ids are
//! Unicode, so the dataset component is an escaped form of the id, and the id itself is kept in
//! a user property of the dataset.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::zfs::MAX_NAME_LEN;

/// Maximum length of a container or project id, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// Maximum length of an alias, in characters (Unicode scalar values), not bytes.
pub const MAX_ALIAS_CHARS: usize = 100;

/// Maximum expiry in days that any configuration may allow: about 100 years, which keeps every
/// expiry time far inside the range of the timestamp types.
pub const MAX_EXPIRY_DAYS: u32 = 36_500;

/// Length of the longest snapshot suffix this daemon makes: `@snap-YYYYMMDD-HHMMSS-NNN`.
pub const SNAPSHOT_SUFFIX_LEN: usize = "@snap-20000101-000000-000".len();

/// Maximum number of snapshots one container can get in one second of the clock.
pub const MAX_SNAPSHOTS_PER_SECOND: u32 = 1000;

/// A rejected input, with a message that names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// Checks a container or project id.
///
/// An id is 1 to 100 characters: Unicode letters and digits, `-`, `_` and `.`, starting with a
/// letter or digit. Spaces, control characters and the ZFS separators `/`, `@`, `#` and `%` are
/// rejected, so an id can never name another dataset or a snapshot.
pub fn check_id(kind: &str, id: &str) -> Result<(), InvalidName> {
    let shown = shown(id);
    if id.is_empty() {
        return Err(InvalidName(format!(
            "{kind} id is empty; pass a non-empty id"
        )));
    }
    let length = id.chars().count();
    if length > MAX_ID_CHARS {
        return Err(InvalidName(format!(
            "{kind} id \"{shown}\" is {length} characters long; the maximum is {MAX_ID_CHARS}"
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(InvalidName(format!(
            "{kind} id \"{shown}\" contains {}; ids may contain only letters, digits, '-', '_' and '.'",
            describe_char(bad)
        )));
    }
    if !id.starts_with(char::is_alphanumeric) {
        return Err(InvalidName(format!(
            "{kind} id \"{shown}\" must start with a letter or digit"
        )));
    }
    Ok(())
}

/// Encodes a valid container id as a ZFS name component.
///
/// ASCII letters, digits, `-`, `_` and `.` stay as they are. Every other character becomes the
/// bytes of its UTF-8 form, each as `:` and two lowercase hex digits, so `café` becomes
/// `caf:c3:a9`. `:` never occurs in an id, so the encoding is one-to-one.
pub fn encode_component(id: &str) -> String {
    let mut encoded = String::with_capacity(id.len());
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            encoded.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                let _ = write!(encoded, ":{byte:02x}");
            }
        }
    }
    encoded
}

/// Kind of a dataset that the daemon keeps below the internal root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalKind {
    /// A superseded timeline of a restored container.
    Timeline,
    /// A deleted container that still has snapshots.
    Deleted,
    /// The dataset of an operation in progress.
    Work,
}

impl InternalKind {
    fn letter(self) -> char {
        match self {
            InternalKind::Timeline => 't',
            InternalKind::Deleted => 'd',
            InternalKind::Work => 'w',
        }
    }
}

/// Length of the suffix of an internal dataset name: `.`, a kind letter and 13 digits of
/// milliseconds since the epoch (enough until the year 2286).
const INTERNAL_SUFFIX_LEN: usize = ".t0000000000000".len();

/// Parent filesystems of the containers and of the daemon's internal datasets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Parent of the container filesystems.
    pub root: String,
    /// Parent, never mounted, of timelines, deleted containers and work datasets.
    pub internal: String,
}

impl Layout {
    /// Returns the dataset name of a container, after checking that the id is valid and that
    /// every snapshot name the daemon may give it, here or below the internal root, fits within
    /// the ZFS name limit.
    pub fn container(&self, id: &str) -> Result<String, InvalidName> {
        check_id("container", id)?;
        let component = encode_component(id);
        let dataset = format!("{}/{component}", self.root);
        let longest = (dataset.len() + SNAPSHOT_SUFFIX_LEN).max(
            self.internal.len() + 1 + component.len() + INTERNAL_SUFFIX_LEN + SNAPSHOT_SUFFIX_LEN,
        );
        if longest > MAX_NAME_LEN {
            return Err(InvalidName(format!(
                "container id \"{}\" is too long: the names of its snapshots would be up to \
                 {longest} bytes, and ZFS allows {MAX_NAME_LEN}; use a shorter id",
                shown(id)
            )));
        }
        Ok(dataset)
    }

    /// Returns the name of a new internal dataset of a container, made unique by the time.
    pub fn internal_dataset(&self, id: &str, kind: InternalKind, time: DateTime<Utc>) -> String {
        format!(
            "{}/{}.{}{:013}",
            self.internal,
            encode_component(id),
            kind.letter(),
            time.timestamp_millis().max(0)
        )
    }
}

/// Checks an alias. An empty alias means "no alias" and is valid.
///
/// An alias is at most 100 characters. Control characters (tab, newline and the rest of Unicode
/// category Cc) and the Unicode line and paragraph separators are rejected, so an alias always
/// fits on one line of a listing. An alias shaped like a snapshot name is rejected too, because
/// restore and delete accept either, and the two must never be confused.
///
/// ZFS itself takes a user property value of up to 8191 bytes (`ZAP_MAXVALUELEN` less the NUL,
/// checked in `dsl_props_set_check()` in `module/zfs/dsl_prop.c`); 100 characters are at most
/// 400 bytes of UTF-8, far inside it.
pub fn check_alias(alias: &str) -> Result<(), InvalidName> {
    let shown = shown(alias);
    let length = alias.chars().count();
    if length > MAX_ALIAS_CHARS {
        return Err(InvalidName(format!(
            "alias \"{shown}\" is {length} characters long; the maximum is {MAX_ALIAS_CHARS}"
        )));
    }
    if let Some(bad) = alias
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(InvalidName(format!(
            "alias \"{shown}\" contains {}; aliases may not contain control characters or line breaks",
            describe_char(bad)
        )));
    }
    if parse_snapshot_name(alias).is_some() {
        return Err(InvalidName(format!(
            "alias \"{shown}\" has the form of a snapshot name; choose an alias that does not \
             start with snap-YYYYMMDD-HHMMSS"
        )));
    }
    Ok(())
}

/// Checks a snapshot reference (a name or an alias) given to restore, delete or show.
///
/// A reference never reaches ZFS as given: it is only compared with the names and aliases of
/// the container's snapshots. The length bound keeps a megabyte argument out of the lookup and
/// out of messages.
pub fn check_snapshot_reference(reference: &str) -> Result<(), InvalidName> {
    if reference.is_empty() {
        return Err(InvalidName(
            "snapshot is empty; pass a snapshot name or alias".into(),
        ));
    }
    if reference.len() > MAX_NAME_LEN {
        return Err(InvalidName(format!(
            "snapshot \"{}\" is {} bytes long; no snapshot name or alias is longer than {MAX_NAME_LEN}",
            shown(reference),
            reference.len()
        )));
    }
    Ok(())
}

/// Formats the snapshot name for a creation time and a same-second sequence number.
///
/// The first snapshot in a second gets no suffix; later ones get `-001`, `-002` and so on. The
/// fixed width keeps names sorted by creation order when compared as strings.
pub fn snapshot_name(time: DateTime<Utc>, sequence: u32) -> String {
    let base = time.format("snap-%Y%m%d-%H%M%S").to_string();
    if sequence == 0 {
        base
    } else {
        format!("{base}-{sequence:03}")
    }
}

/// Parses a name made by [`snapshot_name`] into its second and sequence number.
pub fn parse_snapshot_name(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix("snap-")?;
    let (stamp, sequence) = match rest.len() {
        15 => (rest, 0),
        19 if rest.as_bytes()[15] == b'-' => {
            let digits = &rest[16..];
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&rest[..15], digits.parse().ok()?)
        }
        _ => return None,
    };
    let bytes = stamp.as_bytes();
    let digits_ok = bytes.iter().enumerate().all(|(i, b)| {
        if i == 8 {
            *b == b'-'
        } else {
            b.is_ascii_digit()
        }
    });
    digits_ok.then_some((stamp, sequence))
}

/// Checks an expiry in days against the configured maximum. Zero means permanent.
///
/// The configured maximum is itself at most [`MAX_EXPIRY_DAYS`] (checked when the
/// configuration is read), so the expiry time never leaves the range of the timestamp types.
pub fn check_expiry_days(days: u32, max_days: u32) -> Result<(), InvalidName> {
    if days > max_days {
        return Err(InvalidName(format!(
            "expiry of {days} days is more than the maximum of {max_days} days; pass 0 for a \
             permanent snapshot or a smaller number"
        )));
    }
    Ok(())
}

/// Quotes a caller-given value for a message: escaped, and cut after 64 characters, so that a
/// megabyte argument cannot flood a reply or the journal.
pub fn shown(value: &str) -> String {
    const MAX_SHOWN_CHARS: usize = 64;
    let mut text: String = value
        .chars()
        .take(MAX_SHOWN_CHARS)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().nth(MAX_SHOWN_CHARS).is_some() {
        text.push('…');
    }
    text
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the character U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ROOT: &str = "tank/hoody/containers";

    #[test]
    fn id_plain_ascii_is_valid() {
        assert!(check_id("container", "web-1_a.b").is_ok());
    }

    #[test]
    fn id_unicode_letters_are_valid() {
        assert!(check_id("container", "café").is_ok());
        assert!(check_id("container", "контейнер").is_ok());
    }

    #[test]
    fn id_with_separators_is_rejected() {
        for id in [
            "a@b", "a%b", "a/b", "a#b", "a b", "a\tb", "a\nb", "a\u{0}b", "a:b",
        ] {
            assert!(check_id("container", id).is_err(), "{id:?} was accepted");
        }
    }

    #[test]
    fn id_empty_or_dot_is_rejected() {
        assert!(check_id("container", "").is_err());
        assert!(check_id("container", ".").is_err());
        assert!(check_id("container", "..").is_err());
        assert!(check_id("container", "-a").is_err());
    }

    #[test]
    fn id_length_counts_characters() {
        assert!(check_id("container", &"é".repeat(100)).is_ok());
        assert!(check_id("container", &"a".repeat(101)).is_err());
    }

    #[test]
    fn encoding_escapes_non_ascii() {
        assert_eq!(encode_component("café"), "caf:c3:a9");
        assert_eq!(encode_component("web-1"), "web-1");
    }

    #[test]
    fn encoding_is_injective_on_similar_ids() {
        assert_ne!(encode_component("ab"), encode_component("a:62"));
        assert_ne!(encode_component("é"), encode_component("e"));
    }

    fn layout() -> Layout {
        Layout {
            root: ROOT.into(),
            internal: "tank/hoody/internal".into(),
        }
    }

    #[test]
    fn dataset_name_too_long_is_rejected() {
        let error = layout().container(&"é".repeat(60)).unwrap_err();
        assert!(error.0.contains("too long"), "{}", error.0);
    }

    #[test]
    fn dataset_name_at_limit_is_accepted() {
        let layout = layout();
        let room =
            MAX_NAME_LEN - layout.internal.len() - 1 - INTERNAL_SUFFIX_LEN - SNAPSHOT_SUFFIX_LEN;
        let id = "a".repeat(room.min(MAX_ID_CHARS));
        let dataset = layout.container(&id).unwrap();
        assert!(dataset.len() + SNAPSHOT_SUFFIX_LEN <= MAX_NAME_LEN);
        let time = Utc.with_ymd_and_hms(2286, 1, 1, 0, 0, 0).unwrap();
        let internal = layout.internal_dataset(&id, InternalKind::Timeline, time);
        assert!(
            internal.len() + SNAPSHOT_SUFFIX_LEN <= MAX_NAME_LEN,
            "{internal}"
        );
    }

    #[test]
    fn internal_names_carry_kind_and_time() {
        let time = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap();
        assert_eq!(
            layout().internal_dataset("café", InternalKind::Deleted, time),
            "tank/hoody/internal/caf:c3:a9.d1796344200000"
        );
    }

    #[test]
    fn alias_rules() {
        assert!(check_alias("").is_ok());
        assert!(check_alias("before ai changes 🦀").is_ok());
        assert!(check_alias(&"🦀".repeat(100)).is_ok());
        assert!(check_alias(&"a".repeat(101)).is_err());
        assert!(check_alias("a\tb").is_err());
        assert!(check_alias("a\nb").is_err());
        assert!(check_alias("a\u{2028}b").is_err());
        assert!(check_alias("snap-20261204-003000").is_err());
        assert!(check_alias("snap-20261204-003000-001").is_err());
        assert!(check_alias("snap-later").is_ok());
    }

    #[test]
    fn snapshot_names_sort_by_sequence() {
        let time = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap();
        let next = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 1).unwrap();
        let mut names = vec![
            snapshot_name(next, 0),
            snapshot_name(time, 10),
            snapshot_name(time, 2),
            snapshot_name(time, 0),
        ];
        names.sort();
        assert_eq!(
            names,
            [
                "snap-20261204-003000",
                "snap-20261204-003000-002",
                "snap-20261204-003000-010",
                "snap-20261204-003001"
            ]
        );
    }

    #[test]
    fn snapshot_name_parse_round_trips() {
        assert_eq!(
            parse_snapshot_name("snap-20261204-003000"),
            Some(("20261204-003000", 0))
        );
        assert_eq!(
            parse_snapshot_name("snap-20261204-003000-042"),
            Some(("20261204-003000", 42))
        );
        assert_eq!(parse_snapshot_name("snap-2026120-003000"), None);
        assert_eq!(parse_snapshot_name("snap-20261204-003000-4x2"), None);
        assert_eq!(parse_snapshot_name("manual"), None);
    }

    #[test]
    fn expiry_bounds() {
        assert!(check_expiry_days(0, 3650).is_ok());
        assert!(check_expiry_days(3650, 3650).is_ok());
        assert!(check_expiry_days(3651, 3650).is_err());
    }

    #[test]
    fn shown_values_are_cut_and_escaped() {
        assert_eq!(shown("a\tb"), "a\\tb");
        let long = shown(&"x".repeat(1_000_000));
        assert_eq!(long.chars().count(), 65);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn reference_rules() {
        assert!(check_snapshot_reference("").is_err());
        assert!(check_snapshot_reference(&"x".repeat(1_000_000)).is_err());
        assert!(check_snapshot_reference("snap-20261204-003000").is_ok());
    }
}
