//! Snapshots of containers: create, list, restore, delete and alias.
//!
//! Each function runs blocking ZFS calls and expects the caller to hold the container's lock,
//! so that two requests never pick the same snapshot name or alias.

use chrono::{DateTime, Duration, Utc};
use hoody_snapd_contract::{Error, SnapshotInfo};

use crate::containers::{bus_error, open_container};
use crate::names::{self, MAX_SNAPSHOTS_PER_SECOND};
use crate::properties::{self, ALIAS, CREATED, EXPIRES, LAST_USED, MANAGED, MANAGED_VALUE};
use crate::zfs::{Dataset, ErrorKind, Zfs};

/// How often a create retries with the next name after ZFS reports that the name was taken
/// (by a snapshot made outside the daemon in the same second).
const NAME_RETRIES: u32 = 5;

/// A request to create one snapshot.
pub struct CreateRequest<'a> {
    pub container: &'a str,
    pub alias: &'a str,
    pub expiry_days: u32,
    pub max_expiry_days: u32,
    pub now: DateTime<Utc>,
}

/// Creates a snapshot with its alias, expiry and marker set in the same transaction.
pub fn create(zfs: &Zfs, root: &str, request: &CreateRequest<'_>) -> Result<SnapshotInfo, Error> {
    names::check_alias(request.alias).map_err(|e| Error::InvalidArgument(e.0))?;
    names::check_expiry_days(request.expiry_days, request.max_expiry_days)
        .map_err(|e| Error::InvalidArgument(e.0))?;
    let container = open_container(zfs, root, request.container)?;
    let existing = read_snapshots(zfs, &container, request.container)?;
    if !request.alias.is_empty() {
        check_alias_free(&existing, request.container, request.alias, None)?;
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

    let mut sequence = first_free_sequence(&existing, request.now)?;
    for _ in 0..NAME_RETRIES {
        let name = names::snapshot_name(request.now, sequence);
        let full = format!("{}@{name}", container.name);
        match zfs.snapshot(std::slice::from_ref(&full), &props) {
            Ok(()) => {
                let made = zfs.dataset(&full).map_err(|error| {
                    bus_error(&format!("cannot read new snapshot {full}"), &error)
                })?;
                return Ok(info(request.container, &made));
            }
            Err(batch) if batch.error.kind == ErrorKind::AlreadyExists => {
                tracing::debug!(snapshot = %full, "snapshot name taken, trying the next one");
                sequence += 1;
            }
            Err(batch) => {
                let context = format!("cannot snapshot container {}", request.container);
                return Err(bus_error(&context, &batch.error));
            }
        }
    }
    Err(Error::Busy(format!(
        "cannot find a free snapshot name for container {} after {NAME_RETRIES} tries; retry",
        request.container
    )))
}

/// Lists the snapshots of a container, oldest first.
pub fn list(zfs: &Zfs, root: &str, container_id: &str) -> Result<Vec<SnapshotInfo>, Error> {
    let container = open_container(zfs, root, container_id)?;
    let snapshots = read_snapshots(zfs, &container, container_id)?;
    Ok(snapshots.iter().map(|s| info(container_id, s)).collect())
}

/// Returns one snapshot, named by its name or its alias.
pub fn get(
    zfs: &Zfs,
    root: &str,
    container_id: &str,
    reference: &str,
) -> Result<SnapshotInfo, Error> {
    let (_, snapshots) = open_with_snapshots(zfs, root, container_id, reference)?;
    let found = resolve(&snapshots, container_id, reference)?;
    Ok(info(container_id, found))
}

/// Restores a container to its newest snapshot and records the time of use.
pub fn restore(
    zfs: &Zfs,
    root: &str,
    container_id: &str,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<SnapshotInfo, Error> {
    let (container, snapshots) = open_with_snapshots(zfs, root, container_id, reference)?;
    let target = resolve(&snapshots, container_id, reference)?;
    let newest = snapshots
        .last()
        .expect("resolve found a snapshot, so the list is not empty");
    if newest.name != target.name {
        let newer = snapshots
            .iter()
            .filter(|s| s.createtxg > target.createtxg)
            .count();
        return Err(Error::NotLatest(format!(
            "snapshot {} is not the newest snapshot of container {container_id} (the newest is {}); \
             a rollback would destroy the {newer} newer snapshots, so this version restores only \
             the newest snapshot",
            short_name(&target.name),
            short_name(&newest.name)
        )));
    }

    zfs.rollback_to(&container.name, &target.name)
        .map_err(|error| bus_error(&format!("cannot restore container {container_id}"), &error))?;
    let used = properties::format_time(now);
    if let Err(error) = zfs.set_user_property(&target.name, LAST_USED, &used) {
        tracing::warn!(snapshot = %target.name, %error, "restored, but cannot record last use");
    }

    let restored = zfs
        .dataset(&target.name)
        .map_err(|error| bus_error(&format!("cannot read snapshot {}", target.name), &error))?;
    Ok(info(container_id, &restored))
}

/// Deletes a snapshot, named by its name or its alias.
pub fn delete(
    zfs: &Zfs,
    root: &str,
    container_id: &str,
    reference: &str,
) -> Result<SnapshotInfo, Error> {
    let (_, snapshots) = open_with_snapshots(zfs, root, container_id, reference)?;
    let target = resolve(&snapshots, container_id, reference)?;
    let deleted = info(container_id, target);
    if let Err(batch) = zfs.destroy_snapshots(std::slice::from_ref(&target.name)) {
        let error = batch.failed.first().map(|(_, e)| e).unwrap_or(&batch.error);
        let context = format!(
            "cannot delete snapshot {} of container {container_id}",
            deleted.name
        );
        return Err(match error.kind {
            ErrorKind::Busy => Error::Busy(format!(
                "{context}: it is held (see `zfs holds {}`) or has dependent clones",
                target.name
            )),
            _ => bus_error(&context, error),
        });
    }
    Ok(deleted)
}

/// Sets or clears (with an empty alias) the alias of a snapshot.
pub fn set_alias(
    zfs: &Zfs,
    root: &str,
    container_id: &str,
    reference: &str,
    alias: &str,
) -> Result<SnapshotInfo, Error> {
    names::check_alias(alias).map_err(|e| Error::InvalidArgument(e.0))?;
    let (_, snapshots) = open_with_snapshots(zfs, root, container_id, reference)?;
    let target = resolve(&snapshots, container_id, reference)?;
    let context = format!("cannot change the alias of snapshot {}", target.name);
    if alias.is_empty() {
        zfs.clear_user_property(&target.name, ALIAS)
            .map_err(|error| bus_error(&context, &error))?;
    } else {
        check_alias_free(&snapshots, container_id, alias, Some(&target.name))?;
        zfs.set_user_property(&target.name, ALIAS, alias)
            .map_err(|error| bus_error(&context, &error))?;
    }
    let changed = zfs
        .dataset(&target.name)
        .map_err(|error| bus_error(&context, &error))?;
    Ok(info(container_id, &changed))
}

fn open_with_snapshots(
    zfs: &Zfs,
    root: &str,
    container_id: &str,
    reference: &str,
) -> Result<(Dataset, Vec<Dataset>), Error> {
    names::check_snapshot_reference(reference).map_err(|e| Error::InvalidArgument(e.0))?;
    let container = open_container(zfs, root, container_id)?;
    let snapshots = read_snapshots(zfs, &container, container_id)?;
    Ok((container, snapshots))
}

fn read_snapshots(
    zfs: &Zfs,
    container: &Dataset,
    container_id: &str,
) -> Result<Vec<Dataset>, Error> {
    zfs.snapshots(&container.name).map_err(|error| {
        bus_error(
            &format!("cannot list snapshots of container {container_id}"),
            &error,
        )
    })
}

/// Finds a snapshot by exact name first, then by alias.
fn resolve<'a>(
    snapshots: &'a [Dataset],
    container_id: &str,
    reference: &str,
) -> Result<&'a Dataset, Error> {
    if let Some(found) = snapshots.iter().find(|s| short_name(&s.name) == reference) {
        return Ok(found);
    }
    let matches: Vec<&Dataset> = snapshots
        .iter()
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
    snapshots: &[Dataset],
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
fn first_free_sequence(existing: &[Dataset], now: DateTime<Utc>) -> Result<u32, Error> {
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
pub fn info(container_id: &str, snapshot: &Dataset) -> SnapshotInfo {
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
        assert_eq!(resolve(&snapshots, "c1", "a").unwrap().name, "tank/c/c1@a");
    }

    #[test]
    fn resolve_finds_alias() {
        let snapshots = [snapshot("snap-1", 1, Some("before"))];
        assert_eq!(
            resolve(&snapshots, "c1", "before").unwrap().name,
            "tank/c/c1@snap-1"
        );
    }

    #[test]
    fn resolve_reports_duplicate_alias() {
        let snapshots = [snapshot("s1", 1, Some("x")), snapshot("s2", 2, Some("x"))];
        assert!(matches!(
            resolve(&snapshots, "c1", "x"),
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
        assert_eq!(first_free_sequence(&existing, now).unwrap(), 2);
        assert_eq!(first_free_sequence(&existing[2..], now).unwrap(), 0);
    }

    #[test]
    fn info_of_foreign_snapshot_is_unmanaged() {
        let mut manual = snapshot("manual", 1, None);
        manual.creation = 1_796_000_000;
        let shown = info("c1", &manual);
        assert!(!shown.managed);
        assert_eq!(shown.name, "manual");
        assert_eq!(shown.expires_at, None);
        assert!(shown.created_at.ends_with(".000Z"));
    }

    #[test]
    fn info_ignores_garbage_expiry() {
        let mut odd = snapshot("odd", 1, None);
        odd.user_properties.insert(EXPIRES.into(), "abc".into());
        assert_eq!(info("c1", &odd).expires_at, None);
    }
}
