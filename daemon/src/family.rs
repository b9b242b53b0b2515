//! A container's family: every dataset that carries its container id.
//!
//! A container's snapshots do not all live on its filesystem. Restoring an older snapshot moves
//! the newer ones to a superseded timeline, and deleting a container moves its filesystem aside
//! while it still has snapshots. Both kinds are kept below the internal root, which is never
//! mounted, with the container id and a role in user properties. A family is the live
//! filesystem (if the container exists) plus those datasets, and its snapshots are the union of
//! theirs, without the ones marked for deferred destruction.

use std::collections::HashSet;

use hoody_snapd_contract::Error;

use crate::containers::bus_error;
use crate::names::Layout;
use crate::properties::{CONTAINER_ID, ROLE, ROLE_DELETED, ROLE_LIVE, ROLE_TIMELINE};
use crate::zfs::{Dataset, ErrorKind, Zfs};

/// One dataset of a family with its snapshots, oldest first.
#[derive(Clone, Debug)]
pub struct Member {
    pub dataset: Dataset,
    pub snapshots: Vec<Dataset>,
}

/// The datasets of one container id.
#[derive(Clone, Debug)]
pub struct Family {
    pub id: String,
    /// The container's filesystem below the root; `None` once the container is deleted.
    pub live: Option<Member>,
    /// Timelines and deleted incarnations below the internal root.
    pub others: Vec<Member>,
}

impl Family {
    /// Loads the family of a container id, listing the internal root to find its datasets
    /// there. Fails with NotFound when no dataset carries the id.
    pub fn load(zfs: &Zfs, layout: &Layout, id: &str) -> Result<Family, Error> {
        let internal: Vec<String> = internal_children(zfs, layout)?
            .into_iter()
            .filter(|dataset| {
                dataset
                    .user_properties
                    .get(CONTAINER_ID)
                    .map(String::as_str)
                    == Some(id)
            })
            .map(|dataset| dataset.name)
            .collect();
        Family::load_known(zfs, layout, id, &internal)
    }

    /// Loads the family of a container id whose datasets below the internal root are among
    /// `internal`; names that are gone or carry another id or role are skipped. Fails with
    /// NotFound when no dataset carries the id.
    pub fn load_known(
        zfs: &Zfs,
        layout: &Layout,
        id: &str,
        internal: &[String],
    ) -> Result<Family, Error> {
        let live_name = layout
            .container(id)
            .map_err(|e| Error::InvalidArgument(e.0))?;
        let live = match zfs.dataset(&live_name) {
            Ok(dataset) if is_live(&dataset, id) => Some(member(zfs, dataset, id)?),
            Ok(_) => None,
            Err(error) if error.kind == ErrorKind::NotFound => None,
            Err(error) => return Err(bus_error(&format!("cannot open container {id}"), &error)),
        };

        let mut others = Vec::new();
        for name in internal {
            // Datasets below the internal root are never mounted.
            let dataset = match zfs.dataset_unmounted(name) {
                Ok(dataset) => dataset,
                Err(error) if error.kind == ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(bus_error(&format!("cannot open dataset {name}"), &error))
                }
            };
            let role = dataset.user_properties.get(ROLE).map(String::as_str);
            let same_id = dataset
                .user_properties
                .get(CONTAINER_ID)
                .map(String::as_str)
                == Some(id);
            if same_id && matches!(role, Some(ROLE_TIMELINE | ROLE_DELETED)) {
                others.push(member(zfs, dataset, id)?);
            }
        }
        others.sort_by(|a, b| a.dataset.name.cmp(&b.dataset.name));

        if live.is_none() && others.is_empty() {
            return Err(not_found(id));
        }
        Ok(Family {
            id: id.to_string(),
            live,
            others,
        })
    }

    /// Returns the live member, if any, then the others.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.live.iter().chain(&self.others)
    }

    /// Returns the members mutably, in the order of [`Family::members`].
    pub fn members_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        self.live.iter_mut().chain(&mut self.others)
    }

    /// Returns the live container, or NotFound when the container was deleted.
    pub fn require_live(&self) -> Result<&Member, Error> {
        self.live.as_ref().ok_or_else(|| {
            Error::NotFound(format!(
                "container \"{}\" was deleted; its snapshots are kept, and a new container can be \
                 copied from one of them",
                self.id.escape_debug()
            ))
        })
    }

    /// Returns every visible snapshot of the family, oldest first (by `createtxg`, which grows
    /// across the whole pool).
    pub fn snapshots(&self) -> Vec<&Dataset> {
        let mut all: Vec<&Dataset> = self
            .live
            .iter()
            .chain(&self.others)
            .flat_map(|member| &member.snapshots)
            .filter(|snapshot| !snapshot.defer_destroy)
            .collect();
        all.sort_by_key(|snapshot| snapshot.createtxg);
        all
    }

    /// Finds a snapshot by exact name first, then by alias.
    pub fn resolve(&self, reference: &str) -> Result<&Dataset, Error> {
        let snapshots = self.snapshots();
        crate::snapshots::resolve(&snapshots, &self.id, reference)
    }

    /// Returns the member whose dataset owns a snapshot.
    pub fn owner_of(&self, snapshot: &Dataset) -> Option<&Member> {
        let owner = snapshot.name.split_once('@').map(|(dataset, _)| dataset)?;
        self.live
            .iter()
            .chain(&self.others)
            .find(|member| member.dataset.name == owner)
    }
}

fn is_live(dataset: &Dataset, id: &str) -> bool {
    let props = &dataset.user_properties;
    let role = props.get(ROLE).map(String::as_str);
    props.get(CONTAINER_ID).map(String::as_str) == Some(id)
        && matches!(role, None | Some(ROLE_LIVE))
}

/// Reads a dataset's snapshots into a member of the family of `id`.
pub fn member(zfs: &Zfs, dataset: Dataset, id: &str) -> Result<Member, Error> {
    let snapshots = zfs
        .snapshots(&dataset.name)
        .map_err(|error| bus_error(&format!("cannot list snapshots of container {id}"), &error))?;
    Ok(Member { dataset, snapshots })
}

/// Lists the filesystems directly below the internal root.
pub fn internal_children(zfs: &Zfs, layout: &Layout) -> Result<Vec<Dataset>, Error> {
    zfs.child_filesystems_unmounted(&layout.internal)
        .map_err(|error| {
            bus_error(
                &format!(
                    "cannot list the internal datasets under {}",
                    layout.internal
                ),
                &error,
            )
        })
}

/// Builds the NotFound error for a container id that no dataset carries.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "container \"{}\" not found; list containers with `hoody-snap containers list`",
        id.escape_debug()
    ))
}

/// Promotes the live filesystem when it is a clone of a snapshot below the internal root.
///
/// After a restore from a timeline, the live filesystem is a clone of an older timeline, which
/// then cannot be destroyed, and pins snapshots marked for deferred destruction. Promoting
/// moves those snapshots to the live filesystem (they stay in the family), so the timeline can
/// empty and go. A failure is logged: the family stays correct, only less compact.
pub fn consolidate(zfs: &Zfs, layout: &Layout, id: &str) {
    // Two reads, the live filesystem and its origin, so that the cost does not grow with the
    // family's snapshots.
    let Ok(live_name) = layout.container(id) else {
        return;
    };
    let Ok(live) = zfs.dataset_unmounted(&live_name) else {
        return;
    };
    if !is_live(&live, id) {
        return;
    }
    let Some(origin) = &live.origin else {
        return;
    };
    let origin_dataset = origin
        .split_once('@')
        .map_or(origin.as_str(), |(dataset, _)| dataset);
    let in_family = origin_dataset
        .strip_prefix(layout.internal.as_str())
        .is_some_and(|rest| rest.starts_with('/'))
        && zfs.dataset_unmounted(origin_dataset).is_ok_and(|dataset| {
            let props = &dataset.user_properties;
            props.get(CONTAINER_ID).map(String::as_str) == Some(id)
                && matches!(
                    props.get(ROLE).map(String::as_str),
                    Some(ROLE_TIMELINE | ROLE_DELETED)
                )
        });
    if !in_family {
        return;
    }
    match zfs.promote(&live.name) {
        Ok(()) => tracing::debug!(container = id, origin = %origin, "promoted the live filesystem"),
        Err(error) => tracing::warn!(container = id, %error, "cannot promote the live filesystem"),
    }
}

/// Destroys the timelines and deleted containers that have no snapshots left, until none is
/// left, and returns how many it destroyed.
///
/// Such a dataset holds only discarded changes. Destroying it can release the last clone of a
/// snapshot marked for deferred destruction, which ZFS then destroys, which can empty another
/// dataset, hence the loop. Datasets named in `protected` (those of operations in progress)
/// are left alone, and so are datasets the daemon did not make.
pub fn collect_garbage(zfs: &Zfs, layout: &Layout, protected: &HashSet<String>) -> usize {
    let mut destroyed = 0;
    loop {
        let Ok(children) = zfs.child_filesystems_unmounted(&layout.internal) else {
            return destroyed;
        };
        let mut progress = false;
        for dataset in children {
            let role = dataset.user_properties.get(ROLE).map(String::as_str);
            if !matches!(role, Some(ROLE_TIMELINE | ROLE_DELETED))
                || protected.contains(&dataset.name)
            {
                continue;
            }
            match zfs.has_snapshots(&dataset.name) {
                Ok(false) => {}
                _ => continue,
            }
            match zfs.destroy(&dataset.name) {
                Ok(()) => {
                    tracing::info!(dataset = %dataset.name, role = role.unwrap_or(""),
                        container = dataset.user_properties.get(CONTAINER_ID).map(String::as_str).unwrap_or(""),
                        "destroyed dataset with no snapshots left");
                    destroyed += 1;
                    progress = true;
                }
                Err(error) => {
                    tracing::warn!(dataset = %dataset.name, %error, "cannot destroy empty dataset")
                }
            }
        }
        if !progress {
            return destroyed;
        }
    }
}
