//! The `icu.hoody.Snapd1.Manager` interface.
//!
//! One object carries every method. Container ids may contain characters that D-Bus object
//! paths cannot (`é`, `.`, `-`), and snapshots come and go by the hundred. Per-container or
//! per-snapshot objects would need an escaping scheme and many object registrations, while
//! plain arguments keep every call a one-liner in `busctl`.

use std::collections::HashMap;
use std::future::Future;

use zbus::fdo::DBusProxy;
use zbus::message::{Flags, Header};
use zbus::names::{BusName, UniqueName};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;
use zbus::{interface, Connection};

use crate::{
    ContainerInfo, Error, ExpiryPreview, ExpiryProblem, JobInfo, SnapshotInfo, StatusInfo,
    DELETE_REASON_USER,
};

/// The peer that sent a method call, as the bus daemon reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Unix user id of the sending process, from `GetConnectionUnixUser`.
    pub uid: u32,
    /// Unique bus name of the sender: the polkit subject, and a field of log records.
    pub bus_name: String,
    /// Whether the caller allows an interactive polkit authentication (the message's
    /// `ALLOW_INTERACTIVE_AUTHORIZATION` flag), such as a password prompt.
    pub interactive: bool,
}

/// The work behind the interface. The daemon implements it on ZFS.
///
/// Every method gets the verified [`Caller`] and decides itself whether the caller may do it.
pub trait Backend: Send + Sync + 'static {
    fn create_container(
        &self,
        caller: &Caller,
        container: &str,
        project: &str,
    ) -> impl Future<Output = Result<ContainerInfo, Error>> + Send;

    fn list_containers(
        &self,
        caller: &Caller,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, Error>> + Send;

    fn delete_container(
        &self,
        caller: &Caller,
        container: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    fn set_owner(
        &self,
        caller: &Caller,
        container: &str,
        uid: u32,
    ) -> impl Future<Output = Result<ContainerInfo, Error>> + Send;

    fn create_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        alias: &str,
        expiry_days: u32,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn create_snapshot_group(
        &self,
        caller: &Caller,
        containers: &[String],
        alias: &str,
        expiry_days: u32,
    ) -> impl Future<Output = Result<Vec<SnapshotInfo>, Error>> + Send;

    fn list_snapshots(
        &self,
        caller: &Caller,
        container: &str,
    ) -> impl Future<Output = Result<Vec<SnapshotInfo>, Error>> + Send;

    fn copy_container(
        &self,
        caller: &Caller,
        source: &str,
        snapshot: &str,
        container: &str,
        project: &str,
        options: &HashMap<String, OwnedValue>,
    ) -> impl Future<Output = Result<u32, Error>> + Send;

    fn get_job(
        &self,
        caller: &Caller,
        job: u32,
    ) -> impl Future<Output = Result<JobInfo, Error>> + Send;

    fn get_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn restore_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        options: &HashMap<String, OwnedValue>,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn delete_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn set_alias(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        alias: &str,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn set_expiry(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        days: u32,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn set_pinned(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        pinned: bool,
    ) -> impl Future<Output = Result<SnapshotInfo, Error>> + Send;

    fn preview_expiry(
        &self,
        caller: &Caller,
        container: &str,
    ) -> impl Future<Output = Result<Vec<ExpiryPreview>, Error>> + Send;

    fn get_expiry_status(
        &self,
        caller: &Caller,
    ) -> impl Future<Output = Result<Vec<ExpiryProblem>, Error>> + Send;

    fn reload(&self, caller: &Caller) -> impl Future<Output = Result<(), Error>> + Send;

    fn get_status(&self, caller: &Caller)
        -> impl Future<Output = Result<StatusInfo, Error>> + Send;

    /// Version of the daemon, for the `Version` property.
    fn version(&self) -> String;
}

/// The manager object served at `/icu/hoody/Snapd1`.
pub struct Manager<B> {
    backend: B,
    /// Unix uid of each caller by unique bus name. The bus never gives a unique name to a
    /// second connection, so an entry stays true for as long as the bus runs.
    callers: std::sync::Mutex<HashMap<String, u32>>,
}

/// Callers remembered at most; the map is emptied when it is full.
const MAX_CALLERS: usize = 4096;

impl<B: Backend> Manager<B> {
    pub fn new(backend: B) -> Self {
        Manager {
            backend,
            callers: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Identifies the caller of a method call, asking the bus for its uid the first time.
    async fn resolve_caller(
        &self,
        header: &Header<'_>,
        connection: &Connection,
    ) -> Result<Caller, Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("the method call has no sender".into()))?;
        let known = self
            .callers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sender.as_str())
            .copied();
        let uid = match known {
            Some(uid) => uid,
            None => {
                let uid = ask_uid(connection, sender).await?;
                let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
                if callers.len() >= MAX_CALLERS {
                    callers.clear();
                }
                callers.insert(sender.to_string(), uid);
                uid
            }
        };
        Ok(Caller {
            uid,
            bus_name: sender.to_string(),
            interactive: header
                .primary()
                .flags()
                .contains(Flags::AllowInteractiveAuth),
        })
    }
}

/// Resolves the sender of a method call to its unix user through the bus daemon.
///
/// The uid comes from the bus, never from an argument, so a caller cannot claim another user.
/// Asks the bus for the unix uid of the connection with a unique name.
async fn ask_uid(connection: &Connection, sender: &UniqueName<'_>) -> Result<u32, Error> {
    let bus = DBusProxy::new(connection).await?;
    bus.get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await
        .map_err(|error| Error::AccessDenied(format!("cannot identify caller {sender}: {error}")))
}

/// Emits a signal and logs a failure, because a lost signal must not fail the call that
/// already changed the pool.
fn log_emit_failure(signal: &str, result: zbus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(signal, %error, "failed to emit signal");
    }
}

#[interface(
    name = "icu.hoody.Snapd1.Manager",
    proxy(
        default_service = "icu.hoody.Snapd1",
        default_path = "/icu/hoody/Snapd1",
        gen_blocking = false
    )
)]
impl<B: Backend> Manager<B> {
    /// Creates a container: a ZFS filesystem under the configured root, tagged with its
    /// container id and project id. Returns the new container.
    async fn create_container(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        project: &str,
    ) -> Result<ContainerInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let created = self
            .backend
            .create_container(&caller, container, project)
            .await?;
        log_emit_failure(
            "ContainerCreated",
            Self::container_created(&emitter, &created.id, &created.project).await,
        );
        Ok(created)
    }

    /// Lists every container under the configured root.
    async fn list_containers(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<ContainerInfo>, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.list_containers(&caller).await
    }

    /// Deletes a container. Its snapshots are kept, listed with `container_deleted`, until they
    /// are deleted or expire.
    async fn delete_container(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
    ) -> Result<(), Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.delete_container(&caller, container).await?;
        log_emit_failure(
            "ContainerDeleted",
            Self::container_deleted(&emitter, container).await,
        );
        Ok(())
    }

    /// Gives a container to the unix user `uid`. The owner may list, show, create and restore
    /// the container's snapshots without being an administrator. Returns the container.
    async fn set_owner(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        uid: u32,
    ) -> Result<ContainerInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let changed = self.backend.set_owner(&caller, container, uid).await?;
        log_emit_failure(
            "ContainerOwnerChanged",
            Self::container_owner_changed(&emitter, container, uid).await,
        );
        Ok(changed)
    }

    /// Creates a snapshot of a container. An empty alias means none, and an expiry of 0 days
    /// means the snapshot is permanent. Returns the new snapshot.
    async fn create_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        alias: &str,
        expiry_days: u32,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let created = self
            .backend
            .create_snapshot(&caller, container, alias, expiry_days)
            .await?;
        let alias = created.alias.as_deref().unwrap_or("");
        log_emit_failure(
            "SnapshotCreated",
            Self::snapshot_created(&emitter, container, &created.name, alias).await,
        );
        Ok(created)
    }

    /// Snapshots several containers atomically, in one ZFS transaction, with one alias and
    /// expiry and a shared group id. Either every snapshot is made or none. Returns them in the
    /// order of the request.
    async fn create_snapshot_group(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        containers: Vec<String>,
        alias: &str,
        expiry_days: u32,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let created = self
            .backend
            .create_snapshot_group(&caller, &containers, alias, expiry_days)
            .await?;
        for snapshot in &created {
            let alias = snapshot.alias.as_deref().unwrap_or("");
            log_emit_failure(
                "SnapshotCreated",
                Self::snapshot_created(&emitter, &snapshot.container, &snapshot.name, alias).await,
            );
        }
        Ok(created)
    }

    /// Copies a snapshot into a new container, optionally in another project (empty for
    /// `default`). Returns a job id at once; JobProgress and JobFinished report the rest.
    /// Options: `clone` (b) makes an instant copy as a ZFS clone instead of a full,
    /// independent copy.
    // The arguments are the method's D-Bus signature plus the three that zbus injects.
    #[allow(clippy::too_many_arguments)]
    async fn copy_container(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        source: &str,
        snapshot: &str,
        container: &str,
        project: &str,
        options: HashMap<String, OwnedValue>,
    ) -> Result<u32, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend
            .copy_container(&caller, source, snapshot, container, project, &options)
            .await
    }

    /// Returns the state of a job.
    async fn get_job(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        job: u32,
    ) -> Result<JobInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.get_job(&caller, job).await
    }

    /// Lists the snapshots of a container, oldest first, including those on superseded
    /// timelines. For a deleted container, lists the snapshots that are kept.
    async fn list_snapshots(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.list_snapshots(&caller, container).await
    }

    /// Returns one snapshot, named by its name or its alias.
    async fn get_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend
            .get_snapshot(&caller, container, snapshot)
            .await
    }

    /// Restores a container to any of its snapshots, named by its name or its alias, keeping
    /// every other snapshot. Options: `force` (b) restores even while processes use the
    /// container's files; `save_before` (b) first snapshots the current state with the alias
    /// `before-restore`. Returns the restored snapshot.
    async fn restore_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        snapshot: &str,
        options: HashMap<String, OwnedValue>,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let restored = self
            .backend
            .restore_snapshot(&caller, container, snapshot, &options)
            .await?;
        log_emit_failure(
            "SnapshotRestored",
            Self::snapshot_restored(&emitter, container, &restored.name).await,
        );
        Ok(restored)
    }

    /// Deletes a snapshot, named by its name or its alias. Returns the deleted snapshot.
    async fn delete_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let deleted = self
            .backend
            .delete_snapshot(&caller, container, snapshot)
            .await?;
        log_emit_failure(
            "SnapshotDeleted",
            Self::snapshot_deleted(&emitter, container, &deleted.name, DELETE_REASON_USER).await,
        );
        Ok(deleted)
    }

    /// Sets the alias of a snapshot, named by its name or its alias. An empty alias clears it.
    /// Returns the changed snapshot.
    async fn set_alias(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        container: &str,
        snapshot: &str,
        alias: &str,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        let changed = self
            .backend
            .set_alias(&caller, container, snapshot, alias)
            .await?;
        let alias = changed.alias.as_deref().unwrap_or("");
        log_emit_failure(
            "SnapshotAliasChanged",
            Self::snapshot_alias_changed(&emitter, container, &changed.name, alias).await,
        );
        Ok(changed)
    }

    /// Sets the expiry of a snapshot to `days` days from now; 0 makes it permanent. Returns the
    /// changed snapshot.
    async fn set_expiry(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
        snapshot: &str,
        days: u32,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend
            .set_expiry(&caller, container, snapshot, days)
            .await
    }

    /// Pins a snapshot with a ZFS hold: nothing deletes it, expiry included, until it is
    /// unpinned. Returns the pinned snapshot.
    async fn pin_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend
            .set_pinned(&caller, container, snapshot, true)
            .await
    }

    /// Removes the pin of a snapshot. Holds made by other tools stay. Returns the snapshot.
    async fn unpin_snapshot(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend
            .set_pinned(&caller, container, snapshot, false)
            .await
    }

    /// Lists what expiry will do with each snapshot of a container (all containers when the
    /// argument is empty), soonest deletion first, and why each other one is kept.
    async fn preview_expiry(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        container: &str,
    ) -> Result<Vec<ExpiryPreview>, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.preview_expiry(&caller, container).await
    }

    /// Lists the snapshots that expiry could not delete, and those whose expiry property is
    /// not a time.
    async fn get_expiry_status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<ExpiryProblem>, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.get_expiry_status(&caller).await
    }

    /// Reads the configuration file again and puts it in force, as SIGHUP does. A file that is
    /// not valid, or that changes the [zfs] table, is refused with InvalidArgument, and the
    /// settings in force stay.
    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.reload(&caller).await
    }

    /// Returns the health view: versions, pool health and free space, counts of containers and
    /// snapshots, the next expiry, failed deletions, and the newest snapshot of each container.
    async fn get_status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<StatusInfo, Error> {
        let caller = self.resolve_caller(&header, connection).await?;
        self.backend.get_status(&caller).await
    }

    /// Version of the running daemon.
    #[zbus(property)]
    fn version(&self) -> String {
        self.backend.version()
    }

    /// Reports the progress of a job, in bytes.
    #[zbus(signal)]
    pub async fn job_progress(
        emitter: &SignalEmitter<'_>,
        job: u32,
        done: u64,
        total: u64,
    ) -> zbus::Result<()>;

    /// Announces the end of a job. On failure, `error` is the D-Bus error name and `message`
    /// gives the reason; on success both are empty.
    #[zbus(signal)]
    pub async fn job_finished(
        emitter: &SignalEmitter<'_>,
        job: u32,
        success: bool,
        container: &str,
        error: &str,
        message: &str,
    ) -> zbus::Result<()>;

    /// Announces that a container was created.
    #[zbus(signal)]
    pub async fn container_created(
        emitter: &SignalEmitter<'_>,
        container: &str,
        project: &str,
    ) -> zbus::Result<()>;

    /// Announces that a container was deleted.
    #[zbus(signal)]
    pub async fn container_deleted(
        emitter: &SignalEmitter<'_>,
        container: &str,
    ) -> zbus::Result<()>;

    /// Announces that a container was given to another owner.
    #[zbus(signal)]
    pub async fn container_owner_changed(
        emitter: &SignalEmitter<'_>,
        container: &str,
        uid: u32,
    ) -> zbus::Result<()>;

    /// Announces that a snapshot was created. The alias is empty when the snapshot has none.
    #[zbus(signal)]
    pub async fn snapshot_created(
        emitter: &SignalEmitter<'_>,
        container: &str,
        name: &str,
        alias: &str,
    ) -> zbus::Result<()>;

    /// Announces that a container was restored to a snapshot.
    #[zbus(signal)]
    pub async fn snapshot_restored(
        emitter: &SignalEmitter<'_>,
        container: &str,
        name: &str,
    ) -> zbus::Result<()>;

    /// Announces that a snapshot was deleted. The reason is "user" for a caller's request and
    /// "expired" for expiry.
    #[zbus(signal)]
    pub async fn snapshot_deleted(
        emitter: &SignalEmitter<'_>,
        container: &str,
        name: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    /// Announces that the alias of a snapshot changed. The alias is empty when it was cleared.
    #[zbus(signal)]
    pub async fn snapshot_alias_changed(
        emitter: &SignalEmitter<'_>,
        container: &str,
        name: &str,
        alias: &str,
    ) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::object_server::Interface;

    /// A backend that rejects every call; enough to build the interface for introspection.
    struct RejectingBackend;

    fn rejected<T>() -> Result<T, Error> {
        Err(Error::Failed("not implemented in tests".into()))
    }

    impl Backend for RejectingBackend {
        async fn create_container(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
        ) -> Result<ContainerInfo, Error> {
            rejected()
        }
        async fn list_containers(&self, _: &Caller) -> Result<Vec<ContainerInfo>, Error> {
            rejected()
        }
        async fn delete_container(&self, _: &Caller, _: &str) -> Result<(), Error> {
            rejected()
        }
        async fn set_owner(&self, _: &Caller, _: &str, _: u32) -> Result<ContainerInfo, Error> {
            rejected()
        }
        async fn reload(&self, _: &Caller) -> Result<(), Error> {
            rejected()
        }
        async fn get_status(&self, _: &Caller) -> Result<StatusInfo, Error> {
            rejected()
        }
        async fn create_snapshot(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: u32,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn list_snapshots(&self, _: &Caller, _: &str) -> Result<Vec<SnapshotInfo>, Error> {
            rejected()
        }
        async fn create_snapshot_group(
            &self,
            _: &Caller,
            _: &[String],
            _: &str,
            _: u32,
        ) -> Result<Vec<SnapshotInfo>, Error> {
            rejected()
        }
        async fn copy_container(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
            _: &HashMap<String, OwnedValue>,
        ) -> Result<u32, Error> {
            rejected()
        }
        async fn get_job(&self, _: &Caller, _: u32) -> Result<JobInfo, Error> {
            rejected()
        }
        async fn set_expiry(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: u32,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn set_pinned(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: bool,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn preview_expiry(&self, _: &Caller, _: &str) -> Result<Vec<ExpiryPreview>, Error> {
            rejected()
        }
        async fn get_expiry_status(&self, _: &Caller) -> Result<Vec<ExpiryProblem>, Error> {
            rejected()
        }
        async fn get_snapshot(&self, _: &Caller, _: &str, _: &str) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn restore_snapshot(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: &HashMap<String, OwnedValue>,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn delete_snapshot(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        async fn set_alias(
            &self,
            _: &Caller,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<SnapshotInfo, Error> {
            rejected()
        }
        fn version(&self) -> String {
            "test".into()
        }
    }

    /// Generates the introspection XML of the interface, in the shipped file's layout.
    fn generated_xml() -> String {
        let manager = Manager::new(RejectingBackend);
        let mut body = String::new();
        manager.introspect_to_writer(&mut body, 2);
        format!(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n{body}</node>\n"
        )
    }

    #[test]
    fn shipped_introspection_matches_code() {
        let generated = generated_xml();
        if std::env::var_os("HOODY_UPDATE_INTROSPECTION").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../config/dbus/icu.hoody.Snapd1.Manager.xml"
            );
            std::fs::write(path, &generated).unwrap();
            return;
        }
        assert_eq!(
            crate::INTROSPECTION_XML,
            generated,
            "config/dbus/icu.hoody.Snapd1.Manager.xml is out of date; regenerate it with \
             HOODY_UPDATE_INTROSPECTION=1 cargo test -p hoody-snapd-contract"
        );
    }
}
