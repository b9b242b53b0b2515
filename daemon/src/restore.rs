//! Restore of a container to any of its snapshots, keeping every other snapshot.
//!
//! When the target is the newest snapshot of the container's filesystem, a plain rollback does
//! it. Otherwise a rollback would destroy the newer snapshots. Instead, the daemon clones the
//! target and promotes the clone, which takes over the target and the older snapshots. Then it
//! moves the old filesystem, with the newer snapshots, below the internal root as a superseded
//! timeline, and renames the clone into the container's place. docs/restore.md draws the
//! datasets before and after. Each step is recorded in the journal first, so a crash at any
//! step is completed or undone at the next start.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{Error, SnapshotInfo};

use crate::commit::GroupCommit;
use crate::config::RestoreConfig;
use crate::containers::bus_error;
use crate::family::{self, Family, Member};
use crate::index::Index;
use crate::journal::{self, Operation};
use crate::names::{InternalKind, Layout};
use crate::properties::{
    ALIAS, CONTAINER_ID, CREATED, MANAGED, MANAGED_VALUE, OWNER, PROJECT_ID, ROLE, ROLE_LIVE,
    ROLE_TIMELINE, ROLE_WORK,
};
use crate::snapshots::{self, short_name, CreateRequest};
use crate::zfs::Zfs;
use crate::{busy, fault};

/// Alias given to the snapshot that `save_before` takes, with `-2`, `-3`... when it is taken.
const SAVED_ALIAS: &str = "before-restore";

/// How long a hook may run when the configuration sets no timeout.
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// A restore request.
pub struct RestoreRequest<'a> {
    pub container: &'a str,
    pub reference: &'a str,
    /// Restore even while processes use the container's files.
    pub force: bool,
    /// Snapshot the current state first, so the restore can be undone.
    pub save_before: bool,
    pub max_expiry_days: u32,
    pub now: DateTime<Utc>,
}

/// Result of a restore.
pub struct Restored {
    pub snapshot: SnapshotInfo,
    /// The snapshot that `save_before` took.
    pub saved: Option<SnapshotInfo>,
}

/// Restores a container to one of its snapshots, running the configured hooks around it.
pub fn restore(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    commit: &GroupCommit,
    hooks: &RestoreConfig,
    request: &RestoreRequest<'_>,
) -> Result<Restored, Error> {
    crate::names::check_snapshot_reference(request.reference)
        .map_err(|e| Error::InvalidArgument(e.0))?;
    let family = index.family(zfs, layout, request.container)?;
    let live = family.require_live()?;
    family.resolve(request.reference)?;
    let mountpoint = current_mountpoint(zfs, live)?.unwrap_or_default();
    let replacements = [
        ("{container}", request.container),
        ("{dataset}", live.dataset.name.as_str()),
        ("{mountpoint}", mountpoint.as_str()),
    ];

    run_hook(
        "pre_hook",
        &hooks.pre_hook,
        &replacements,
        hooks.hook_timeout_seconds,
    )?;
    let result = restore_with_hooks_done(zfs, layout, index, commit, request);
    // Even a failed restore may have moved datasets before it was undone.
    index.reshaped(request.container);
    if let Err(error) = run_hook(
        "post_hook",
        &hooks.post_hook,
        &replacements,
        hooks.hook_timeout_seconds,
    ) {
        tracing::warn!(container = request.container, error = %error.message(), "post-restore hook failed");
        if result.is_ok() {
            return Err(error);
        }
    }
    result
}

fn restore_with_hooks_done(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    commit: &GroupCommit,
    request: &RestoreRequest<'_>,
) -> Result<Restored, Error> {
    let id = request.container;
    let family = index.family(zfs, layout, id)?;
    let live = family.require_live()?;
    if !request.force {
        check_not_busy(id, current_mountpoint(zfs, live)?)?;
    }

    let saved = if request.save_before {
        let saved = save_current_state(zfs, layout, index, commit, &family, request)?;
        index.changed(id);
        Some(saved)
    } else {
        None
    };
    let family = index.family(zfs, layout, id)?;
    let live = family.require_live()?;
    let target = family.resolve(request.reference)?.clone();
    let newest_on_live = live.snapshots.last().map(|snapshot| snapshot.name.as_str());

    if newest_on_live == Some(target.name.as_str()) {
        zfs.rollback_to(&live.dataset.name, &target.name)
            .map_err(|error| bus_error(&format!("cannot restore container {id}"), &error))?;
        snapshots::record_use(zfs, &target.name, request.now);
    } else {
        let owner = family.owner_of(&target).ok_or_else(|| {
            Error::Failed(format!(
                "cannot find the dataset of snapshot {}",
                target.name
            ))
        })?;
        restore_by_clone(
            zfs,
            layout,
            id,
            live,
            &owner.dataset.name,
            &target.name,
            request,
        )?;
    }

    index.reshaped(id);
    family::consolidate(zfs, layout, id);
    index.changed(id);
    let restored_name = format!("{}@{}", live.dataset.name, short_name(&target.name));
    let restored = zfs.dataset(&restored_name).map_err(|error| {
        bus_error(
            &format!("cannot read restored snapshot {restored_name}"),
            &error,
        )
    })?;
    family::collect_garbage(zfs, layout, &HashSet::new());
    Ok(Restored {
        snapshot: snapshots::info(id, &restored, false),
        saved,
    })
}

/// Reads where the live filesystem is mounted now; the index may hold an older mountpoint.
fn current_mountpoint(zfs: &Zfs, live: &Member) -> Result<Option<String>, Error> {
    zfs.dataset(&live.dataset.name)
        .map(|dataset| dataset.mountpoint)
        .map_err(|error| bus_error(&format!("cannot read {}", live.dataset.name), &error))
}

fn check_not_busy(id: &str, mountpoint: Option<String>) -> Result<(), Error> {
    let Some(mountpoint) = mountpoint else {
        return Ok(());
    };
    let users = busy::users(Path::new(&mountpoint));
    if users.is_empty() {
        return Ok(());
    }
    Err(Error::Busy(format!(
        "container {id} is in use: processes {} have files open or their working directory below \
         {mountpoint}; stop them, or restore with force",
        busy::describe(&users)
    )))
}

/// Snapshots the container's current state with the alias `before-restore` (or the first free
/// `before-restore-N`).
fn save_current_state(
    zfs: &Zfs,
    layout: &Layout,
    index: &Index,
    commit: &GroupCommit,
    family: &Family,
    request: &RestoreRequest<'_>,
) -> Result<SnapshotInfo, Error> {
    let taken: HashSet<&str> = family
        .snapshots()
        .iter()
        .filter_map(|snapshot| snapshot.user_properties.get(ALIAS).map(String::as_str))
        .collect();
    let alias = std::iter::once(SAVED_ALIAS.to_string())
        .chain((2..).map(|n| format!("{SAVED_ALIAS}-{n}")))
        .find(|alias| !taken.contains(alias.as_str()))
        .expect("the sequence of aliases is endless");
    let containers = [request.container.to_string()];
    let create = CreateRequest {
        containers: &containers,
        alias: &alias,
        expiry_days: 0,
        max_expiry_days: request.max_expiry_days,
        now: request.now,
        group: None,
    };
    let mut created = snapshots::create(zfs, layout, index, commit, &create)?;
    Ok(created.remove(0))
}

/// Restores by clone, promote and rename; see the module documentation.
fn restore_by_clone(
    zfs: &Zfs,
    layout: &Layout,
    id: &str,
    live: &Member,
    source: &str,
    target: &str,
    request: &RestoreRequest<'_>,
) -> Result<(), Error> {
    let container = live.dataset.name.clone();
    let work = layout.internal_dataset(id, InternalKind::Work, request.now);
    let timeline = layout.internal_dataset(id, InternalKind::Timeline, request.now);
    let operation = Operation::Restore {
        container: container.clone(),
        target: target.to_string(),
        source: source.to_string(),
        work: work.clone(),
        timeline: timeline.clone(),
    };
    journal::begin(zfs, layout, id, &operation)?;
    fault::point("restore:after-intent");

    let failed = |step: &str, error: crate::zfs::ZfsError| {
        let bus = bus_error(&format!("cannot restore container {id} ({step})"), &error);
        undo(zfs, layout, id, &operation);
        bus
    };

    let props = &live.dataset.user_properties;
    let mut clone_props = vec![
        (ROLE, ROLE_WORK),
        (MANAGED, MANAGED_VALUE),
        (CONTAINER_ID, id),
    ];
    for key in [PROJECT_ID, CREATED, OWNER] {
        if let Some(value) = props.get(key) {
            clone_props.push((key, value.as_str()));
        }
    }
    zfs.clone_snapshot(target, &work, &clone_props)
        .map_err(|e| failed("clone", e))?;
    fault::point("restore:after-clone");
    zfs.promote(&work).map_err(|e| failed("promote", e))?;
    fault::point("restore:after-promote");
    let unmounted = if request.force {
        zfs.detach(&container)
    } else {
        zfs.unmount(&container)
    };
    unmounted.map_err(|e| failed("unmount", e))?;
    fault::point("restore:after-unmount");
    zfs.rename(&container, &timeline)
        .map_err(|e| failed("move the old filesystem aside", e))?;
    fault::point("restore:after-rename-old");

    complete(zfs, layout, id, &operation, request.now)
}

/// Finishes a restore whose old filesystem is already a timeline. Every step checks what is
/// done, so recovery can call it at any point after the rename of the old filesystem.
fn complete(
    zfs: &Zfs,
    layout: &Layout,
    id: &str,
    operation: &Operation,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Operation::Restore {
        container,
        target,
        work,
        timeline,
        ..
    } = operation
    else {
        unreachable!("complete is only called for restores");
    };
    let context = |step: &str| format!("cannot finish restoring container {id} ({step})");

    if zfs.exists(work) {
        zfs.rename(work, container)
            .map_err(|e| bus_error(&context("rename"), &e))?;
    }
    fault::point("restore:after-rename-new");
    zfs.set_property(container, ROLE, ROLE_LIVE)
        .map_err(|e| bus_error(&context("set role"), &e))?;
    if zfs.exists(timeline) {
        zfs.set_property(timeline, ROLE, ROLE_TIMELINE)
            .map_err(|e| bus_error(&context("set timeline role"), &e))?;
    }
    fault::point("restore:after-roles");
    zfs.mount(container)
        .map_err(|e| bus_error(&context("mount"), &e))?;
    fault::point("restore:after-mount");
    snapshots::record_use(zfs, &format!("{container}@{}", short_name(target)), now);
    journal::finish(zfs, layout, id);
    Ok(())
}

/// Undoes a restore whose old filesystem is still in place: the clone is promoted back and
/// destroyed, and the container is mounted again.
fn undo(zfs: &Zfs, layout: &Layout, id: &str, operation: &Operation) {
    let Operation::Restore {
        container,
        target,
        source,
        work,
        ..
    } = operation
    else {
        unreachable!("undo is only called for restores");
    };
    if zfs.exists(work) {
        let promoted = zfs.exists(&format!("{work}@{}", short_name(target)));
        if promoted {
            if let Err(error) = zfs.promote(source) {
                tracing::error!(container = id, %error, "cannot promote the original filesystem back");
                return;
            }
        }
        if let Err(error) = zfs.destroy(work) {
            tracing::error!(container = id, dataset = %work, %error, "cannot destroy the restore's clone");
            return;
        }
    }
    if let Err(error) = zfs.mount(container) {
        tracing::error!(container = id, %error, "cannot mount the container again");
        return;
    }
    journal::finish(zfs, layout, id);
    tracing::info!(container = id, "undid an unfinished restore");
}

/// Completes or undoes a restore found in the journal at start: completed when the old
/// filesystem was already moved aside as the timeline, undone otherwise.
pub fn recover(zfs: &Zfs, layout: &Layout, id: &str, operation: &Operation, now: DateTime<Utc>) {
    let Operation::Restore { timeline, .. } = operation else {
        return;
    };
    if zfs.exists(timeline) {
        match complete(zfs, layout, id, operation, now) {
            Ok(()) => tracing::info!(container = id, "completed an unfinished restore"),
            Err(error) => tracing::error!(container = id, error = %error.message(),
                "cannot complete an unfinished restore"),
        }
    } else {
        undo(zfs, layout, id, operation);
    }
}

/// Runs a configured hook without a shell, replacing the placeholders in its arguments.
fn run_hook(
    name: &str,
    command: &[String],
    replacements: &[(&str, &str)],
    timeout_seconds: u32,
) -> Result<(), Error> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    // No shell runs the hook: each argument is one argv entry, and the values put into them are
    // a checked container id (no spaces, quotes or braces) and a snapshot name of ours.
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            replacements
                .iter()
                .fold(arg.clone(), |text, (key, value)| text.replace(key, value))
        })
        .collect();
    let timeout = match timeout_seconds {
        0 => DEFAULT_HOOK_TIMEOUT,
        seconds => Duration::from_secs(u64::from(seconds)),
    };

    let mut child = Command::new(program)
        .args(&args)
        .spawn()
        .map_err(|error| Error::Failed(format!("cannot run restore.{name} {program}: {error}")))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                tracing::info!(hook = name, program, "restore hook finished");
                return Ok(());
            }
            Ok(Some(status)) => {
                return Err(Error::Failed(format!(
                    "restore.{name} {program} failed with {status}"
                )));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Failed(format!(
                    "restore.{name} {program} timed out after {} seconds and was killed",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => {
                return Err(Error::Failed(format!(
                    "cannot wait for restore.{name} {program}: {error}"
                )))
            }
        }
    }
}
