//! Expiry: which snapshots are due, the batched sweep that deletes them, and the preview.
//!
//! Only snapshots that the daemon marked as its own and whose expiry parses as an RFC 3339 time
//! are ever deleted. A pinned (held) snapshot is kept until it is unpinned. One snapshot that
//! cannot be deleted never blocks the others: it is reported and tried again later.

use chrono::{DateTime, Utc};

use hoody_snapd_contract::{Error, ExpiryPreview};

use crate::index::Index;
use crate::names::Layout;
use crate::properties::{self, EXPIRES, MANAGED, MANAGED_VALUE};
use crate::snapshots::short_name;
use crate::zfs::{Dataset, Zfs};

/// Tag of the user hold that pins a snapshot.
pub const PIN_TAG: &str = "icu.hoody.pin";

/// Outcome of expiry for one snapshot, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Due: its expiry has passed.
    Due(DateTime<Utc>),
    /// Kept until its expiry.
    NotYetDue(DateTime<Utc>),
    /// Kept: it has no expiry.
    Permanent,
    /// Kept: it has a hold (a pin, or a hold made with `zfs hold`). Carries its expiry.
    Held(DateTime<Utc>),
    /// Kept: the daemon did not make it.
    NotManaged,
    /// Kept: its expiry property is not a time.
    InvalidExpiry(String),
}

impl Verdict {
    /// Short word for the reason, as sent over D-Bus.
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Due(_) => "expired",
            Verdict::NotYetDue(_) => "not yet due",
            Verdict::Permanent => "permanent",
            Verdict::Held(_) => "pinned",
            Verdict::NotManaged => "not managed",
            Verdict::InvalidExpiry(_) => "invalid expiry",
        }
    }
}

/// Decides what expiry does with a snapshot at time `now`.
pub fn verdict(snapshot: &Dataset, now: DateTime<Utc>) -> Verdict {
    let props = &snapshot.user_properties;
    if props.get(MANAGED).map(String::as_str) != Some(MANAGED_VALUE) {
        return Verdict::NotManaged;
    }
    let Some(value) = props.get(EXPIRES) else {
        return Verdict::Permanent;
    };
    let Some(expires) = properties::parse_time(value) else {
        return Verdict::InvalidExpiry(value.clone());
    };
    if snapshot.holds > 0 {
        return Verdict::Held(expires);
    }
    if expires <= now {
        Verdict::Due(expires)
    } else {
        Verdict::NotYetDue(expires)
    }
}

/// A snapshot seen by a scan, with the container it belongs to.
#[derive(Clone, Debug)]
pub struct Seen {
    pub container: String,
    pub snapshot: Dataset,
}

/// Reads every snapshot of every container family, through the index: live containers and,
/// below the internal root, timelines and deleted containers. Snapshots marked for deferred
/// destruction are already deleted from the user's view and are skipped.
///
/// The index does not notice a hold released by hand, so a snapshot that it shows as held and
/// expired at `now` is read again from ZFS.
pub fn scan(zfs: &Zfs, layout: &Layout, index: &Index, now: DateTime<Utc>) -> Vec<Seen> {
    let ids = match index.ids(zfs, layout) {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(error = %error.message(), "expiry cannot list containers");
            return Vec::new();
        }
    };
    let mut seen = Vec::new();
    for id in ids {
        let family = match index.family(zfs, layout, &id) {
            Ok(family) => family,
            Err(Error::NotFound(_)) => continue,
            Err(error) => {
                tracing::warn!(container = %id, error = %error.message(), "expiry cannot list snapshots");
                continue;
            }
        };
        for snapshot in family.snapshots() {
            let snapshot = match verdict(snapshot, now) {
                Verdict::Held(at) if at <= now => match zfs.dataset(&snapshot.name) {
                    Ok(fresh) => fresh,
                    Err(error) => {
                        tracing::warn!(snapshot = %snapshot.name, %error, "expiry cannot read held snapshot");
                        continue;
                    }
                },
                _ => snapshot.clone(),
            };
            seen.push(Seen {
                container: id.clone(),
                snapshot,
            });
        }
    }
    seen
}

/// Lists what a sweep at `now` would do with each snapshot: the deletions first, soonest
/// first, then the kept ones.
pub fn preview(seen: &[Seen], now: DateTime<Utc>) -> Vec<ExpiryPreview> {
    let mut entries: Vec<(u8, Option<DateTime<Utc>>, ExpiryPreview)> = seen
        .iter()
        .map(|item| {
            let verdict = verdict(&item.snapshot, now);
            let props = &item.snapshot.user_properties;
            let (rank, at) = match &verdict {
                Verdict::Due(at) => (0, Some(*at)),
                Verdict::NotYetDue(at) => (1, Some(*at)),
                Verdict::Held(at) => (2, Some(*at)),
                _ => (3, None),
            };
            let entry = ExpiryPreview {
                container: item.container.clone(),
                name: short_name(&item.snapshot.name).to_string(),
                alias: props.get(crate::properties::ALIAS).cloned(),
                expires_at: props.get(EXPIRES).cloned(),
                action: if rank == 0 { "delete" } else { "keep" }.into(),
                reason: verdict.reason().into(),
            };
            (rank, at, entry)
        })
        .collect();
    entries.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| a.2.name.cmp(&b.2.name))
    });
    entries.into_iter().map(|(_, _, entry)| entry).collect()
}

/// One snapshot that a sweep deleted.
#[derive(Clone, Debug)]
pub struct Deleted {
    pub container: String,
    pub name: String,
    pub expires: DateTime<Utc>,
}

/// One due snapshot that a sweep could not delete.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub container: String,
    pub name: String,
    pub reason: String,
}

/// Deletes the due snapshots among `due`, in as few `lzc_destroy_snaps` calls as it can.
///
/// A batch is all or nothing in ZFS, so when one snapshot of a batch fails, it is taken out and
/// the rest is tried again. Snapshots that clones depend on are deleted with deferred
/// destruction, in a batch of their own.
pub fn delete_due(zfs: &Zfs, due: Vec<(Seen, DateTime<Utc>)>) -> (Vec<Deleted>, Vec<Skipped>) {
    let (deferred, plain): (Vec<_>, Vec<_>) = due
        .into_iter()
        .partition(|(seen, _)| seen.snapshot.clones > 0);
    let mut deleted = Vec::new();
    let mut skipped = Vec::new();
    for (batch, defer) in [(plain, false), (deferred, true)] {
        let (done, failed) = destroy_batch(zfs, batch, defer);
        deleted.extend(done);
        skipped.extend(failed);
    }
    (deleted, skipped)
}

fn destroy_batch(
    zfs: &Zfs,
    mut batch: Vec<(Seen, DateTime<Utc>)>,
    defer: bool,
) -> (Vec<Deleted>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    while !batch.is_empty() {
        let names: Vec<String> = batch
            .iter()
            .map(|(seen, _)| seen.snapshot.name.clone())
            .collect();
        let result = if defer {
            zfs.destroy_snapshots_deferred(&names)
        } else {
            zfs.destroy_snapshots(&names)
        };
        let failure = match result {
            Ok(()) => break,
            Err(failure) => failure,
        };
        // Without a named culprit, the batch is split into single deletes so each one's own
        // error is known.
        let culprits: Vec<(String, String)> = if failure.failed.is_empty() {
            if batch.len() == 1 {
                vec![(names[0].clone(), failure.error.to_string())]
            } else {
                let mut singles = Vec::new();
                let mut failed = Vec::new();
                for item in std::mem::take(&mut batch) {
                    let (done, mut errors) = destroy_batch(zfs, vec![item], defer);
                    singles.extend(done);
                    failed.append(&mut errors);
                }
                skipped.extend(failed);
                return (singles, skipped);
            }
        } else {
            failure
                .failed
                .iter()
                .map(|(name, error)| (name.clone(), error.to_string()))
                .collect()
        };
        batch.retain(|(seen, _)| {
            let Some((_, reason)) = culprits
                .iter()
                .find(|(name, _)| *name == seen.snapshot.name)
            else {
                return true;
            };
            skipped.push(Skipped {
                container: seen.container.clone(),
                name: short_name(&seen.snapshot.name).to_string(),
                reason: reason.clone(),
            });
            false
        });
    }
    let deleted = batch
        .into_iter()
        .map(|(seen, expires)| Deleted {
            container: seen.container,
            name: short_name(&seen.snapshot.name).to_string(),
            expires,
        })
        .collect();
    (deleted, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn managed(expires: Option<&str>) -> Dataset {
        let mut snapshot = Dataset {
            name: "tank/c/a@snap-1".into(),
            ..Dataset::default()
        };
        snapshot
            .user_properties
            .insert(MANAGED.into(), MANAGED_VALUE.into());
        if let Some(value) = expires {
            snapshot
                .user_properties
                .insert(EXPIRES.into(), value.into());
        }
        snapshot
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
    }

    #[test]
    fn past_expiry_is_due() {
        let verdict = verdict(&managed(Some("2026-12-04T11:59:59.999Z")), now());
        assert!(matches!(verdict, Verdict::Due(_)), "{verdict:?}");
    }

    #[test]
    fn expiry_exactly_now_is_due() {
        assert!(matches!(
            verdict(&managed(Some("2026-12-04T12:00:00.000Z")), now()),
            Verdict::Due(_)
        ));
    }

    #[test]
    fn future_expiry_is_kept() {
        let verdict = verdict(&managed(Some("2026-12-04T12:00:00.001Z")), now());
        assert!(matches!(verdict, Verdict::NotYetDue(_)), "{verdict:?}");
    }

    #[test]
    fn no_expiry_is_permanent() {
        assert_eq!(verdict(&managed(None), now()), Verdict::Permanent);
    }

    #[test]
    fn held_snapshot_is_kept() {
        let mut snapshot = managed(Some("2020-01-01T00:00:00.000Z"));
        snapshot.holds = 1;
        assert!(matches!(verdict(&snapshot, now()), Verdict::Held(_)));
    }

    #[test]
    fn unmarked_snapshot_is_never_due() {
        let mut snapshot = managed(Some("2020-01-01T00:00:00.000Z"));
        snapshot.user_properties.remove(MANAGED);
        assert_eq!(verdict(&snapshot, now()), Verdict::NotManaged);
    }

    #[test]
    fn garbage_expiry_is_kept() {
        for value in [
            "abc",
            "-1",
            "",
            "12345678901234567890",
            "2026-02-30T00:00:00Z",
        ] {
            assert_eq!(
                verdict(&managed(Some(value)), now()),
                Verdict::InvalidExpiry(value.to_string()),
                "{value:?}"
            );
        }
    }
}
