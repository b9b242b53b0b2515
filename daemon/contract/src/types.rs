//! Records that travel over D-Bus.
//!
//! Each record is sent as a `a{sv}` dictionary keyed by field name. A field that is `None` is
//! left out of the dictionary, which is how D-Bus spells "null". Clients ignore keys they do not
//! know, so a later version can add fields without changing a method signature.

use serde::{Deserialize, Serialize};
use zbus::zvariant::{DeserializeDict, SerializeDict, Type};

/// Reason sent with `SnapshotDeleted` when a caller deleted the snapshot.
pub const DELETE_REASON_USER: &str = "user";

/// Reason sent with `SnapshotDeleted` when expiry deleted the snapshot.
pub const DELETE_REASON_EXPIRED: &str = "expired";

/// A snapshot of a container as callers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct SnapshotInfo {
    /// Container id that the snapshot belongs to.
    pub container: String,
    /// Snapshot name, `snap-YYYYMMDD-HHMMSS` in UTC, with a `-NNN` suffix when a container got
    /// more than one snapshot in the same second.
    pub name: String,
    /// User-given alias, unique within the container.
    pub alias: Option<String>,
    /// Creation time, RFC 3339 in UTC with milliseconds.
    pub created_at: String,
    /// Time of the last restore from this snapshot, RFC 3339 in UTC with milliseconds.
    pub last_used_at: Option<String>,
    /// Time after which the snapshot may be deleted, RFC 3339 in UTC with milliseconds. `None`
    /// means the snapshot is permanent.
    pub expires_at: Option<String>,
    /// Whether the snapshot includes process state. Always false: snapshots hold files only.
    pub stateful: bool,
    /// Bytes of data that the snapshot refers to (the ZFS `referenced` property).
    pub size: u64,
    /// Bytes that deleting this snapshot alone would free (the ZFS `used` property).
    pub used: u64,
    /// Whether hoody-snapd made the snapshot. Snapshots made by hand are listed but not managed.
    pub managed: bool,
    /// Group id shared by the snapshots that one group request made.
    pub group: Option<String>,
    /// Whether the container was deleted; its snapshots are kept until deleted or expired.
    pub container_deleted: bool,
    /// Whether the snapshot has a user hold (a pin, or a hold made with `zfs hold`): expiry and
    /// delete keep it until the hold is released.
    pub pinned: bool,
}

/// The planned outcome of expiry for one snapshot, from `PreviewExpiry`.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct ExpiryPreview {
    pub container: String,
    pub name: String,
    pub alias: Option<String>,
    /// The stored expiry, RFC 3339 in UTC; absent for permanent snapshots.
    pub expires_at: Option<String>,
    /// `delete` when the next sweep deletes it, `keep` otherwise.
    pub action: String,
    /// `expired`, `not yet due`, `permanent`, `pinned`, `not managed` or `invalid expiry`.
    pub reason: String,
}

/// A snapshot that expiry could not delete or cannot judge, from `GetExpiryStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct ExpiryProblem {
    pub container: String,
    pub name: String,
    /// Why: the ZFS error of the last delete, `held`, or `invalid expiry "<value>"`.
    pub reason: String,
    /// When the problem was first seen, RFC 3339 in UTC.
    pub since: String,
    /// How many sweeps have tried to delete the snapshot.
    pub attempts: u32,
}

/// A container as callers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Project id that the container belongs to.
    pub project: String,
    /// Name of the ZFS filesystem that contains the container's files.
    pub dataset: String,
    /// Mount path of the filesystem, if it is mounted.
    pub mountpoint: Option<String>,
    /// Creation time, RFC 3339 in UTC with milliseconds.
    pub created_at: String,
    /// Number of snapshots of the container.
    pub snapshot_count: u32,
    /// Bytes that the container and its snapshots use (the ZFS `used` property).
    pub used: u64,
    /// Unix user id of the owner; 0 (root) for a container created by root or before owners
    /// existed.
    pub owner: u32,
}

/// A background job, such as a full copy of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct JobInfo {
    /// Job id, as returned by the method that started the job.
    pub id: u32,
    /// Kind of job, for example `copy`.
    pub kind: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// Bytes processed so far.
    pub done: u64,
    /// Bytes to process in all, an estimate; 0 when unknown.
    pub total: u64,
    /// Container that the job creates or changes.
    pub container: String,
    /// D-Bus error name of a failed job.
    pub error: Option<String>,
    /// Error message of a failed job.
    pub message: Option<String>,
}

/// The daemon's health view, from `GetStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}")]
pub struct StatusInfo {
    /// Version of the daemon.
    pub version: String,
    /// Version of the OpenZFS libraries that the daemon runs with.
    pub zfs_userland: String,
    /// Version of the loaded OpenZFS kernel module.
    pub zfs_kernel: String,
    /// Pool of the container root.
    pub pool: String,
    /// Pool health: `ONLINE`, `DEGRADED`, `FAULTED`, `OFFLINE`, `UNAVAIL` or `REMOVED`.
    pub pool_health: String,
    /// Pool size in bytes.
    pub pool_size: u64,
    /// Free space of the pool in bytes.
    pub pool_free: u64,
    /// Number of containers that exist.
    pub containers: u32,
    /// Number of deleted containers whose snapshots are kept.
    pub deleted_containers: u32,
    /// Number of snapshots of all containers, deleted ones included.
    pub snapshots: u32,
    /// Earliest expiry of a snapshot that expiry will delete, RFC 3339 in UTC.
    pub next_expiry_at: Option<String>,
    /// Container and snapshot name of that snapshot, as `container@snapshot`.
    pub next_expiry: Option<String>,
    /// Expired snapshots that expiry tried to delete and could not; `GetExpiryStatus` lists them.
    pub failed_deletions: u32,
    /// Creation time of the newest snapshot of each container that exists, RFC 3339 in UTC, by
    /// container id; containers without a snapshot are left out.
    pub newest_snapshots: std::collections::HashMap<String, String>,
    /// Containers that exist and have no snapshot.
    pub containers_without_snapshots: u32,
}

/// Job state of a running job.
pub const JOB_RUNNING: &str = "running";
/// Job state of a job that finished successfully.
pub const JOB_SUCCEEDED: &str = "succeeded";
/// Job state of a job that failed.
pub const JOB_FAILED: &str = "failed";

/// JSON form of [`SnapshotInfo`], with `null` for absent fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotJson<'a> {
    pub container: &'a str,
    pub name: &'a str,
    pub alias: Option<&'a str>,
    pub created_at: &'a str,
    pub last_used_at: Option<&'a str>,
    pub expires_at: Option<&'a str>,
    pub stateful: bool,
    pub size: u64,
    pub used: u64,
    pub managed: bool,
    pub group: Option<&'a str>,
    pub container_deleted: bool,
    pub pinned: bool,
}

impl SnapshotInfo {
    /// Borrows the snapshot as its JSON form.
    pub fn to_json(&self) -> SnapshotJson<'_> {
        SnapshotJson {
            container: &self.container,
            name: &self.name,
            alias: self.alias.as_deref(),
            created_at: &self.created_at,
            last_used_at: self.last_used_at.as_deref(),
            expires_at: self.expires_at.as_deref(),
            stateful: self.stateful,
            size: self.size,
            used: self.used,
            managed: self.managed,
            group: self.group.as_deref(),
            container_deleted: self.container_deleted,
            pinned: self.pinned,
        }
    }
}

/// JSON form of [`ContainerInfo`], with `null` for absent fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerJson<'a> {
    pub id: &'a str,
    pub project: &'a str,
    pub dataset: &'a str,
    pub mountpoint: Option<&'a str>,
    pub created_at: &'a str,
    pub snapshot_count: u32,
    pub used: u64,
    pub owner: u32,
}

impl ContainerInfo {
    /// Borrows the container as its JSON form.
    pub fn to_json(&self) -> ContainerJson<'_> {
        ContainerJson {
            id: &self.id,
            project: &self.project,
            dataset: &self.dataset,
            mountpoint: self.mountpoint.as_deref(),
            created_at: &self.created_at,
            snapshot_count: self.snapshot_count,
            used: self.used,
            owner: self.owner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{serialized::Context, to_bytes, Endian};

    #[test]
    fn snapshot_round_trips_through_dict() {
        let snapshot = SnapshotInfo {
            container: "c1".into(),
            name: "snap-20261204-003000".into(),
            alias: Some("before 🦀".into()),
            created_at: "2026-12-04T00:30:00.000Z".into(),
            last_used_at: None,
            expires_at: Some("2026-12-11T00:30:00.000Z".into()),
            stateful: false,
            size: 4096,
            used: 0,
            managed: true,
            group: None,
            container_deleted: false,
            pinned: false,
        };
        let context = Context::new_dbus(Endian::Little, 0);
        let bytes = to_bytes(context, &snapshot).unwrap();
        let (decoded, _): (SnapshotInfo, _) = bytes.deserialize().unwrap();
        assert_eq!(decoded, snapshot);
    }

    #[test]
    fn absent_fields_become_json_null() {
        let snapshot = SnapshotInfo::default();
        let json = serde_json::to_value(snapshot.to_json()).unwrap();
        assert!(json["alias"].is_null());
        assert!(json["expires_at"].is_null());
        assert!(json["last_used_at"].is_null());
        assert_eq!(json["stateful"], false);
    }
}
