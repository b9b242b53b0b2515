//! Copy of a new container from a snapshot.
//!
//! A full copy sends the snapshot and receives it in-process (`lzc_send` into a pipe, a relay
//! thread that counts the bytes, `lzc_receive` from a second pipe) into a work dataset below
//! the internal root, then renames it into place. The copy shares no blocks with its source,
//! so it survives the deletion of the source container and snapshot. An instant copy is a ZFS
//! clone instead. Its source snapshot is then kept, hidden, until the clone is gone, when the
//! user deletes it (see `snapshots::delete`).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{ContainerInfo, Error};

use crate::containers::{self, bus_error, DEFAULT_PROJECT};
use crate::family::Family;
use crate::fault;
use crate::journal::{self, Operation};
use crate::names::{self, InternalKind, Layout};
use crate::properties::{
    self, CONTAINER_ID, CREATED, MANAGED, MANAGED_VALUE, OWNER, PROJECT_ID, ROLE, ROLE_LIVE,
};
use crate::snapshots::{self, short_name};
use crate::zfs::{ErrorKind, Zfs};

/// A copy request.
pub struct CopyRequest<'a> {
    pub source_container: &'a str,
    pub snapshot: &'a str,
    pub container: &'a str,
    pub project: &'a str,
    /// Unix uid of the new container's owner.
    pub owner: u32,
    /// Make an instant copy as a ZFS clone instead of a full send and receive.
    pub clone: bool,
    pub now: DateTime<Utc>,
}

/// Progress of a copy, in bytes of the send stream.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

/// Checks a copy request and finds its source snapshot, without changing anything.
pub fn prepare(
    zfs: &Zfs,
    layout: &Layout,
    request: &CopyRequest<'_>,
) -> Result<(String, String), Error> {
    let target = layout
        .container(request.container)
        .map_err(|e| Error::InvalidArgument(e.0))?;
    let project = if request.project.is_empty() {
        DEFAULT_PROJECT
    } else {
        request.project
    };
    names::check_id("project", project).map_err(|e| Error::InvalidArgument(e.0))?;
    names::check_snapshot_reference(request.snapshot).map_err(|e| Error::InvalidArgument(e.0))?;
    if zfs.exists(&target) {
        return Err(Error::AlreadyExists(format!(
            "container \"{}\" already exists; choose another id for the copy",
            request.container.escape_debug()
        )));
    }
    let family = Family::load(zfs, layout, request.source_container)?;
    let source = family.resolve(request.snapshot)?.name.clone();
    Ok((source, target))
}

/// Copies a snapshot into a new container and returns it.
pub fn copy(
    zfs: &Zfs,
    layout: &Layout,
    request: &CopyRequest<'_>,
    progress: &Progress,
) -> Result<ContainerInfo, Error> {
    let (source, target) = prepare(zfs, layout, request)?;
    let project = if request.project.is_empty() {
        DEFAULT_PROJECT
    } else {
        request.project
    };
    let created = properties::format_time(request.now);
    let owner = request.owner.to_string();
    let props = [
        (CONTAINER_ID, request.container),
        (PROJECT_ID, project),
        (CREATED, created.as_str()),
        (MANAGED, MANAGED_VALUE),
        (ROLE, ROLE_LIVE),
        (OWNER, owner.as_str()),
    ];

    if request.clone {
        zfs.clone_snapshot(&source, &target, &props)
            .map_err(|error| {
                bus_error(
                    &format!("cannot clone {source} as container {}", request.container),
                    &error,
                )
            })?;
        fault::point("copy-clone:after-clone");
    } else {
        copy_by_stream(zfs, layout, request, &source, &target, &props, progress)?;
    }

    zfs.mount(&target).map_err(|error| {
        bus_error(
            &format!("cannot mount copied container {}", request.container),
            &error,
        )
    })?;
    fault::point("copy:after-mount");
    snapshots::record_use(zfs, &source, request.now);
    if !request.clone {
        journal::finish(zfs, layout, request.container);
    }
    let found = zfs.dataset(&target).map_err(|error| {
        bus_error(
            &format!("cannot read copied container {}", request.container),
            &error,
        )
    })?;
    Ok(containers::info(&found, 0))
}

fn copy_by_stream(
    zfs: &Zfs,
    layout: &Layout,
    request: &CopyRequest<'_>,
    source: &str,
    target: &str,
    props: &[(&str, &str)],
    progress: &Progress,
) -> Result<(), Error> {
    let id = request.container;
    let work = layout.internal_dataset(id, InternalKind::Work, request.now);
    let operation = Operation::Copy {
        source: source.to_string(),
        work: work.clone(),
        target: target.to_string(),
    };
    journal::begin(zfs, layout, id, &operation)?;
    fault::point("copy:after-intent");

    let received = format!("{work}@{}", short_name(source));
    let result = stream(zfs, source, &received, progress)
        .and_then(|()| {
            fault::point("copy:after-receive");
            // The copy starts without snapshots: the received one carries no metadata.
            zfs.destroy_snapshots(std::slice::from_ref(&received))
                .map_err(|batch| batch.error)
        })
        .and_then(|()| {
            props
                .iter()
                .try_for_each(|(name, value)| zfs.set_property(&work, name, value))
        })
        .and_then(|()| {
            fault::point("copy:after-properties");
            zfs.rename(&work, target)
        });
    if let Err(error) = result {
        let bus = bus_error(&format!("cannot copy {source} into container {id}"), &error);
        discard_work(zfs, &work);
        journal::finish(zfs, layout, id);
        return Err(bus);
    }
    fault::point("copy:after-rename");
    Ok(())
}

/// Sends `source` and receives it as `received`, counting the bytes that pass.
fn stream(
    zfs: &Zfs,
    source: &str,
    received: &str,
    progress: &Progress,
) -> Result<(), crate::zfs::ZfsError> {
    let io_error = |operation: &'static str, error: std::io::Error| {
        crate::zfs::ZfsError::from_errno(
            operation,
            source,
            error.raw_os_error().unwrap_or(libc::EIO),
        )
    };
    progress
        .total
        .store(zfs.send_space(source).unwrap_or(0), Ordering::Relaxed);
    let (mut send_read, send_write) = std::io::pipe().map_err(|e| io_error("pipe", e))?;
    let (receive_read, mut receive_write) = std::io::pipe().map_err(|e| io_error("pipe", e))?;

    std::thread::scope(|scope| {
        let sender = scope.spawn(move || {
            let result = zfs.send(source, send_write.as_fd());
            drop(send_write);
            result
        });
        let relay = scope.spawn(move || -> std::io::Result<()> {
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let count = send_read.read(&mut buffer)?;
                if count == 0 {
                    return Ok(());
                }
                receive_write.write_all(&buffer[..count])?;
                progress.done.fetch_add(count as u64, Ordering::Relaxed);
            }
        });
        let received_result = zfs.receive(received, receive_read.as_fd());
        drop(receive_read);
        let sent = sender.join().expect("the send thread does not panic");
        let relayed = relay.join().expect("the relay thread does not panic");
        sent?;
        received_result?;
        relayed.map_err(|e| io_error("relay", e))
    })
}

/// Destroys a work dataset of a failed or interrupted copy, with its snapshots.
fn discard_work(zfs: &Zfs, work: &str) {
    if !zfs.exists(work) {
        return;
    }
    if let Ok(snapshots) = zfs.snapshots(work) {
        let names: Vec<String> = snapshots
            .into_iter()
            .map(|snapshot| snapshot.name)
            .collect();
        if !names.is_empty() {
            if let Err(batch) = zfs.destroy_snapshots(&names) {
                tracing::error!(dataset = work, error = %batch.error, "cannot destroy snapshots of the copy's work dataset");
            }
        }
    }
    match zfs.destroy(work) {
        Ok(()) => {}
        Err(error) if error.kind == ErrorKind::NotFound => {}
        Err(error) => {
            tracing::error!(dataset = work, %error, "cannot destroy the copy's work dataset")
        }
    }
}

/// Completes or undoes a copy found in the journal at start: completed when the copy was
/// already renamed into place, undone (its work dataset destroyed) otherwise.
pub fn recover(zfs: &Zfs, layout: &Layout, id: &str, operation: &Operation) {
    let Operation::Copy { work, target, .. } = operation else {
        return;
    };
    if zfs.exists(target) {
        match zfs.mount(target) {
            Ok(()) => tracing::info!(container = id, "completed an unfinished copy"),
            Err(error) => {
                tracing::error!(container = id, %error, "cannot mount the copied container")
            }
        }
    } else {
        discard_work(zfs, work);
        tracing::info!(container = id, "undid an unfinished copy");
    }
    journal::finish(zfs, layout, id);
}
