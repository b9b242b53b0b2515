//! Containers: one ZFS filesystem each, below the configured root.

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{ContainerInfo, Error};

use crate::names::{self, encode_component};
use crate::properties::{self, CONTAINER_ID, CREATED, MANAGED, MANAGED_VALUE, PROJECT_ID};
use crate::zfs::{Dataset, ErrorKind, Zfs, ZfsError};

/// Project id given to containers created without one.
pub const DEFAULT_PROJECT: &str = "default";

/// Converts a ZFS error into the D-Bus error a caller can act on, with `context` naming what
/// the daemon was doing.
pub fn bus_error(context: &str, error: &ZfsError) -> Error {
    let message = format!("{context}: {error}");
    match error.kind {
        ErrorKind::NotFound => Error::NotFound(message),
        ErrorKind::AlreadyExists => Error::AlreadyExists(message),
        ErrorKind::Busy => Error::Busy(format!("{message}; retry when the dataset is not in use")),
        ErrorKind::NoSpace => Error::NoSpace(format!(
            "{message}; free space in the pool, for example by deleting snapshots"
        )),
        ErrorKind::ReadOnly => Error::ReadOnly(message),
        ErrorKind::PermissionDenied => Error::AccessDenied(message),
        ErrorKind::InvalidArgument | ErrorKind::Other => Error::Failed(message),
    }
}

/// Makes sure the container root exists, creating it and its missing parents when allowed.
pub fn ensure_root(zfs: &Zfs, root: &str, create: bool) -> Result<(), String> {
    if zfs.exists(root) {
        return Ok(());
    }
    if !create {
        return Err(format!(
            "container root {root} does not exist; create it with `zfs create -p {root}` or set \
             zfs.create_root = true"
        ));
    }
    let pool = root.split('/').next().unwrap_or(root);
    if !zfs.exists(pool) {
        return Err(format!(
            "pool {pool} of container root {root} does not exist or is not imported"
        ));
    }
    let mut path = pool.to_string();
    for component in root.split('/').skip(1) {
        path.push('/');
        path.push_str(component);
        if zfs.exists(&path) {
            continue;
        }
        zfs.create_filesystem(&path, &[])
            .and_then(|()| zfs.mount(&path))
            .map_err(|error| format!("cannot create container root {path}: {error}"))?;
        tracing::info!(dataset = %path, "created container root filesystem");
    }
    Ok(())
}

/// Opens a container's filesystem and checks that the daemon made it for this id.
pub fn open_container(zfs: &Zfs, root: &str, id: &str) -> Result<Dataset, Error> {
    let dataset = names::container_dataset(root, id).map_err(|e| Error::InvalidArgument(e.0))?;
    let not_found = || {
        Error::NotFound(format!(
            "container \"{}\" not found; list containers with `hoody-snap containers list`",
            id.escape_debug()
        ))
    };
    let found = match zfs.dataset(&dataset) {
        Ok(found) => found,
        Err(error) if error.kind == ErrorKind::NotFound => return Err(not_found()),
        Err(error) => return Err(bus_error(&format!("cannot open container {id}"), &error)),
    };
    if found.user_properties.get(CONTAINER_ID).map(String::as_str) != Some(id) {
        return Err(not_found());
    }
    Ok(found)
}

/// Creates a container and mounts it. Nothing is left behind when a step fails.
pub fn create(
    zfs: &Zfs,
    root: &str,
    id: &str,
    project: &str,
    now: DateTime<Utc>,
) -> Result<ContainerInfo, Error> {
    let dataset = names::container_dataset(root, id).map_err(|e| Error::InvalidArgument(e.0))?;
    let project = if project.is_empty() {
        DEFAULT_PROJECT
    } else {
        project
    };
    names::check_id("project", project).map_err(|e| Error::InvalidArgument(e.0))?;

    let created = properties::format_time(now);
    let props = [
        (CONTAINER_ID, id),
        (PROJECT_ID, project),
        (CREATED, created.as_str()),
        (MANAGED, MANAGED_VALUE),
    ];
    zfs.create_filesystem(&dataset, &props).map_err(|error| {
        if error.kind == ErrorKind::AlreadyExists {
            Error::AlreadyExists(format!(
                "container \"{}\" already exists (dataset {dataset}); choose another id",
                id.escape_debug()
            ))
        } else {
            bus_error(&format!("cannot create container {id}"), &error)
        }
    })?;

    if let Err(error) = zfs.mount(&dataset) {
        if let Err(destroy_error) = zfs.destroy(&dataset) {
            tracing::error!(%dataset, %destroy_error, "cannot remove container after failed mount");
        }
        return Err(bus_error(
            &format!("cannot mount new container {id}"),
            &error,
        ));
    }

    let found = zfs
        .dataset(&dataset)
        .map_err(|error| bus_error(&format!("cannot read new container {id}"), &error))?;
    Ok(info(&found, 0))
}

/// Lists the containers below the root, skipping filesystems the daemon did not make.
pub fn list(zfs: &Zfs, root: &str) -> Result<Vec<ContainerInfo>, Error> {
    let children = zfs
        .child_filesystems(root)
        .map_err(|error| bus_error(&format!("cannot list containers under {root}"), &error))?;
    let mut containers = Vec::with_capacity(children.len());
    for child in children {
        let Some(id) = child.user_properties.get(CONTAINER_ID) else {
            tracing::debug!(dataset = %child.name, "skipping filesystem without a container id");
            continue;
        };
        let expected = format!("{root}/{}", encode_component(id));
        if expected != child.name {
            tracing::warn!(dataset = %child.name, container = %id,
                "skipping filesystem whose container id does not match its name");
            continue;
        }
        let count = match zfs.snapshots(&child.name) {
            Ok(snapshots) => snapshots.len(),
            Err(error) => {
                tracing::warn!(dataset = %child.name, %error, "cannot count snapshots");
                0
            }
        };
        containers.push(info(&child, count));
    }
    Ok(containers)
}

/// Deletes a container that has no snapshots.
pub fn delete(zfs: &Zfs, root: &str, id: &str) -> Result<(), Error> {
    let found = open_container(zfs, root, id)?;
    let snapshots = zfs
        .snapshots(&found.name)
        .map_err(|error| bus_error(&format!("cannot list snapshots of container {id}"), &error))?;
    if !snapshots.is_empty() {
        return Err(Error::HasSnapshots(format!(
            "container \"{}\" has {} snapshots; delete them first, because keeping the snapshots \
             of a deleted container is not supported yet",
            id.escape_debug(),
            snapshots.len()
        )));
    }
    zfs.unmount(&found.name)
        .map_err(|error| bus_error(&format!("cannot unmount container {id}"), &error))?;
    zfs.destroy(&found.name).map_err(|error| {
        if let Err(mount_error) = zfs.mount(&found.name) {
            tracing::error!(dataset = %found.name, %mount_error, "cannot remount container after failed delete");
        }
        bus_error(&format!("cannot delete container {id}"), &error)
    })
}

fn info(dataset: &Dataset, snapshot_count: usize) -> ContainerInfo {
    let props = &dataset.user_properties;
    let created_at = props
        .get(CREATED)
        .and_then(|value| properties::parse_time(value))
        .unwrap_or_else(|| properties::time_from_epoch(dataset.creation));
    ContainerInfo {
        id: props.get(CONTAINER_ID).cloned().unwrap_or_default(),
        project: props
            .get(PROJECT_ID)
            .cloned()
            .unwrap_or_else(|| DEFAULT_PROJECT.into()),
        dataset: dataset.name.clone(),
        mountpoint: dataset.mountpoint.clone(),
        created_at: properties::format_time(created_at),
        snapshot_count: u32::try_from(snapshot_count).unwrap_or(u32::MAX),
        used: dataset.used,
    }
}
