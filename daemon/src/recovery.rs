//! Recovery at start: completes or undoes the operations that the journal shows unfinished,
//! mounts the live containers, and destroys datasets that have no snapshots left.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::journal::{self, Operation};
use crate::names::Layout;
use crate::zfs::Zfs;
use crate::{containers, copy, family, restore};

/// Runs recovery. Failures are logged; the daemon starts anyway and serves what it can.
pub fn recover(zfs: &Zfs, layout: &Layout, now: DateTime<Utc>) {
    let entries = match journal::entries(zfs, layout) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::error!(error = %error.message(), "cannot read the operation journal");
            Vec::new()
        }
    };
    let mut protected = HashSet::new();
    for entry in entries {
        let record = match entry.record {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(property = %entry.property, %error,
                    "unreadable journal entry left in place; inspect it with `zfs get all` on the internal root");
                continue;
            }
        };
        let id = record.id.as_str();
        tracing::info!(container = id, operation = ?record.operation, "recovering an unfinished operation");
        match &record.operation {
            Operation::Restore { .. } => restore::recover(zfs, layout, id, &record.operation, now),
            Operation::Copy { .. } => copy::recover(zfs, layout, id, &record.operation),
            Operation::DeleteContainer { .. } => {
                containers::recover_delete(zfs, layout, id, &record.operation)
            }
        }
        if let Ok(remaining) = journal::entries(zfs, layout) {
            if remaining.iter().any(|e| e.property == entry.property) {
                protected.extend(record.operation.datasets());
            }
        }
    }
    containers::mount_all(zfs, layout);
    let destroyed = family::collect_garbage(zfs, layout, &protected);
    if destroyed > 0 {
        tracing::info!(destroyed, "destroyed datasets with no snapshots left");
    }
}
