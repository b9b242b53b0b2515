//! Group commit of snapshot creation.
//!
//! Every ZFS change waits for its transaction group to reach disk, so snapshot requests that
//! arrive while one is being committed wait and are then committed together, in one
//! transaction group. Each request keeps its own properties and gets its own result: a request
//! that fails (a name taken, a filesystem gone) does not fail the others.
//!
//! There is no committer thread. The first request that finds no commit running commits
//! everything queued, its own request included, and wakes the others when it is done. One of
//! the requests that queued meanwhile then commits the next group.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use crate::zfs::{BatchError, SnapshotRequest, Zfs, ZfsError};

/// Gathers snapshot requests into groups that ZFS commits in one transaction group.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Default)]
struct State {
    next_ticket: u64,
    queued: Vec<Queued>,
    committing: bool,
    results: HashMap<u64, Result<(), BatchError>>,
}

struct Queued {
    ticket: u64,
    snapshots: Vec<String>,
    properties: Vec<(String, String)>,
}

impl GroupCommit {
    /// Takes snapshots, all with the same user properties, all or none, in a transaction group
    /// that may hold other callers' snapshots. Blocks until that group is committed.
    pub fn snapshot(
        &self,
        zfs: &Zfs,
        snapshots: &[String],
        properties: &[(&str, &str)],
    ) -> Result<(), BatchError> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.push(Queued {
            ticket,
            snapshots: snapshots.to_vec(),
            properties: properties
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        });

        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if state.committing {
                state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.committing = true;
            let group = std::mem::take(&mut state.queued);
            drop(state);
            let started = std::time::Instant::now();
            let results = commit(zfs, &group);
            tracing::debug!(
                requests = group.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "committed a group of snapshot requests"
            );
            state = self.lock();
            state.results.extend(results);
            state.committing = false;
            self.finished.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Commits a group: one request with `lzc_snapshot`, several with one channel program per
/// pool. When the channel program cannot run, each request is committed alone.
fn commit(zfs: &Zfs, group: &[Queued]) -> Vec<(u64, Result<(), BatchError>)> {
    if let [one] = group {
        return vec![(one.ticket, commit_alone(zfs, one))];
    }

    let mut by_pool: HashMap<&str, Vec<&Queued>> = HashMap::new();
    for queued in group {
        by_pool.entry(pool_of(queued)).or_default().push(queued);
    }
    let mut results = Vec::with_capacity(group.len());
    for (pool, queued) in by_pool {
        let properties: Vec<Vec<(&str, &str)>> = queued
            .iter()
            .map(|request| {
                request
                    .properties
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect()
            })
            .collect();
        let requests: Vec<SnapshotRequest<'_>> = queued
            .iter()
            .zip(&properties)
            .map(|(request, properties)| SnapshotRequest {
                snapshots: &request.snapshots,
                properties,
            })
            .collect();
        match zfs.snapshot_requests(pool, &requests) {
            Ok(outcomes) => {
                tracing::debug!(
                    pool,
                    requests = requests.len(),
                    "committed snapshot requests in one transaction group"
                );
                results.extend(queued.iter().map(|request| request.ticket).zip(outcomes));
            }
            Err(error) => {
                log_program_failure(pool, &error);
                results.extend(
                    queued
                        .iter()
                        .map(|request| (request.ticket, commit_alone(zfs, request))),
                );
            }
        }
    }
    results
}

fn commit_alone(zfs: &Zfs, request: &Queued) -> Result<(), BatchError> {
    let properties: Vec<(&str, &str)> = request
        .properties
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    zfs.snapshot(&request.snapshots, &properties)
}

fn log_program_failure(pool: &str, error: &ZfsError) {
    tracing::warn!(pool, %error,
        "cannot commit snapshot requests together in a channel program; committing each alone");
}

/// Returns the pool of a request's snapshots, the first component of the first name.
fn pool_of(request: &Queued) -> &str {
    let first = request.snapshots.first().map_or("", String::as_str);
    first.split(['/', '@']).next().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_first_component() {
        let request = Queued {
            ticket: 0,
            snapshots: vec!["tank/hoody/containers/web@snap-1".into()],
            properties: Vec::new(),
        };
        assert_eq!(pool_of(&request), "tank");
    }
}
