//! Invariants of the validators and parsers, checked on arbitrary bytes.
//!
//! Each function takes any input and panics only when an invariant breaks. The cargo-fuzz
//! targets in `fuzz/` call them with coverage-guided input (`tests/fuzz.sh`), and the unit test
//! at the end calls them with generated input on every test run, so the invariants are checked
//! in CI without a fuzzer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::journal::Record;
use crate::names::{self, Layout, MAX_ALIAS_CHARS, MAX_ID_CHARS};
use crate::properties::{self, ALIAS, EXPIRES, MANAGED, MANAGED_VALUE};
use crate::zfs::{Dataset, MAX_NAME_LEN};

/// Characters that ZFS accepts in a name component (`valid_char()` in
/// `module/zcommon/zfs_namecheck.c`), less the space, which the daemon never makes.
fn zfs_component_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Splits the input in two strings at the first NUL byte, for checks that need a pair.
fn two_strings(data: &[u8]) -> (String, String) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let first = String::from_utf8_lossy(&data[..split]).into_owned();
    let second = String::from_utf8_lossy(data.get(split + 1..).unwrap_or_default()).into_owned();
    (first, second)
}

/// Checks container ids, their dataset names, aliases, snapshot names and quoted values.
pub fn names(data: &[u8]) {
    let (text, other) = two_strings(data);
    let layout = Layout {
        root: "tank/hoody/containers".into(),
        internal: "tank/hoody/internal".into(),
    };

    if names::check_id("container", &text).is_ok() {
        assert!(!text.is_empty());
        assert!(text.chars().count() <= MAX_ID_CHARS);
        let component = names::encode_component(&text);
        assert!(component.chars().all(zfs_component_char), "{component:?}");
        if let Ok(dataset) = layout.container(&text) {
            assert_eq!(dataset, format!("{}/{component}", layout.root));
            assert!(dataset.len() + names::SNAPSHOT_SUFFIX_LEN <= MAX_NAME_LEN);
        }
        // Two different ids never share a dataset.
        if names::check_id("container", &other).is_ok() && other != text {
            assert_ne!(component, names::encode_component(&other));
        }
    }

    if names::check_alias(&text).is_ok() {
        assert!(text.chars().count() <= MAX_ALIAS_CHARS);
        assert!(!text.chars().any(char::is_control));
        assert!(names::parse_snapshot_name(&text).is_none());
    }
    if let Some((stamp, sequence)) = names::parse_snapshot_name(&text) {
        assert_eq!(stamp.len(), 15);
        assert!(text.starts_with("snap-"));
        assert!(sequence < 1000);
    }
    let _ = names::check_snapshot_reference(&text);

    let quoted = names::shown(&text);
    assert!(quoted.chars().count() <= 64 * 10 + 1, "{quoted:?}");
    assert!(!quoted.chars().any(char::is_control), "{quoted:?}");
}

/// Checks stored times, owners, and the snapshot records and expiry verdicts built from
/// properties.
pub fn properties(data: &[u8]) {
    let (first, second) = two_strings(data);

    if let Some(time) = properties::parse_time(&first) {
        let formatted = properties::format_time(time);
        let again = properties::parse_time(&formatted).expect("a formatted time parses");
        assert_eq!(formatted, properties::format_time(again));
        assert!(time.timestamp_subsec_millis() == again.timestamp_subsec_millis());
    }
    if let Some(uid) = properties::parse_owner(&first) {
        assert_eq!(properties::parse_owner(&uid.to_string()), Some(uid));
    }

    let mut user_properties = BTreeMap::new();
    user_properties.insert(ALIAS.to_string(), first.clone());
    user_properties.insert(EXPIRES.to_string(), second.clone());
    user_properties.insert(MANAGED.to_string(), MANAGED_VALUE.to_string());
    let snapshot = Dataset {
        name: "tank/hoody/containers/c1@snap-20261204-000000".into(),
        creation: u64::from_le_bytes(
            data.get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        ),
        user_properties,
        ..Dataset::default()
    };
    let info = crate::snapshots::info("c1", &snapshot, false);
    // Listing gives the alias back byte for byte, whatever is stored.
    assert_eq!(info.alias.as_deref(), Some(first.as_str()));
    if let Some(expires) = &info.expires_at {
        assert!(properties::parse_time(expires).is_some(), "{expires:?}");
    }
    let now: DateTime<Utc> = DateTime::UNIX_EPOCH;
    let _ = crate::expiry::verdict(&snapshot, now);
}

/// Checks the configuration file parser.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::parse(&text) {
        assert!(!config.zfs.root.is_empty());
        assert_ne!(config.zfs.root, config.zfs.internal_root);
        assert!(config.snapshots.max_expiry_days <= names::MAX_EXPIRY_DAYS);
    }
}

/// Checks journal entries, as read back from the internal root.
pub fn journal(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(record) = serde_json::from_str::<Record>(&text) {
        let written = serde_json::to_string(&record).expect("a record serializes");
        let again: Record = serde_json::from_str(&written).expect("a written record parses");
        assert_eq!(again, record);
        let _ = record.operation.datasets();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fragments that the validators and parsers treat specially.
    const FRAGMENTS: &[&str] = &[
        "",
        "a",
        "Z9",
        "-",
        "_",
        ".",
        ":",
        "@",
        "%",
        "#",
        "/",
        " ",
        "\t",
        "\n",
        "\r",
        "\u{0}",
        "\u{7f}",
        "\u{85}",
        "\u{2028}",
        "é",
        "ß",
        "😀",
        "\u{fffd}",
        "snap-",
        "20261204",
        "-000000",
        "-001",
        "T",
        "Z",
        "+01:00",
        "-23:59",
        "2026-12-04T00:30:00.000Z",
        "9999-12-31T23:59:59",
        "0000-01-01T00:00:00",
        "12345678901234567890",
        "icu.hoody:",
        "[zfs]",
        "root = ",
        "\"tank/a\"",
        "internal_root = ",
        "[snapshots]\n",
        "max_expiry_days = ",
        "36500",
        "0",
        "{\"id\":",
        "\"op\":\"copy\"",
        "\"source\":\"a\"",
        "\"work\":\"b\"",
        "\"target\":\"c\"",
        "}",
        "\"restore\"",
        "\"delete-container\"",
    ];

    /// A small xorshift generator, so that every run checks the same inputs.
    struct Generator(u64);

    impl Generator {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        /// Joins random fragments, random bytes and, now and then, a long run of one fragment.
        fn input(&mut self) -> Vec<u8> {
            let mut data = Vec::new();
            for _ in 0..self.below(12) {
                match self.below(10) {
                    0 => data.extend((0..self.below(8)).map(|_| self.next() as u8)),
                    1 => {
                        let fragment = FRAGMENTS[self.below(FRAGMENTS.len())];
                        data.extend(fragment.repeat(self.below(300)).bytes());
                    }
                    _ => data.extend(FRAGMENTS[self.below(FRAGMENTS.len())].bytes()),
                }
            }
            data
        }
    }

    #[test]
    fn generated_inputs_keep_every_invariant() {
        let mut generator = Generator(0x5eed_1234_abcd_ef01);
        for _ in 0..20_000 {
            let data = generator.input();
            names(&data);
            properties(&data);
            config(&data);
            journal(&data);
        }
    }

    #[test]
    fn known_edge_cases_keep_every_invariant() {
        for data in [
            &b"caf\xc3\xa9"[..],
            b"a\0a",
            b"snap-20261204-000000-999",
            b"9999-12-31T23:59:59-23:59",
            b"0000-01-01T00:00:00+23:59",
            b"x\tlocal\npool/c1\ticu.hoody:expires\t0",
            b"{\"id\":\"c\",\"op\":\"copy\",\"source\":\"a\",\"work\":\"b\",\"target\":\"c\"}",
        ] {
            names(data);
            properties(data);
            config(data);
            journal(data);
        }
    }
}
