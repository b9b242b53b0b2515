//! The intent journal of multi-step operations.
//!
//! Before the first change of a restore, a copy or a container delete, the daemon writes what
//! it is about to do into a user property of the internal root, one per container id. ZFS
//! makes the property durable before the call returns, so after a crash the next start finds
//! the entry and completes or undoes the operation (see `recovery`). The entry is removed when
//! the operation is done.

use serde::{Deserialize, Serialize};

use crate::containers::bus_error;
use crate::names::{encode_component, Layout};
use crate::properties::OPERATION_PREFIX;
use crate::zfs::Zfs;
use hoody_snapd_contract::Error;

/// An operation in progress, with every name that recovery needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Operation {
    /// Restore of a snapshot that is not the newest on the container's filesystem.
    Restore {
        /// The container's filesystem.
        container: String,
        /// The snapshot to restore, by its full name when the operation began.
        target: String,
        /// The filesystem that owned `target` when the operation began.
        source: String,
        /// The clone of `target` that becomes the container's filesystem.
        work: String,
        /// The name that the container's old filesystem gets as a superseded timeline.
        timeline: String,
    },
    /// Copy of a snapshot into a new container by send and receive.
    Copy {
        /// The snapshot copied from.
        source: String,
        /// The filesystem received into, below the internal root.
        work: String,
        /// The new container's filesystem.
        target: String,
    },
    /// Delete of a container that has snapshots: its filesystem moves below the internal root.
    DeleteContainer {
        /// The container's filesystem.
        live: String,
        /// The name it gets below the internal root.
        deleted: String,
    },
}

impl Operation {
    /// Returns the datasets that garbage collection must leave alone while this runs.
    pub fn datasets(&self) -> Vec<String> {
        match self {
            Operation::Restore {
                container,
                source,
                work,
                timeline,
                ..
            } => vec![
                container.clone(),
                source.clone(),
                work.clone(),
                timeline.clone(),
            ],
            Operation::Copy { work, target, .. } => vec![work.clone(), target.clone()],
            Operation::DeleteContainer { live, deleted } => vec![live.clone(), deleted.clone()],
        }
    }
}

/// A journal entry as stored: the container id and the operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The container id whose lock the operation holds.
    pub id: String,
    #[serde(flatten)]
    pub operation: Operation,
}

fn property(id: &str) -> String {
    format!("{OPERATION_PREFIX}{}", encode_component(id))
}

/// Records an operation on a container id before its first change.
pub fn begin(zfs: &Zfs, layout: &Layout, id: &str, operation: &Operation) -> Result<(), Error> {
    let record = Record {
        id: id.to_string(),
        operation: operation.clone(),
    };
    let value = serde_json::to_string(&record).expect("journal records serialize to JSON");
    zfs.set_property(&layout.internal, &property(id), &value)
        .map_err(|error| {
            bus_error(
                &format!("cannot record the operation on container {id}"),
                &error,
            )
        })?;
    tracing::debug!(container = id, operation = %value, "operation recorded");
    Ok(())
}

/// Removes the record of a finished operation.
pub fn finish(zfs: &Zfs, layout: &Layout, id: &str) {
    finish_property(zfs, layout, &property(id));
}

/// Removes a journal entry by its property name.
pub fn finish_property(zfs: &Zfs, layout: &Layout, name: &str) {
    if let Err(error) = zfs.clear_user_property(&layout.internal, name) {
        tracing::error!(property = name, %error,
            "cannot remove a finished operation from the journal; it is completed again at the next start");
    }
}

/// An entry found in the journal.
pub struct Entry {
    /// The property that contains it.
    pub property: String,
    /// The record, or why it cannot be read.
    pub record: Result<Record, String>,
}

/// Reads every entry of the journal.
pub fn entries(zfs: &Zfs, layout: &Layout) -> Result<Vec<Entry>, Error> {
    let root = zfs
        .dataset(&layout.internal)
        .map_err(|error| bus_error("cannot read the operation journal", &error))?;
    Ok(root
        .user_properties
        .iter()
        .filter(|(name, _)| name.starts_with(OPERATION_PREFIX))
        .map(|(name, value)| Entry {
            property: name.clone(),
            record: serde_json::from_str(value).map_err(|error| format!("{error} in {value:?}")),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_round_trips_through_json() {
        let operation = Operation::DeleteContainer {
            live: "tank/c/web".into(),
            deleted: "tank/i/web.d1".into(),
        };
        let text = serde_json::to_string(&operation).unwrap();
        assert!(text.contains("\"op\":\"delete-container\""), "{text}");
        assert_eq!(serde_json::from_str::<Operation>(&text).unwrap(), operation);
    }

    #[test]
    fn record_carries_container_and_operation() {
        let record = Record {
            id: "web".into(),
            operation: Operation::Restore {
                container: "tank/c/web".into(),
                target: "tank/c/web@s1".into(),
                source: "tank/c/web".into(),
                work: "tank/i/web.w1".into(),
                timeline: "tank/i/web.t1".into(),
            },
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
        let record = Record {
            id: "web".into(),
            operation: Operation::Copy {
                source: "tank/c/a@s".into(),
                work: "tank/i/web.w1".into(),
                target: "tank/c/web".into(),
            },
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
    }

    #[test]
    fn property_name_escapes_id() {
        assert_eq!(property("café"), "icu.hoody:op:caf:c3:a9");
    }
}
