//! Snapshots of containers: create (alone or as a group), list, show, delete and alias.
//!
//! Each function runs blocking ZFS calls and expects the caller to hold the lock of every
//! container it changes, so that two requests never pick the same snapshot name or alias.
//! Names and aliases are unique across a container's whole family, timelines included.

use chrono::{DateTime, Duration, Utc};
use hoody_snapd_contract::{Error, SnapshotInfo};

use std::collections::HashSet;

use crate::commit::GroupCommit;
use crate::containers::bus_error;
use crate::family::{self, Family};
use crate::index::Index;
use crate::names::{self, Layout, MAX_SNAPSHOTS_PER_SECOND};
use crate::properties::{self, ALIAS, CREATED, EXPIRES, GROUP, LAST_USED, MANAGED, MANAGED_VALUE};
use crate::zfs::{Dataset, ErrorKind, Zfs};

/// How often a create retries with the next name after ZFS reports that the name was taken
/// (by a snapshot made outside the daemon in the same second).
const NAME_RETRIES: u32 = 5;

/// A request to create snapshots of one or more containers, in one transaction.
pub struct CreateRequest<'a> {
    pub containers: &'a [String],
    pub alias: &'a str,
    pub expiry_days: u32,
    pub max_expiry_days: u32,
    pub now: DateTime<Utc>,
    /// Group id written on every snapshot, for requests that name several containers.
    pub group: Option<&'a str>,
}

/// Creates one snapshot of each named container, atomically in one transaction group that
/// [`GroupCommit`] may share with other requests, with alias, expiry, marker and group set in
/// the same transaction. Returns them in request order.
pub fn create(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    commit: &GroupCommit,
    request: &CreateRequest<'_>,
) -> Result<Vec<SnapshotInfo>, Error> {
    names::check_alias(request.alias).map_err(|e| Error::InvalidArgument(e.0))?;
    names::check_expiry_days(request.expiry_days, request.max_expiry_days)
        .map_err(|e| Error::InvalidArgument(e.0))?;
    let unique: HashSet<&String> = request.containers.iter().collect();
    if unique.len() != request.containers.len() {
        return Err(Error::InvalidArgument(
            "a container is named twice in the request; name each container once".into(),
        ));
    }

    let mut targets = Vec::with_capacity(request.containers.len());
    for id in request.containers {
        let family = index.family(zfs, layout, id)?;
        let live = family.require_live()?.dataset.name.clone();
        let existing = family.snapshots();
        if !request.alias.is_empty() {
            check_alias_free(&existing, id, request.alias, None)?;
        }
        let sequence = first_free_sequence(&existing, request.now)?;
        targets.push((id.as_str(), live, sequence));
    }

    let created = properties::format_time(request.now);
    let expires = (request.expiry_days > 0).then(|| {
        properties::format_time(request.now + Duration::days(i64::from(request.expiry_days)))
    });
    let mut props = vec![(MANAGED, MANAGED_VALUE), (CREATED, created.as_str())];
    if !request.alias.is_empty() {
        props.push((ALIAS, request.alias));
    }
    if let Some(expires) = &expires {
        props.push((EXPIRES, expires.as_str()));
    }
    if let Some(group) = request.group {
        props.push((GROUP, group));
    }

    for _ in 0..NAME_RETRIES {
        let full: Vec<String> = targets
            .iter()
            .map(|(_, live, sequence)| {
                format!("{live}@{}", names::snapshot_name(request.now, *sequence))
            })
            .collect();
        match commit.snapshot(zfs, &full, &props) {
            Ok(()) => {
                return targets
                    .iter()
                    .zip(&full)
                    .map(|((id, _, _), name)| {
                        let made = zfs.dataset(name).map_err(|error| {
                            bus_error(&format!("cannot read new snapshot {name}"), &error)
                        })?;
                        Ok(info(id, &made, false))
                    })
                    .collect();
            }
            Err(batch) if batch.error.kind == ErrorKind::AlreadyExists => {
                // A snapshot made outside the daemon took a name in this second; the batch made
                // nothing, so the taken names move on and the batch is tried again.
                let taken: HashSet<&str> =
                    batch.failed.iter().map(|(name, _)| name.as_str()).collect();
                for ((_, _, sequence), name) in targets.iter_mut().zip(&full) {
                    if taken.is_empty() || taken.contains(name.as_str()) {
                        *sequence += 1;
                    }
                }
                tracing::debug!(snapshots = %full.join(" "), "snapshot name taken, trying the next one");
            }
            Err(batch) => {
                let named: Vec<String> = batch
                    .failed
                    .iter()
                    .map(|(name, error)| format!("{name}: {error}"))
                    .collect();
                let context = if named.is_empty() {
                    format!("cannot snapshot {}", request.containers.join(", "))
                } else {
                    format!(
                        "cannot snapshot {} ({})",
                        request.containers.join(", "),
                        named.join("; ")
                    )
                };
                return Err(bus_error(&context, &batch.error));
            }
        }
    }
    Err(Error::Busy(format!(
        "cannot find free snapshot names for {} after {NAME_RETRIES} tries; retry",
        request.containers.join(", ")
    )))
}

/// Lists the snapshots of a container's family, oldest first.
pub fn list(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    container_id: &str,
) -> Result<Vec<SnapshotInfo>, Error> {
    let family = index.family(zfs, layout, container_id)?;
    let deleted = family.live.is_none();
    Ok(family
        .snapshots()
        .into_iter()
        .map(|s| info(container_id, s, deleted))
        .collect())
}

/// Returns one snapshot, named by its name or its alias.
pub fn get(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    container_id: &str,
    reference: &str,
) -> Result<SnapshotInfo, Error> {
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let family = index.family(zfs, layout, container_id)?;
    let found = family.resolve(reference)?;
    Ok(info(container_id, found, family.live.is_none()))
}

/// Deletes a snapshot, named by its name or its alias.
///
/// A snapshot that clones depend on (a copied container, or a timeline restored from it) is
/// marked for deferred destruction: it disappears from listings at once, and ZFS destroys it
/// when its last clone is gone, so the dependent datasets are never touched. A held snapshot is
/// not deleted.
pub fn delete(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    container_id: &str,
    reference: &str,
) -> Result<SnapshotInfo, Error> {
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let family = index.family(zfs, layout, container_id)?;
    let found = family.resolve(reference)?;
    // Holds and clones can change without a trace in the index, so the target is read again.
    let target = &zfs
        .dataset(&found.name)
        .map_err(|error| bus_error(&format!("cannot read snapshot {}", found.name), &error))?;
    let deleted = info(container_id, target, family.live.is_none());
    let context = format!(
        "cannot delete snapshot {} of container {container_id}",
        deleted.name
    );
    if target.holds > 0 {
        return Err(Error::Busy(format!(
            "{context}: it is pinned or held ({} holds, see `zfs holds {}`); unpin it with \
             `hoody-snap snapshots unpin` or release the holds first",
            target.holds, target.name
        )));
    }

    let names = std::slice::from_ref(&target.name);
    let result = if target.clones > 0 {
        zfs.destroy_snapshots_deferred(names)
    } else {
        zfs.destroy_snapshots(names)
    };
    if let Err(batch) = result {
        let error = batch.failed.first().map(|(_, e)| e).unwrap_or(&batch.error);
        return Err(match error.kind {
            ErrorKind::Busy => Error::Busy(format!(
                "{context}: it is held (see `zfs holds {}`) or has dependent clones",
                target.name
            )),
            _ => bus_error(&context, error),
        });
    }
    if target.clones > 0 {
        tracing::info!(snapshot = %target.name, clones = target.clones,
            "snapshot has clones; marked for deferred destruction");
    }
    index.changed(container_id);
    family::consolidate(zfs, layout, container_id);
    index.changed(container_id);
    family::collect_garbage(zfs, layout, &HashSet::new());
    Ok(deleted)
}

/// Sets or clears (with an empty alias) the alias of a snapshot.
pub fn set_alias(
    zfs: &Zfs,
    layout: &Layout,
    container_id: &str,
    reference: &str,
    alias: &str,
) -> Result<SnapshotInfo, Error> {
    names::check_alias(alias).map_err(|e| Error::InvalidArgument(e.0))?;
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let family = Family::load(zfs, layout, container_id)?;
    let target = family.resolve(reference)?;
    let context = format!("cannot change the alias of snapshot {}", target.name);
    if alias.is_empty() {
        zfs.clear_user_property(&target.name, ALIAS)
            .map_err(|error| bus_error(&context, &error))?;
    } else {
        check_alias_free(&family.snapshots(), container_id, alias, Some(&target.name))?;
        zfs.set_property(&target.name, ALIAS, alias)
            .map_err(|error| bus_error(&context, &error))?;
    }
    let changed = zfs
        .dataset(&target.name)
        .map_err(|error| bus_error(&context, &error))?;
    Ok(info(container_id, &changed, family.live.is_none()))
}

/// Sets the expiry of a snapshot to `days` days after `now`, or removes it when `days` is 0.
pub fn set_expiry(
    zfs: &Zfs,
    layout: &Layout,
    container_id: &str,
    reference: &str,
    days: u32,
    max_days: u32,
    now: DateTime<Utc>,
) -> Result<SnapshotInfo, Error> {
    names::check_expiry_days(days, max_days).map_err(|e| Error::InvalidArgument(e.0))?;
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let family = Family::load(zfs, layout, container_id)?;
    let target = family.resolve(reference)?;
    if target.user_properties.get(MANAGED).map(String::as_str) != Some(MANAGED_VALUE) {
        return Err(Error::InvalidArgument(format!(
            "snapshot {} was not made by hoody-snapd, so expiry never deletes it; set no expiry on it",
            short_name(&target.name)
        )));
    }
    let context = format!("cannot change the expiry of snapshot {}", target.name);
    if days == 0 {
        zfs.clear_user_property(&target.name, EXPIRES)
            .map_err(|error| bus_error(&context, &error))?;
    } else {
        let expires = properties::format_time(now + Duration::days(i64::from(days)));
        zfs.set_property(&target.name, EXPIRES, &expires)
            .map_err(|error| bus_error(&context, &error))?;
    }
    let changed = zfs
        .dataset(&target.name)
        .map_err(|error| bus_error(&context, &error))?;
    Ok(info(container_id, &changed, family.live.is_none()))
}

/// Pins a snapshot with a hold tagged `icu.hoody.pin`, or removes that hold.
pub fn set_pinned(
    zfs: &Zfs,
    layout: &Layout,
    container_id: &str,
    reference: &str,
    pinned: bool,
) -> Result<SnapshotInfo, Error> {
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let family = Family::load(zfs, layout, container_id)?;
    let target = family.resolve(reference)?;
    let context = format!("cannot change the pin of snapshot {}", target.name);
    let result = if pinned {
        zfs.hold(&target.name, crate::expiry::PIN_TAG)
    } else {
        zfs.release(&target.name, crate::expiry::PIN_TAG)
    };
    match result {
        Ok(()) => {}
        // Pinning a pinned snapshot, or unpinning an unpinned one, changes nothing.
        Err(error) if matches!(error.kind, ErrorKind::AlreadyExists) && pinned => {}
        Err(error)
            if matches!(error.kind, ErrorKind::NotFound) && !pinned && zfs.exists(&target.name) => {
        }
        Err(error) => return Err(bus_error(&context, &error)),
    }
    let changed = zfs
        .dataset(&target.name)
        .map_err(|error| bus_error(&context, &error))?;
    Ok(info(container_id, &changed, family.live.is_none()))
}

/// Records the time of use on a snapshot; a failure is logged, because the operation that used
/// the snapshot already succeeded.
pub fn record_use(zfs: &Zfs, snapshot: &str, now: DateTime<Utc>) {
    if let Err(error) = zfs.set_property(snapshot, LAST_USED, &properties::format_time(now)) {
        tracing::warn!(snapshot, %error, "cannot record the last use of the snapshot");
    }
}

/// Finds a snapshot by exact name first, then by alias.
pub fn resolve<'a>(
    snapshots: &[&'a Dataset],
    container_id: &str,
    reference: &str,
) -> Result<&'a Dataset, Error> {
    if let Some(found) = snapshots.iter().find(|s| short_name(&s.name) == reference) {
        return Ok(found);
    }
    let matches: Vec<&Dataset> = snapshots
        .iter()
        .copied()
        .filter(|s| s.user_properties.get(ALIAS).map(String::as_str) == Some(reference))
        .collect();
    match matches.as_slice() {
        [] => Err(Error::NotFound(format!(
            "container {container_id} has no snapshot named or aliased \"{}\"; list them with \
             `hoody-snap snapshots list --container {container_id}`",
            reference.escape_debug()
        ))),
        [one] => Ok(one),
        many => Err(Error::Ambiguous(format!(
            "alias \"{}\" is set on {} snapshots of container {container_id} ({}); use a snapshot name",
            reference.escape_debug(),
            many.len(),
            many.iter().map(|s| short_name(&s.name)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn check_alias_free(
    snapshots: &[&Dataset],
    container_id: &str,
    alias: &str,
    except: Option<&str>,
) -> Result<(), Error> {
    let taken = snapshots.iter().find(|s| {
        Some(s.name.as_str()) != except
            && s.user_properties.get(ALIAS).map(String::as_str) == Some(alias)
    });
    match taken {
        Some(other) => Err(Error::AlreadyExists(format!(
            "alias \"{}\" is already used by snapshot {} of container {container_id}; choose another \
             alias or clear that one first",
            alias.escape_debug(),
            short_name(&other.name)
        ))),
        None => Ok(()),
    }
}

/// Picks the first sequence number whose name in the second of `now` is not taken yet.
fn first_free_sequence(existing: &[&Dataset], now: DateTime<Utc>) -> Result<u32, Error> {
    let base = names::snapshot_name(now, 0);
    let used = existing
        .iter()
        .filter_map(|s| names::parse_snapshot_name(short_name(&s.name)))
        .filter(|(stamp, _)| base.ends_with(stamp))
        .map(|(_, sequence)| sequence + 1)
        .max()
        .unwrap_or(0);
    if used >= MAX_SNAPSHOTS_PER_SECOND {
        return Err(Error::Busy(format!(
            "container already has {MAX_SNAPSHOTS_PER_SECOND} snapshots in second {base}; retry in a second"
        )));
    }
    Ok(used)
}

/// Returns the part of a snapshot name after the `@`.
pub fn short_name(full: &str) -> &str {
    full.split_once('@').map_or(full, |(_, name)| name)
}

/// Builds the record that callers see from a snapshot's properties.
pub fn info(container_id: &str, snapshot: &Dataset, container_deleted: bool) -> SnapshotInfo {
    let props = &snapshot.user_properties;
    let created_at = props
        .get(CREATED)
        .and_then(|value| properties::parse_time(value))
        .unwrap_or_else(|| properties::time_from_epoch(snapshot.creation));
    let time_property = |key: &str| {
        props
            .get(key)
            .and_then(|value| properties::parse_time(value))
            .map(properties::format_time)
    };
    SnapshotInfo {
        container: container_id.to_string(),
        name: short_name(&snapshot.name).to_string(),
        alias: props.get(ALIAS).cloned(),
        created_at: properties::format_time(created_at),
        last_used_at: time_property(LAST_USED),
        expires_at: time_property(EXPIRES),
        stateful: false,
        size: snapshot.referenced,
        used: snapshot.used,
        managed: props.get(MANAGED).map(String::as_str) == Some(MANAGED_VALUE),
        group: props.get(GROUP).cloned(),
        container_deleted,
        pinned: snapshot.holds > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn snapshot(name: &str, txg: u64, alias: Option<&str>) -> Dataset {
        let mut user_properties = BTreeMap::new();
        if let Some(alias) = alias {
            user_properties.insert(ALIAS.to_string(), alias.to_string());
        }
        Dataset {
            name: format!("tank/c/c1@{name}"),
            createtxg: txg,
            user_properties,
            ..Dataset::default()
        }
    }

    #[test]
    fn resolve_prefers_exact_name() {
        let snapshots = [snapshot("a", 1, None), snapshot("b", 2, Some("a"))];
        let refs: Vec<&Dataset> = snapshots.iter().collect();
        assert_eq!(resolve(&refs, "c1", "a").unwrap().name, "tank/c/c1@a");
    }

    #[test]
    fn resolve_finds_alias() {
        let snapshots = [snapshot("snap-1", 1, Some("before"))];
        let refs: Vec<&Dataset> = snapshots.iter().collect();
        assert_eq!(
            resolve(&refs, "c1", "before").unwrap().name,
            "tank/c/c1@snap-1"
        );
    }

    #[test]
    fn resolve_reports_duplicate_alias() {
        let snapshots = [snapshot("s1", 1, Some("x")), snapshot("s2", 2, Some("x"))];
        let refs: Vec<&Dataset> = snapshots.iter().collect();
        assert!(matches!(
            resolve(&refs, "c1", "x"),
            Err(Error::Ambiguous(_))
        ));
    }

    #[test]
    fn resolve_reports_missing() {
        assert!(matches!(resolve(&[], "c1", "x"), Err(Error::NotFound(_))));
    }

    #[test]
    fn same_second_gets_next_sequence() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap();
        let existing = [
            snapshot("snap-20261204-003000", 1, None),
            snapshot("snap-20261204-003000-001", 2, None),
            snapshot("snap-20261204-002959", 3, None),
        ];
        let refs: Vec<&Dataset> = existing.iter().collect();
        assert_eq!(first_free_sequence(&refs, now).unwrap(), 2);
        assert_eq!(first_free_sequence(&refs[2..], now).unwrap(), 0);
    }

    #[test]
    fn info_of_foreign_snapshot_is_unmanaged() {
        let mut manual = snapshot("manual", 1, None);
        manual.creation = 1_796_000_000;
        let shown = info("c1", &manual, false);
        assert!(!shown.managed);
        assert_eq!(shown.name, "manual");
        assert_eq!(shown.expires_at, None);
        assert!(shown.created_at.ends_with(".000Z"));
    }

    #[test]
    fn info_ignores_garbage_expiry() {
        let mut odd = snapshot("odd", 1, None);
        odd.user_properties.insert(EXPIRES.into(), "abc".into());
        assert_eq!(info("c1", &odd, false).expires_at, None);
    }
}
