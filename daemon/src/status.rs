//! The health view of `GetStatus`: versions, pool state, counts, next expiry and the newest
//! snapshot of each container.

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{Error, StatusInfo};

use crate::containers::bus_error;
use crate::expiry::{self, Verdict};
use crate::index::Index;
use crate::names::Layout;
use crate::snapshots;
use crate::zfs::Zfs;

/// Reads the status of the pool and of every family through the index. `failed_deletions`
/// is left at 0 for the caller, which keeps the expiry problems.
pub fn read(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    now: DateTime<Utc>,
) -> Result<StatusInfo, Error> {
    let (zfs_userland, zfs_kernel) = zfs.versions();
    let pool_name = layout.root.split('/').next().unwrap_or_default();
    let pool = zfs
        .pool(pool_name)
        .map_err(|error| bus_error(&format!("cannot read pool {pool_name}"), &error))?;
    let mut status = StatusInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        zfs_userland,
        zfs_kernel,
        pool: pool_name.to_string(),
        pool_health: pool.health,
        pool_size: pool.size,
        pool_free: pool.free,
        ..StatusInfo::default()
    };

    let mut next: Option<(DateTime<Utc>, String)> = None;
    for id in index.ids(zfs, layout)? {
        let family = match index.family(zfs, layout, &id) {
            Ok(family) => family,
            Err(Error::NotFound(_)) => continue,
            Err(error) => return Err(error),
        };
        let snapshots = family.snapshots();
        status.snapshots += snapshots.len() as u32;
        if family.live.is_some() {
            status.containers += 1;
            match snapshots.last() {
                Some(newest) => {
                    let created = snapshots::info(&id, newest, false).created_at;
                    status.newest_snapshots.insert(id.clone(), created);
                }
                None => status.containers_without_snapshots += 1,
            }
        } else {
            status.deleted_containers += 1;
        }
        for snapshot in snapshots {
            if let Verdict::Due(at) | Verdict::NotYetDue(at) = expiry::verdict(snapshot, now) {
                if next.as_ref().is_none_or(|(earliest, _)| at < *earliest) {
                    let name = snapshots::short_name(&snapshot.name);
                    next = Some((at, format!("{id}@{name}")));
                }
            }
        }
    }
    if let Some((at, snapshot)) = next {
        status.next_expiry_at = Some(crate::properties::format_time(at));
        status.next_expiry = Some(snapshot);
    }
    Ok(status)
}
