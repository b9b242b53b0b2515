//! The daemon's implementation of the D-Bus [`Backend`]: access checks, per-container locks,
//! the shutdown gate, and the hand-off of blocking ZFS calls to tokio's blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{Backend, Caller, ContainerInfo, Error, SnapshotInfo};
use tokio::sync::{OwnedMutexGuard, RwLock};
use zbus::zvariant::OwnedValue;

use crate::config::Config;
use crate::snapshots::CreateRequest;
use crate::zfs::Zfs;
use crate::{containers, snapshots};

/// The time source of the daemon. Tests of expiry replace it to move time forward.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Shared state behind every method call.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    zfs: Zfs,
    config: Config,
    clock: Clock,
    /// One lock per container id, so operations on one container run one at a time.
    container_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held shared by every operation and exclusively by shutdown; `true` once shutdown began.
    gate: RwLock<bool>,
}

impl Service {
    pub fn new(zfs: Zfs, config: Config, clock: Clock) -> Service {
        Service {
            inner: Arc::new(Inner {
                zfs,
                config,
                clock,
                container_locks: Mutex::new(HashMap::new()),
                gate: RwLock::new(false),
            }),
        }
    }

    /// Stops accepting operations and waits until the running ones have finished.
    pub async fn shut_down(&self) {
        let mut closed = self.inner.gate.write().await;
        *closed = true;
    }

    async fn lock_container(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .inner
                .container_locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Runs one operation: the shutdown gate, the container's lock when the operation changes
    /// it, and the blocking ZFS work on tokio's blocking pool, with a log record of the outcome.
    async fn run<T, F>(
        &self,
        operation: &'static str,
        container: &str,
        access: Access,
        work: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    {
        let gate = self.inner.gate.read().await;
        if *gate {
            return Err(Error::ShuttingDown(
                "hoody-snapd is shutting down; retry when it is running again".into(),
            ));
        }
        let _lock = match access {
            Access::Change => Some(self.lock_container(container).await),
            Access::Read => None,
        };

        let started = Instant::now();
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || work(&inner))
            .await
            .unwrap_or_else(|panic| {
                Err(Error::Failed(format!(
                    "{operation} failed internally: {panic}"
                )))
            });
        let duration_ms = started.elapsed().as_millis() as u64;
        let container = crate::names::shown(container);
        match &result {
            Ok(_) => tracing::debug!(operation, container, duration_ms, "operation finished"),
            Err(Error::Failed(message)) => {
                tracing::warn!(operation, container, duration_ms, error = %message, "operation failed")
            }
            Err(error) => {
                tracing::info!(operation, container, duration_ms, error = error.short_name(),
                message = %error.message(), "operation rejected")
            }
        }
        drop(gate);
        result
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }
}

/// Whether an operation changes a container, and so must hold its lock.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Change,
}

/// Rejects callers other than root for a method that changes state.
///
/// NOTE: this is the interim policy until polkit authorization is in place: every caller may
/// read, and only root may change anything.
fn require_root(caller: &Caller, method: &str) -> Result<(), Error> {
    if caller.uid == 0 {
        return Ok(());
    }
    tracing::warn!(uid = caller.uid, sender = %caller.bus_name, method, "access denied");
    Err(Error::AccessDenied(format!(
        "{method} requires root; uid {} may only read (list and show); run the command as root",
        caller.uid
    )))
}

impl Backend for Service {
    async fn create_container(
        &self,
        caller: &Caller,
        container: &str,
        project: &str,
    ) -> Result<ContainerInfo, Error> {
        require_root(caller, "CreateContainer")?;
        let (id, project, now) = (container.to_string(), project.to_string(), self.now());
        let created = self
            .run("CreateContainer", container, Access::Change, move |inner| {
                containers::create(&inner.zfs, &inner.config.zfs.root, &id, &project, now)
            })
            .await?;
        tracing::info!(container = %created.id, project = %created.project, dataset = %created.dataset,
            "container created");
        Ok(created)
    }

    async fn list_containers(&self, _caller: &Caller) -> Result<Vec<ContainerInfo>, Error> {
        self.run("ListContainers", "", Access::Read, |inner| {
            containers::list(&inner.zfs, &inner.config.zfs.root)
        })
        .await
    }

    async fn delete_container(&self, caller: &Caller, container: &str) -> Result<(), Error> {
        require_root(caller, "DeleteContainer")?;
        let id = container.to_string();
        self.run("DeleteContainer", container, Access::Change, move |inner| {
            containers::delete(&inner.zfs, &inner.config.zfs.root, &id)
        })
        .await?;
        tracing::info!(container, "container deleted");
        Ok(())
    }

    async fn create_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        alias: &str,
        expiry_days: u32,
    ) -> Result<SnapshotInfo, Error> {
        require_root(caller, "CreateSnapshot")?;
        let (id, alias, now) = (container.to_string(), alias.to_string(), self.now());
        let created = self
            .run("CreateSnapshot", container, Access::Change, move |inner| {
                let request = CreateRequest {
                    container: &id,
                    alias: &alias,
                    expiry_days,
                    max_expiry_days: inner.config.snapshots.max_expiry_days,
                    now,
                };
                snapshots::create(&inner.zfs, &inner.config.zfs.root, &request)
            })
            .await?;
        tracing::info!(container, snapshot = %created.name, alias = created.alias.as_deref().unwrap_or(""),
            expires_at = created.expires_at.as_deref().unwrap_or("never"), "snapshot created");
        Ok(created)
    }

    async fn list_snapshots(
        &self,
        _caller: &Caller,
        container: &str,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        let id = container.to_string();
        self.run("ListSnapshots", container, Access::Read, move |inner| {
            snapshots::list(&inner.zfs, &inner.config.zfs.root, &id)
        })
        .await
    }

    async fn get_snapshot(
        &self,
        _caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        let (id, reference) = (container.to_string(), snapshot.to_string());
        self.run("GetSnapshot", container, Access::Read, move |inner| {
            snapshots::get(&inner.zfs, &inner.config.zfs.root, &id, &reference)
        })
        .await
    }

    async fn restore_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        options: &HashMap<String, OwnedValue>,
    ) -> Result<SnapshotInfo, Error> {
        require_root(caller, "RestoreSnapshot")?;
        if let Some(key) = options.keys().next() {
            return Err(Error::InvalidArgument(format!(
                "unknown restore option \"{}\"; this version accepts no options, pass an empty dictionary",
                crate::names::shown(key)
            )));
        }
        let (id, reference, now) = (container.to_string(), snapshot.to_string(), self.now());
        let restored = self
            .run("RestoreSnapshot", container, Access::Change, move |inner| {
                snapshots::restore(&inner.zfs, &inner.config.zfs.root, &id, &reference, now)
            })
            .await?;
        tracing::info!(container, snapshot = %restored.name, "container restored");
        Ok(restored)
    }

    async fn delete_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        require_root(caller, "DeleteSnapshot")?;
        let (id, reference) = (container.to_string(), snapshot.to_string());
        let deleted = self
            .run("DeleteSnapshot", container, Access::Change, move |inner| {
                snapshots::delete(&inner.zfs, &inner.config.zfs.root, &id, &reference)
            })
            .await?;
        tracing::info!(container, snapshot = %deleted.name, reason = "user", "snapshot deleted");
        Ok(deleted)
    }

    async fn set_alias(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        alias: &str,
    ) -> Result<SnapshotInfo, Error> {
        require_root(caller, "SetAlias")?;
        let (id, reference, alias) = (
            container.to_string(),
            snapshot.to_string(),
            alias.to_string(),
        );
        let changed = self
            .run("SetAlias", container, Access::Change, move |inner| {
                snapshots::set_alias(&inner.zfs, &inner.config.zfs.root, &id, &reference, &alias)
            })
            .await?;
        tracing::info!(container, snapshot = %changed.name, alias = changed.alias.as_deref().unwrap_or(""),
            "snapshot alias changed");
        Ok(changed)
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}
