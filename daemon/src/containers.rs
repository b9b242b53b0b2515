//! Containers: one ZFS filesystem each, below the configured root.
//!
//! Deleting a container that has snapshots keeps them: its filesystem moves below the internal
//! root with the role `deleted`, is never mounted again, and is destroyed once its last
//! snapshot is gone.

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{ContainerInfo, Error};

use std::collections::HashSet;

use crate::family::{self, Family};
use crate::fault;
use crate::index::Index;
use crate::journal::{self, Operation};
use crate::names::{self, encode_component, InternalKind, Layout};
use crate::properties::{
    self, CONTAINER_ID, CREATED, MANAGED, MANAGED_VALUE, OWNER, PROJECT_ID, ROLE, ROLE_DELETED,
    ROLE_LIVE,
};
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

/// Makes sure both roots exist, creating them and their missing parents when allowed. The
/// internal root gets `mountpoint=none` and `canmount=off`, so nothing below it is mounted.
pub fn ensure_roots(zfs: &Zfs, layout: &Layout, create: bool) -> Result<(), String> {
    ensure_root(zfs, &layout.root, create)?;
    ensure_root(zfs, &layout.internal, create)?;
    for (property, value) in [("mountpoint", "none"), ("canmount", "off")] {
        zfs.set_property(&layout.internal, property, value)
            .map_err(|error| {
                format!(
                    "cannot set {property}={value} on internal root {}: {error}",
                    layout.internal
                )
            })?;
    }
    Ok(())
}

/// Makes sure a root filesystem exists, creating it and its missing parents when allowed.
fn ensure_root(zfs: &Zfs, root: &str, create: bool) -> Result<(), String> {
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

/// Creates a container and mounts it. Nothing is left behind when a step fails.
pub fn create(
    zfs: &Zfs,
    layout: &Layout,
    id: &str,
    project: &str,
    owner: u32,
    now: DateTime<Utc>,
) -> Result<ContainerInfo, Error> {
    let dataset = layout
        .container(id)
        .map_err(|e| Error::InvalidArgument(e.0))?;
    let project = if project.is_empty() {
        DEFAULT_PROJECT
    } else {
        project
    };
    names::check_id("project", project).map_err(|e| Error::InvalidArgument(e.0))?;

    let created = properties::format_time(now);
    let owner = owner.to_string();
    let props = [
        (CONTAINER_ID, id),
        (PROJECT_ID, project),
        (CREATED, created.as_str()),
        (MANAGED, MANAGED_VALUE),
        (ROLE, ROLE_LIVE),
        (OWNER, owner.as_str()),
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

/// Lists the live containers below the root, skipping filesystems the daemon did not make.
pub fn list(zfs: &Zfs, layout: &Layout, index: &Index) -> Result<Vec<ContainerInfo>, Error> {
    let children = zfs.child_filesystems(&layout.root).map_err(|error| {
        bus_error(
            &format!("cannot list containers under {}", layout.root),
            &error,
        )
    })?;
    let mut containers = Vec::with_capacity(children.len());
    for child in children {
        let Some(id) = child.user_properties.get(CONTAINER_ID) else {
            tracing::debug!(dataset = %child.name, "skipping filesystem without a container id");
            continue;
        };
        let expected = format!("{}/{}", layout.root, encode_component(id));
        let role = child.user_properties.get(ROLE).map(String::as_str);
        if expected != child.name || !matches!(role, None | Some(ROLE_LIVE)) {
            tracing::warn!(dataset = %child.name, container = %id,
                "skipping filesystem whose container id or role does not match");
            continue;
        }
        let count = match index.family(zfs, layout, id) {
            Ok(family) => family.snapshots().len(),
            Err(error) => {
                tracing::warn!(dataset = %child.name, error = %error.message(), "cannot count snapshots");
                0
            }
        };
        containers.push(info(&child, count));
    }
    Ok(containers)
}

/// Gives a container to another owner: sets the owner on every dataset of its family, so the
/// owner stays the same after a restore and after the container is deleted.
pub fn set_owner(zfs: &Zfs, layout: &Layout, id: &str, uid: u32) -> Result<ContainerInfo, Error> {
    let family = Family::load(zfs, layout, id)?;
    let live = family.require_live()?;
    let value = uid.to_string();
    for member in family.live.iter().chain(&family.others) {
        zfs.set_property(&member.dataset.name, OWNER, &value)
            .map_err(|error| {
                bus_error(&format!("cannot set the owner of container {id}"), &error)
            })?;
    }
    let found = zfs
        .dataset(&live.dataset.name)
        .map_err(|error| bus_error(&format!("cannot read container {id}"), &error))?;
    Ok(info(&found, family.snapshots().len()))
}

/// The owner recorded on a dataset; root when none is recorded. A value that is not a uid
/// grants nobody, so it reads as `u32::MAX`, which no caller has (it is `(uid_t) -1`).
pub fn owner_in(dataset: &Dataset) -> u32 {
    match dataset.user_properties.get(OWNER) {
        None => 0,
        Some(value) => properties::parse_owner(value).unwrap_or(u32::MAX),
    }
}

/// Reads the owner of a container, live or deleted; `None` when no dataset carries the id.
pub fn owner_of(zfs: &Zfs, layout: &Layout, id: &str) -> Option<u32> {
    let live = layout.container(id).ok()?;
    if let Ok(dataset) = zfs.dataset(&live) {
        if dataset
            .user_properties
            .get(CONTAINER_ID)
            .map(String::as_str)
            == Some(id)
        {
            return Some(owner_in(&dataset));
        }
    }
    let family = Family::load(zfs, layout, id).ok()?;
    let newest = family
        .others
        .iter()
        .max_by_key(|member| member.dataset.createtxg)?;
    Some(owner_in(&newest.dataset))
}

/// Deletes a container. Its snapshots stay: a container with snapshots moves below the
/// internal root instead of being destroyed.
pub fn delete(zfs: &Zfs, layout: &Layout, id: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let family = Family::load(zfs, layout, id)?;
    let live = family.require_live()?.clone();
    let name = live.dataset.name.clone();

    if live.snapshots.is_empty() {
        // Two steps without a journal entry: a crash between them leaves the container
        // unmounted, and the next start mounts it again (see `mount_all`).
        zfs.unmount(&name)
            .map_err(|error| bus_error(&format!("cannot unmount container {id}"), &error))?;
        fault::point("delete-empty:after-unmount");
        zfs.destroy(&name).map_err(|error| {
            remount(zfs, &name);
            bus_error(&format!("cannot delete container {id}"), &error)
        })?;
        family::collect_garbage(zfs, layout, &HashSet::new());
        return Ok(());
    }

    let deleted = layout.internal_dataset(id, InternalKind::Deleted, now);
    let operation = Operation::DeleteContainer {
        live: name.clone(),
        deleted: deleted.clone(),
    };
    journal::begin(zfs, layout, id, &operation)?;
    fault::point("delete:after-intent");
    let moved = zfs.unmount(&name).and_then(|()| {
        fault::point("delete:after-unmount");
        zfs.rename(&name, &deleted)
    });
    if let Err(error) = moved {
        remount(zfs, &name);
        journal::finish(zfs, layout, id);
        return Err(bus_error(&format!("cannot delete container {id}"), &error));
    }
    fault::point("delete:after-rename");
    finish_delete(zfs, layout, id, &deleted)
}

fn finish_delete(zfs: &Zfs, layout: &Layout, id: &str, deleted: &str) -> Result<(), Error> {
    zfs.set_property(deleted, ROLE, ROLE_DELETED)
        .map_err(|error| bus_error(&format!("cannot mark container {id} deleted"), &error))?;
    journal::finish(zfs, layout, id);
    family::collect_garbage(zfs, layout, &HashSet::new());
    Ok(())
}

fn remount(zfs: &Zfs, name: &str) {
    if let Err(error) = zfs.mount(name) {
        tracing::error!(dataset = name, %error, "cannot remount container after failed delete");
    }
}

/// Completes or undoes a container delete found in the journal at start: completed when the
/// filesystem was already moved, undone (mounted again) otherwise.
pub fn recover_delete(zfs: &Zfs, layout: &Layout, id: &str, operation: &Operation) {
    let Operation::DeleteContainer { live, deleted } = operation else {
        return;
    };
    if zfs.exists(deleted) {
        match finish_delete(zfs, layout, id, deleted) {
            Ok(()) => tracing::info!(container = id, "completed an unfinished container delete"),
            Err(error) => tracing::error!(container = id, error = %error.message(),
                "cannot complete an unfinished container delete"),
        }
    } else {
        remount(zfs, live);
        journal::finish(zfs, layout, id);
        tracing::info!(container = id, "undid an unfinished container delete");
    }
}

/// Mounts every live container that is not mounted, for example after a crash between a
/// clone and its mount.
pub fn mount_all(zfs: &Zfs, layout: &Layout) {
    let Ok(children) = zfs.child_filesystems(&layout.root) else {
        return;
    };
    for child in children {
        let role = child.user_properties.get(ROLE).map(String::as_str);
        let ours = child.user_properties.contains_key(CONTAINER_ID)
            && matches!(role, None | Some(ROLE_LIVE));
        if ours && child.mountpoint.is_none() {
            match zfs.mount(&child.name) {
                Ok(()) => tracing::info!(dataset = %child.name, "mounted container"),
                Err(error) => {
                    tracing::warn!(dataset = %child.name, %error, "cannot mount container")
                }
            }
        }
    }
}

/// Builds the record that callers see from a container's filesystem.
pub fn info(dataset: &Dataset, snapshot_count: usize) -> ContainerInfo {
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
        owner: owner_in(dataset),
        dataset: dataset.name.clone(),
        mountpoint: dataset.mountpoint.clone(),
        created_at: properties::format_time(created_at),
        snapshot_count: u32::try_from(snapshot_count).unwrap_or(u32::MAX),
        used: dataset.used,
    }
}
