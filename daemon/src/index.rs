//! The index: each container family's datasets and snapshots, kept in memory so that a listing
//! reads a few datasets from ZFS instead of every snapshot.
//!
//! The daemon drops a family from the index after each change it makes to it. Changes made
//! outside the daemon are noticed before the index returns a family: every use opens the family's
//! datasets again (one ioctl each) and compares their `snapshots_changed` property, which ZFS
//! moves when a snapshot of that filesystem is created, destroyed or renamed. The property has
//! whole seconds, so a dataset whose last change is less than [`SETTLE_SECONDS`] older than the
//! moment it was read could change again unseen within the same second, and its snapshots are
//! read again at its next use.
//!
//! A snapshot's `used` grows when its filesystem overwrites blocks that only the newest
//! snapshot still shares. So when a filesystem's `usedbysnapshots` moved, its newest snapshot is
//! read again. Without a new or destroyed snapshot, no other snapshot's `used` changes.
//!
//! Not noticed between reloads: user properties, holds and clones changed by hand with `zfs`,
//! and mounts. A family is read whole again after [`REFRESH_AFTER`] at the latest. Callers that
//! act on a mountpoint, a hold or a clone count read that dataset again first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hoody_snapd_contract::Error;

use crate::containers::bus_error;
use crate::family::{self, Family, Member};
use crate::names::Layout;
use crate::properties::CONTAINER_ID;
use crate::zfs::{Dataset, ErrorKind, Zfs, HAS_SNAPSHOTS_CHANGED};

/// How long a dataset's last snapshot change must lie before the moment it was read for its
/// `snapshots_changed` to prove that nothing changed since: one second for the property's
/// granularity, one for a small step of the clock.
pub const SETTLE_SECONDS: u64 = 2;

/// Age after which a family is read whole again, to pick up changes by hand that
/// `snapshots_changed` does not show.
pub const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// The daemon's index of container families.
#[derive(Default)]
pub struct Index {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    families: HashMap<String, Entry>,
    /// Datasets below the internal root by container id, or `None` until the internal root is
    /// listed again after a change that can add one.
    internal: Option<HashMap<String, Vec<String>>>,
    /// Counts drops, so that a load that overlapped a drop of its family is not stored.
    generation: u64,
    /// Counts drops of `internal`, for the same reason.
    internal_generation: u64,
    dropped_at: HashMap<String, u64>,
}

#[derive(Clone)]
struct Entry {
    family: Arc<Family>,
    /// One stamp per member, live first, in the order of `Family::members`.
    stamps: Vec<Stamp>,
    loaded: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    snapshots_changed: u64,
    used_by_snapshots: u64,
    /// Whether `snapshots_changed` was old enough when read to rule out unseen changes.
    settled: bool,
}

impl Stamp {
    fn of(dataset: &Dataset, read_at: u64) -> Stamp {
        Stamp {
            snapshots_changed: dataset.snapshots_changed,
            used_by_snapshots: dataset.used_by_snapshots,
            settled: settled(dataset.snapshots_changed, read_at),
        }
    }
}

/// Reports whether a `snapshots_changed` value read at `read_at` (seconds since the epoch)
/// proves that no snapshot of the dataset changed after the read.
fn settled(snapshots_changed: u64, read_at: u64) -> bool {
    HAS_SNAPSHOTS_CHANGED && snapshots_changed + SETTLE_SECONDS <= read_at
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Index {
    /// Returns the family of a container id, read from ZFS where the index cannot prove its
    /// copy current. Fails with NotFound when no dataset carries the id.
    pub fn family(&self, zfs: &Zfs, layout: &Layout, id: &str) -> Result<Arc<Family>, Error> {
        let (cached, generation) = {
            let state = self.lock();
            (state.families.get(id).cloned(), state.generation)
        };
        let entry = match cached {
            Some(entry) if entry.loaded.elapsed() < REFRESH_AFTER => {
                match revalidate(zfs, layout, id, &entry)? {
                    Some(fresh) => fresh,
                    None => return Ok(entry.family),
                }
            }
            _ => self.load(zfs, layout, id)?,
        };
        let family = Arc::clone(&entry.family);
        self.store(id, entry, generation);
        Ok(family)
    }

    /// Marks a family's datasets as changed after the daemon created or destroyed snapshots
    /// of it and changed nothing else. Its next use lists the snapshot names again and reads
    /// only the new snapshots and the neighbours of those that are gone.
    pub fn snapshots_changed(&self, id: &str) {
        let mut state = self.lock();
        state.generation += 1;
        let generation = state.generation;
        if let Some(entry) = state.families.get_mut(id) {
            for stamp in &mut entry.stamps {
                stamp.settled = false;
            }
        }
        state.dropped_at.insert(id.to_string(), generation);
    }

    /// Drops a family after the daemon changed its snapshots or properties.
    pub fn changed(&self, id: &str) {
        let mut state = self.lock();
        state.generation += 1;
        let generation = state.generation;
        state.families.remove(id);
        state.dropped_at.insert(id.to_string(), generation);
    }

    /// Drops a family after the daemon added or removed datasets of it below the internal root
    /// (restore, container delete, copy), so the internal root is listed again at the next load.
    pub fn reshaped(&self, id: &str) {
        self.changed(id);
        let mut state = self.lock();
        state.internal = None;
        state.internal_generation += 1;
    }

    /// Returns the container ids of every family: live containers and those below the
    /// internal root. Lists the root and, unless the index has it, the internal root.
    pub fn ids(&self, zfs: &Zfs, layout: &Layout) -> Result<Vec<String>, Error> {
        let live = zfs
            .child_filesystems_unmounted(&layout.root)
            .map_err(|error| {
                bus_error(
                    &format!("cannot list containers under {}", layout.root),
                    &error,
                )
            })?;
        let mut ids: Vec<String> = live
            .iter()
            .filter_map(|dataset| dataset.user_properties.get(CONTAINER_ID).cloned())
            .collect();
        ids.extend(self.internal(zfs, layout)?.into_keys());
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, id: &str, entry: Entry, loaded_in: u64) {
        let mut state = self.lock();
        let dropped = state.dropped_at.get(id).copied().unwrap_or(0);
        if dropped <= loaded_in {
            state.families.insert(id.to_string(), entry);
        }
    }

    /// Returns the datasets below the internal root by container id, listing the internal
    /// root when the index does not have them.
    fn internal(&self, zfs: &Zfs, layout: &Layout) -> Result<HashMap<String, Vec<String>>, Error> {
        if let Some(internal) = &self.lock().internal {
            return Ok(internal.clone());
        }
        let generation = self.lock().internal_generation;
        let mut internal: HashMap<String, Vec<String>> = HashMap::new();
        for dataset in family::internal_children(zfs, layout)? {
            if let Some(id) = dataset.user_properties.get(CONTAINER_ID) {
                internal.entry(id.clone()).or_default().push(dataset.name);
            }
        }
        let mut state = self.lock();
        if state.internal_generation == generation {
            state.internal = Some(internal.clone());
        }
        Ok(internal)
    }

    fn load(&self, zfs: &Zfs, layout: &Layout, id: &str) -> Result<Entry, Error> {
        let internal = self.internal(zfs, layout)?;
        let names = internal.get(id).map(Vec::as_slice).unwrap_or_default();
        load_entry(zfs, layout, id, names)
    }
}

/// Checks a cached family against ZFS. Returns `None` when it is current, or the family read
/// again, whole or in the members that changed.
fn revalidate(zfs: &Zfs, layout: &Layout, id: &str, entry: &Entry) -> Result<Option<Entry>, Error> {
    let family = &entry.family;
    if family.live.is_none() {
        let live = layout
            .container(id)
            .map_err(|e| Error::InvalidArgument(e.0))?;
        if zfs.exists(&live) {
            return reload(zfs, layout, id, entry).map(Some);
        }
    }

    let mut fresh: Option<Family> = None;
    let mut stamps = entry.stamps.clone();
    for (position, (member, stamp)) in family.members().zip(&entry.stamps).enumerate() {
        let read_at = now_seconds();
        let dataset = match zfs.dataset_unmounted(&member.dataset.name) {
            Ok(dataset) => dataset,
            Err(error) if error.kind == ErrorKind::NotFound => {
                return reload(zfs, layout, id, entry).map(Some)
            }
            Err(error) => {
                return Err(bus_error(
                    &format!("cannot read dataset {}", member.dataset.name),
                    &error,
                ))
            }
        };
        if dataset
            .user_properties
            .get(CONTAINER_ID)
            .map(String::as_str)
            != Some(id)
        {
            return reload(zfs, layout, id, entry).map(Some);
        }
        let now = Stamp::of(&dataset, read_at);
        let snapshots_moved = !stamp.settled || now.snapshots_changed != stamp.snapshots_changed;
        let space_moved = now.used_by_snapshots != stamp.used_by_snapshots;
        if !snapshots_moved && !space_moved {
            continue;
        }

        let target = fresh.get_or_insert_with(|| Family::clone(family));
        let slot = target
            .members_mut()
            .nth(position)
            .expect("the stamps follow the members");
        // The read above skipped the mount table, so the member keeps the mountpoint of its
        // last full read.
        let dataset = Dataset {
            mountpoint: member.dataset.mountpoint.clone(),
            ..dataset
        };
        if snapshots_moved {
            refresh_member(zfs, slot, dataset)?;
        } else {
            refresh_newest(zfs, slot, dataset)?;
        }
        stamps[position] = now;
    }

    Ok(fresh.map(|family| Entry {
        family: Arc::new(family),
        stamps,
        loaded: entry.loaded,
    }))
}

/// Reads a member's snapshot names and then only what may have changed: the new snapshots, the
/// neighbours of the snapshots that are gone (whose `used` grows by what they shared with
/// them), and the newest.
fn refresh_member(zfs: &Zfs, member: &mut Member, dataset: Dataset) -> Result<(), Error> {
    let names = zfs.snapshot_names(&dataset.name).map_err(|error| {
        bus_error(
            &format!("cannot list snapshots of {}", dataset.name),
            &error,
        )
    })?;
    let current: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let old = std::mem::take(&mut member.snapshots);
    let mut stale: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (position, snapshot) in old.iter().enumerate() {
        if !current.contains(snapshot.name.as_str()) {
            for neighbour in [position.wrapping_sub(1), position + 1] {
                if let Some(next) = old.get(neighbour) {
                    stale.insert(next.name.clone());
                }
            }
        }
    }
    if let Some(newest) = old.last() {
        stale.insert(newest.name.clone());
    }
    let mut kept: HashMap<String, Dataset> = old
        .into_iter()
        .filter(|snapshot| current.contains(snapshot.name.as_str()))
        .map(|snapshot| (snapshot.name.clone(), snapshot))
        .collect();

    let mut snapshots = Vec::with_capacity(names.len());
    for name in &names {
        match kept.remove(name) {
            Some(snapshot) if !stale.contains(name) => snapshots.push(snapshot),
            _ => match zfs.dataset(name) {
                Ok(read) => snapshots.push(read),
                Err(error) if error.kind == ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(bus_error(&format!("cannot read snapshot {name}"), &error))
                }
            },
        }
    }
    snapshots.sort_by_key(|snapshot| snapshot.createtxg);
    member.dataset = dataset;
    member.snapshots = snapshots;
    Ok(())
}

/// Reads the newest snapshot of a member again, whose `used` may have grown.
fn refresh_newest(zfs: &Zfs, member: &mut Member, dataset: Dataset) -> Result<(), Error> {
    member.dataset = dataset;
    let Some(newest) = member.snapshots.last_mut() else {
        return Ok(());
    };
    match zfs.dataset(&newest.name) {
        Ok(read) => *newest = read,
        Err(error) if error.kind == ErrorKind::NotFound => {
            member.snapshots.pop();
        }
        Err(error) => {
            return Err(bus_error(
                &format!("cannot read snapshot {}", newest.name),
                &error,
            ))
        }
    }
    Ok(())
}

/// Reads a cached family whole again, with the internal datasets it had.
fn reload(zfs: &Zfs, layout: &Layout, id: &str, entry: &Entry) -> Result<Entry, Error> {
    let names: Vec<String> = entry
        .family
        .others
        .iter()
        .map(|member| member.dataset.name.clone())
        .collect();
    load_entry(zfs, layout, id, &names)
}

/// Reads a family whole, with its datasets below the internal root among `internal`, and
/// stamps each member with the time of the read.
fn load_entry(zfs: &Zfs, layout: &Layout, id: &str, internal: &[String]) -> Result<Entry, Error> {
    let read_at = now_seconds();
    let family = Family::load_known(zfs, layout, id, internal)?;
    let stamps = family
        .members()
        .map(|member| Stamp::of(&member.dataset, read_at))
        .collect();
    Ok(Entry {
        family: Arc::new(family),
        stamps,
        loaded: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_in_the_second_of_the_read_is_not_settled() {
        assert!(!settled(1_000, 1_000));
        assert!(!settled(1_000, 1_001));
    }

    #[test]
    fn change_two_seconds_before_the_read_is_settled() {
        assert_eq!(settled(1_000, 1_002), HAS_SNAPSHOTS_CHANGED);
        assert_eq!(settled(0, 1_002), HAS_SNAPSHOTS_CHANGED);
    }

    #[test]
    fn drop_during_load_keeps_the_load_out() {
        let index = Index::default();
        let loaded_in = index.lock().generation;
        index.changed("c1");
        let entry = Entry {
            family: Arc::new(Family {
                id: "c1".into(),
                live: None,
                others: Vec::new(),
            }),
            stamps: Vec::new(),
            loaded: Instant::now(),
        };
        index.store("c1", entry.clone(), loaded_in);
        assert!(!index.lock().families.contains_key("c1"));
        let after_drop = index.lock().generation;
        index.store("c1", entry, after_drop);
        assert!(index.lock().families.contains_key("c1"));
    }
}
