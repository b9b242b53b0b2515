//! The daemon's implementation of the D-Bus [`Backend`]: access checks, per-container locks,
//! the shutdown gate, background jobs, and the hand-off of blocking ZFS calls to tokio's
//! blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{
    Backend, Caller, ContainerInfo, Error, ExpiryPreview, ExpiryProblem, JobInfo, Manager,
    SnapshotInfo, StatusInfo, DELETE_REASON_EXPIRED, JOB_FAILED, JOB_RUNNING, JOB_SUCCEEDED,
};
use tokio::sync::{OwnedMutexGuard, OwnedRwLockReadGuard, RwLock};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedValue, Value};

use crate::access::{self, Action, Authority, Decision};
use crate::commit::GroupCommit;
use crate::config::Config;
use crate::copy::{CopyRequest, Progress};
use crate::expiry::{self, Seen, Verdict};
use crate::index::Index;
use crate::names::{shown, Layout};
use crate::restore::RestoreRequest;
use crate::snapshots::CreateRequest;
use crate::zfs::Zfs;
use crate::{containers, copy, properties, restore, snapshots, status};

/// The time source of the daemon. Tests of expiry replace it to move time forward.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How often a running job reports its progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Shared state behind every method call.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    zfs: Zfs,
    /// Families of containers kept in memory for listings; see [`Index`].
    index: Index,
    /// Gathers concurrent snapshot creates into shared transaction groups.
    commit: GroupCommit,
    /// The settings in force; `Reload` and SIGHUP replace them.
    config: std::sync::RwLock<Arc<Config>>,
    config_path: PathBuf,
    layout: Layout,
    clock: Clock,
    /// One lock per container id, so operations on one container run one at a time.
    container_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held shared by every operation and job and exclusively by shutdown; `true` once
    /// shutdown began.
    gate: Arc<RwLock<bool>>,
    /// Emits signals from background jobs; set once the bus connection exists.
    emitter: OnceLock<SignalEmitter<'static>>,
    jobs: Mutex<HashMap<u32, Arc<Job>>>,
    next_job: AtomicU32,
    /// Wakes the expiry task early, after a change that may move the next deadline.
    expiry_wake: tokio::sync::Notify,
    /// When the expiry task plans to wake next, by the daemon's clock.
    expiry_planned: Mutex<Option<DateTime<Utc>>>,
    /// Snapshots that expiry could not delete or cannot judge, by (container, snapshot name).
    expiry_problems: Mutex<BTreeMap<(String, String), Problem>>,
    authority: Authority,
}

impl Inner {
    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One entry of the expiry status.
#[derive(Clone, Debug)]
struct Problem {
    reason: String,
    since: DateTime<Utc>,
    attempts: u32,
    /// When a failed delete may be tried again; `None` for problems that no retry fixes.
    retry_at: Option<DateTime<Utc>>,
}

impl Problem {
    /// Builds the problem of an expired snapshot that a hold keeps, and logs it when `previous`
    /// (the problem of the last sweep) is `None`. `key` is the container and the snapshot name.
    fn held(
        key: &(String, String),
        expires: DateTime<Utc>,
        previous: Option<&Problem>,
        now: DateTime<Utc>,
    ) -> Problem {
        if previous.is_none() {
            tracing::warn!(container = %key.0, snapshot = %key.1, expires_at = %properties::format_time(expires),
                "expired snapshot is held; keeping it until the hold is released");
        }
        Problem {
            reason: "held".into(),
            since: previous.map_or(now, |p| p.since),
            attempts: 0,
            retry_at: None,
        }
    }
}

/// A background job and its progress.
struct Job {
    /// Unix uid of the caller who started the job; only they and readers of all may see it.
    uid: u32,
    info: Mutex<JobInfo>,
    progress: Progress,
}

/// Whether an operation changes containers, and so must hold their locks.
enum Access {
    Read,
    Change(Vec<String>),
    /// Creates snapshots of these containers and changes nothing else of them.
    Snapshot(Vec<String>),
}

impl Service {
    pub fn new(
        zfs: Zfs,
        config: Config,
        config_path: PathBuf,
        layout: Layout,
        clock: Clock,
    ) -> Service {
        Service {
            inner: Arc::new(Inner {
                zfs,
                index: Index::default(),
                commit: GroupCommit::default(),
                config: std::sync::RwLock::new(Arc::new(config)),
                config_path,
                layout,
                clock,
                container_locks: Mutex::new(HashMap::new()),
                gate: Arc::new(RwLock::new(false)),
                emitter: OnceLock::new(),
                jobs: Mutex::new(HashMap::new()),
                next_job: AtomicU32::new(1),
                expiry_wake: tokio::sync::Notify::new(),
                expiry_planned: Mutex::new(None),
                expiry_problems: Mutex::new(BTreeMap::new()),
                authority: Authority::default(),
            }),
        }
    }

    /// Gives the service the connection's emitter for signals of background jobs.
    pub fn set_emitter(&self, emitter: SignalEmitter<'static>) {
        let _ = self.inner.emitter.set(emitter);
    }

    /// Gives the service the bus connection for its polkit checks, and logs whether polkit
    /// is available.
    pub async fn set_connection(&self, connection: zbus::Connection) {
        self.inner.authority.set_connection(connection);
        match self.inner.authority.available().await {
            Ok(()) => {
                tracing::info!("polkit is available; callers other than root are checked with it")
            }
            Err(reason) => tracing::warn!(%reason,
                "polkit is not running; only root may call hoody-snapd until it runs"),
        }
    }

    /// Reads the configuration file again and puts it in force. A file that is not valid, or
    /// that changes what needs a restart, is refused, and the settings in force stay.
    pub fn reload_config(&self) -> Result<(), Error> {
        let path = &self.inner.config_path;
        let fresh = Config::load(path).map_err(|error| {
            Error::InvalidArgument(format!("{error}; the settings in force are kept"))
        })?;
        let current = self.inner.config();
        if fresh.zfs != current.zfs {
            // The Ansible role's reload handler restarts the service on "needs a restart".
            return Err(Error::InvalidArgument(format!(
                "{}: the [zfs] table changed, which needs a restart (systemctl restart \
                 hoody-snapd); the settings in force are kept",
                path.display()
            )));
        }
        if fresh.log != current.log {
            tracing::warn!(path = %path.display(), "the [log] table changed; it takes effect at the next start");
        }
        *self.inner.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        self.wake_expiry();
        tracing::info!(path = %path.display(), "configuration reloaded");
        Ok(())
    }

    /// Lets the call through when the caller may do `action` on `container` (empty for none):
    /// root always, the owner for the actions owners have, anyone else when polkit agrees.
    async fn authorize(
        &self,
        caller: &Caller,
        method: &str,
        action: Action,
        container: &str,
    ) -> Result<(), Error> {
        if caller.uid == 0 {
            return Ok(());
        }
        let owns = action.allowed_to_owner()
            && !container.is_empty()
            && self.owner_of(container).await == Some(caller.uid);
        let decision = if owns {
            // Owners do not need polkit's decision, but while polkit is missing only root may
            // call at all.
            match self.inner.authority.available().await {
                Ok(()) => return Ok(()),
                Err(reason) => Decision::Unavailable(reason),
            }
        } else {
            let details: Vec<(&str, &str)> = if container.is_empty() {
                Vec::new()
            } else {
                vec![("container", container)]
            };
            match self.inner.authority.check(caller, action, &details).await {
                Decision::Allowed => return Ok(()),
                denied => denied,
            }
        };
        tracing::warn!(uid = caller.uid, sender = %caller.bus_name, method, action = action.id(),
            container = %shown(container), decision = ?decision, "access denied");
        Err(access::denied_error(
            method, caller, action, container, &decision,
        ))
    }

    /// Checks whether the caller may read every container, not only their own. Fails with
    /// AccessDenied for callers other than root while polkit is not available.
    async fn reads_all(&self, caller: &Caller, method: &str) -> Result<bool, Error> {
        if caller.uid == 0 {
            return Ok(true);
        }
        // A listing never prompts, because a caller without the right still gets their own.
        let quiet = Caller {
            interactive: false,
            ..caller.clone()
        };
        match self.inner.authority.check(&quiet, Action::Read, &[]).await {
            Decision::Allowed => Ok(true),
            Decision::Denied { .. } => Ok(false),
            unavailable @ Decision::Unavailable(_) => {
                tracing::warn!(uid = caller.uid, sender = %caller.bus_name, method,
                    action = Action::Read.id(), decision = ?unavailable, "access denied");
                Err(access::denied_error(
                    method,
                    caller,
                    Action::Read,
                    "",
                    &unavailable,
                ))
            }
        }
    }

    /// Reads the owner of a container from the pool; `None` when the container does not exist.
    async fn owner_of(&self, container: &str) -> Option<u32> {
        let (inner, id) = (Arc::clone(&self.inner), container.to_string());
        tokio::task::spawn_blocking(move || containers::owner_of(&inner.zfs, &inner.layout, &id))
            .await
            .ok()
            .flatten()
    }

    /// Keeps the items of the containers a caller owns, unless the caller reads all.
    async fn visible<T>(
        &self,
        caller: &Caller,
        method: &str,
        items: Vec<T>,
        container: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, Error> {
        if self.reads_all(caller, method).await? {
            return Ok(items);
        }
        let mut owners: HashMap<String, Option<u32>> = HashMap::new();
        let mut kept = Vec::new();
        for item in items {
            let id = container(&item).to_string();
            let owner = match owners.get(&id) {
                Some(owner) => *owner,
                None => {
                    let owner = self.owner_of(&id).await;
                    owners.insert(id, owner);
                    owner
                }
            };
            if owner == Some(caller.uid) {
                kept.push(item);
            }
        }
        Ok(kept)
    }

    /// Stops accepting operations and waits until the running ones and the jobs have finished.
    pub async fn shut_down(&self) {
        let mut closed = self.inner.gate.write().await;
        *closed = true;
    }

    async fn enter(&self) -> Result<OwnedRwLockReadGuard<bool>, Error> {
        let gate = Arc::clone(&self.inner.gate).read_owned().await;
        if *gate {
            return Err(Error::ShuttingDown(
                "hoody-snapd is shutting down; retry when it is running again".into(),
            ));
        }
        Ok(gate)
    }

    /// Locks containers in sorted order, so two requests for the same set never deadlock.
    async fn lock_containers(&self, ids: &[String]) -> Vec<OwnedMutexGuard<()>> {
        let sorted: BTreeSet<&String> = ids.iter().collect();
        let mut guards = Vec::with_capacity(sorted.len());
        for id in sorted {
            let lock = {
                let mut locks = self
                    .inner
                    .container_locks
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                locks.entry(id.clone()).or_default().clone()
            };
            guards.push(lock.lock_owned().await);
        }
        guards
    }

    /// Runs one operation: the shutdown gate, the locks of the containers it changes, and the
    /// blocking ZFS work on tokio's blocking pool, with a log record of the outcome.
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
        let gate = self.enter().await?;
        let _locks = match &access {
            Access::Change(ids) | Access::Snapshot(ids) => self.lock_containers(ids).await,
            Access::Read => Vec::new(),
        };

        let started = Instant::now();
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || {
            let result = work(&inner);
            match &access {
                Access::Change(ids) => ids.iter().for_each(|id| inner.index.changed(id)),
                Access::Snapshot(ids) => {
                    ids.iter().for_each(|id| inner.index.snapshots_changed(id))
                }
                Access::Read => {}
            }
            result
        })
        .await
        .unwrap_or_else(|panic| {
            Err(Error::Failed(format!(
                "{operation} failed internally: {panic}"
            )))
        });
        log_outcome(operation, container, started, &result);
        drop(gate);
        result
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    fn emitter(&self) -> Option<&SignalEmitter<'static>> {
        self.inner.emitter.get()
    }

    /// Starts a copy job and returns its id at once.
    async fn start_copy(&self, request: OwnedCopyRequest) -> Result<u32, Error> {
        let gate = self.enter().await?;
        let (inner, check) = (Arc::clone(&self.inner), request.clone());
        tokio::task::spawn_blocking(move || {
            copy::prepare(&inner.zfs, &inner.layout, &check.borrow()).map(|_| ())
        })
        .await
        .unwrap_or_else(|panic| {
            Err(Error::Failed(format!(
                "copy check failed internally: {panic}"
            )))
        })?;

        let id = self.inner.next_job.fetch_add(1, Ordering::Relaxed);
        let job = Arc::new(Job {
            uid: request.owner,
            info: Mutex::new(JobInfo {
                id,
                kind: "copy".into(),
                state: JOB_RUNNING.into(),
                container: request.container.clone(),
                ..JobInfo::default()
            }),
            progress: Progress::default(),
        });
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&job));
        tracing::info!(job = id, container = %request.container, source = %request.source,
            snapshot = %request.snapshot, clone = request.clone, "copy started");

        let service = self.clone();
        tokio::spawn(async move { service.run_copy(gate, id, job, request).await });
        Ok(id)
    }

    async fn run_copy(
        &self,
        gate: OwnedRwLockReadGuard<bool>,
        id: u32,
        job: Arc<Job>,
        request: OwnedCopyRequest,
    ) {
        let locks = self
            .lock_containers(&[request.source.clone(), request.container.clone()])
            .await;
        let started = Instant::now();
        let (inner, work_job, work_request) =
            (Arc::clone(&self.inner), Arc::clone(&job), request.clone());
        let mut task = tokio::task::spawn_blocking(move || {
            copy::copy(
                &inner.zfs,
                &inner.layout,
                &work_request.borrow(),
                &work_job.progress,
            )
        });

        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        let result = loop {
            tokio::select! {
                result = &mut task => {
                    break result.unwrap_or_else(|panic| Err(Error::Failed(format!("copy failed internally: {panic}"))));
                }
                _ = ticker.tick() => self.report_progress(id, &job).await,
            }
        };
        // A copy adds a container and may add a clone of the source's snapshot, which the
        // index cannot see.
        self.inner.index.reshaped(&request.container);
        self.inner.index.reshaped(&request.source);
        drop(locks);
        log_outcome("CopyContainer", &request.container, started, &result);
        self.report_progress(id, &job).await;
        self.finish_job(id, &job, &request.container, result).await;
        drop(gate);
    }

    async fn report_progress(&self, id: u32, job: &Job) {
        let done = job.progress.done.load(Ordering::Relaxed);
        let total = job.progress.total.load(Ordering::Relaxed);
        {
            let mut info = job.info.lock().unwrap_or_else(|p| p.into_inner());
            info.done = done;
            info.total = total;
        }
        if let Some(emitter) = self.emitter() {
            emit(
                "JobProgress",
                Manager::<Service>::job_progress(emitter, id, done, total).await,
            );
        }
    }

    async fn finish_job(
        &self,
        id: u32,
        job: &Job,
        container: &str,
        result: Result<ContainerInfo, Error>,
    ) {
        let (success, error, message) = match &result {
            Ok(_) => (true, String::new(), String::new()),
            Err(error) => (
                false,
                format!(
                    "{}.{}",
                    hoody_snapd_contract::ERROR_PREFIX,
                    error.short_name()
                ),
                error.message(),
            ),
        };
        {
            let mut info = job.info.lock().unwrap_or_else(|p| p.into_inner());
            info.state = if success { JOB_SUCCEEDED } else { JOB_FAILED }.into();
            info.error = (!success).then(|| error.clone());
            info.message = (!success).then(|| message.clone());
        }
        let Some(emitter) = self.emitter() else {
            return;
        };
        if let Ok(created) = &result {
            emit(
                "ContainerCreated",
                Manager::<Service>::container_created(emitter, &created.id, &created.project).await,
            );
        }
        emit(
            "JobFinished",
            Manager::<Service>::job_finished(emitter, id, success, container, &error, &message)
                .await,
        );
    }
}

impl Service {
    /// Starts the expiry task: a sweep now, then one at each next deadline, at least every
    /// `expiry.max_sleep_seconds`, and early after changes that may move the deadline.
    pub fn start_expiry(&self) {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let next = service.sweep().await;
                let max_sleep =
                    Duration::from_secs(u64::from(service.inner.config().expiry.max_sleep_seconds));
                let now = service.now();
                let sleep = next
                    .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO).min(max_sleep))
                    .unwrap_or(max_sleep);
                let planned = chrono::Duration::from_std(sleep)
                    .ok()
                    .map(|sleep| now + sleep);
                *service
                    .inner
                    .expiry_planned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = planned;
                tokio::select! {
                    _ = tokio::time::sleep(sleep) => {}
                    _ = service.inner.expiry_wake.notified() => {}
                }
                if *service.inner.gate.read().await {
                    return;
                }
            }
        });
    }

    fn wake_expiry(&self) {
        self.inner.expiry_wake.notify_one();
    }

    /// Wakes the expiry task early when a snapshot now expires at `at` (RFC 3339), before the
    /// task's planned wake. A later expiry is seen at that wake anyway.
    fn wake_expiry_for(&self, at: Option<&str>) {
        let Some(at) = at.and_then(properties::parse_time) else {
            return;
        };
        let planned = *self
            .inner
            .expiry_planned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if planned.is_none_or(|planned| at < planned) {
            self.wake_expiry();
        }
    }

    /// Runs one sweep and returns when the next one is due.
    async fn sweep(&self) -> Option<DateTime<Utc>> {
        let gate = self.enter().await.ok()?;
        let started = Instant::now();
        let now = self.now();
        let inner = Arc::clone(&self.inner);
        let seen = tokio::task::spawn_blocking(move || {
            expiry::scan(&inner.zfs, &inner.layout, &inner.index, now)
        })
        .await
        .unwrap_or_default();

        let old = self
            .inner
            .expiry_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut problems = BTreeMap::new();
        let mut next: Option<DateTime<Utc>> = None;
        let mut due: Vec<(Seen, DateTime<Utc>)> = Vec::new();
        let retry_at =
            now + chrono::Duration::seconds(i64::from(self.inner.config().expiry.retry_seconds));
        for item in seen {
            let key = (
                item.container.clone(),
                snapshots::short_name(&item.snapshot.name).to_string(),
            );
            let previous = old.get(&key);
            let since = previous.map_or(now, |p| p.since);
            match expiry::verdict(&item.snapshot, now) {
                Verdict::Due(at) => match previous.and_then(|p| p.retry_at) {
                    Some(retry_at) if retry_at > now => {
                        next = earliest(next, retry_at);
                        problems.insert(key, previous.cloned().expect("retry_at came from it"));
                    }
                    _ => due.push((item, at)),
                },
                Verdict::NotYetDue(at) => next = earliest(next, at),
                Verdict::Held(at) if at <= now => {
                    // A hold released with `zfs release` wakes nothing, so the sweep reads it again then.
                    next = earliest(next, retry_at);
                    let problem = Problem::held(&key, at, previous, now);
                    problems.insert(key, problem);
                }
                Verdict::InvalidExpiry(value) => {
                    if previous.is_none() {
                        tracing::warn!(container = %key.0, snapshot = %key.1, value = %value,
                            "snapshot has an expiry that is not a time; expiry never deletes it");
                    }
                    let reason = format!("invalid expiry \"{}\"", crate::names::shown(&value));
                    problems.insert(
                        key,
                        Problem {
                            reason,
                            since,
                            attempts: 0,
                            retry_at: None,
                        },
                    );
                }
                _ => {}
            }
        }

        if !due.is_empty() {
            let ids: Vec<String> = due.iter().map(|(item, _)| item.container.clone()).collect();
            let locks = self.lock_containers(&ids).await;
            let inner = Arc::clone(&self.inner);
            let (deleted, skipped, held) = tokio::task::spawn_blocking(move || {
                // Another call may have changed a snapshot since the scan, so each is read again
                // under the lock and deleted only if it is still due. One held by hand since the
                // index last read it is reported as held.
                let mut still_due: Vec<(Seen, DateTime<Utc>)> = Vec::new();
                let mut held = Vec::new();
                for (item, _) in due {
                    let Ok(fresh) = inner.zfs.dataset(&item.snapshot.name) else {
                        continue;
                    };
                    match expiry::verdict(&fresh, now) {
                        Verdict::Due(at) => still_due.push((
                            Seen {
                                container: item.container,
                                snapshot: fresh,
                            },
                            at,
                        )),
                        Verdict::Held(at) if at <= now => {
                            let name = snapshots::short_name(&fresh.name).to_string();
                            held.push(((item.container, name), at));
                        }
                        _ => {}
                    }
                }
                let (deleted, skipped) = expiry::delete_due(&inner.zfs, still_due);
                for snapshot in &deleted {
                    inner.index.snapshots_changed(&snapshot.container);
                }
                crate::family::collect_garbage(&inner.zfs, &inner.layout, &Default::default());
                (deleted, skipped, held)
            })
            .await
            .unwrap_or_default();
            drop(locks);

            for (key, at) in held {
                next = earliest(next, retry_at);
                let problem = Problem::held(&key, at, old.get(&key), now);
                problems.insert(key, problem);
            }

            for failure in skipped {
                let key = (failure.container.clone(), failure.name.clone());
                let previous = old.get(&key);
                tracing::warn!(container = %failure.container, snapshot = %failure.name, reason = %failure.reason,
                    "cannot delete expired snapshot; trying again later");
                next = earliest(next, retry_at);
                problems.insert(
                    key,
                    Problem {
                        reason: failure.reason,
                        since: previous.map_or(now, |p| p.since),
                        attempts: previous.map_or(0, |p| p.attempts) + 1,
                        retry_at: Some(retry_at),
                    },
                );
            }
            tracing::info!(
                deleted = deleted.len(),
                failed = problems.values().filter(|p| p.retry_at.is_some()).count(),
                duration_ms = started.elapsed().as_millis() as u64,
                "expiry sweep finished"
            );
            for snapshot in &deleted {
                tracing::info!(container = %snapshot.container, snapshot = %snapshot.name,
                    expires_at = %properties::format_time(snapshot.expires), reason = DELETE_REASON_EXPIRED,
                    "snapshot deleted");
                if let Some(emitter) = self.emitter() {
                    emit(
                        "SnapshotDeleted",
                        Manager::<Service>::snapshot_deleted(
                            emitter,
                            &snapshot.container,
                            &snapshot.name,
                            DELETE_REASON_EXPIRED,
                        )
                        .await,
                    );
                }
            }
        }
        *self
            .inner
            .expiry_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = problems;
        drop(gate);
        next
    }
}

fn earliest(current: Option<DateTime<Utc>>, candidate: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(current.map_or(candidate, |at| at.min(candidate)))
}

/// A copy request with owned strings, for background jobs.
#[derive(Clone)]
struct OwnedCopyRequest {
    source: String,
    snapshot: String,
    container: String,
    project: String,
    owner: u32,
    clone: bool,
    now: DateTime<Utc>,
}

impl OwnedCopyRequest {
    fn borrow(&self) -> CopyRequest<'_> {
        CopyRequest {
            source_container: &self.source,
            snapshot: &self.snapshot,
            container: &self.container,
            project: &self.project,
            owner: self.owner,
            clone: self.clone,
            now: self.now,
        }
    }
}

fn emit(signal: &str, result: zbus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(signal, %error, "failed to emit signal");
    }
}

fn log_outcome<T>(operation: &str, container: &str, started: Instant, result: &Result<T, Error>) {
    let duration_ms = started.elapsed().as_millis() as u64;
    let container = shown(container);
    match result {
        Ok(_) => tracing::debug!(operation, container, duration_ms, "operation finished"),
        Err(Error::Failed(message)) => {
            tracing::warn!(operation, container, duration_ms, error = %message, "operation failed")
        }
        Err(error) => tracing::info!(operation, container, duration_ms, error = error.short_name(),
            reason = %error.message(), "operation rejected"),
    }
}

/// Reads the boolean options of a method; any other key, or a value of another type, is
/// rejected.
fn bool_options<const N: usize>(
    method: &str,
    options: &HashMap<String, OwnedValue>,
    known: [&str; N],
) -> Result<[bool; N], Error> {
    let mut values = [false; N];
    for (key, value) in options {
        let Some(index) = known.iter().position(|name| name == key) else {
            return Err(Error::InvalidArgument(format!(
                "unknown {method} option \"{}\"; the options are {}",
                shown(key),
                known.join(", ")
            )));
        };
        values[index] = match &**value {
            Value::Bool(flag) => *flag,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "{method} option {key} must be a boolean (b), not {}",
                    other.value_signature()
                )))
            }
        };
    }
    Ok(values)
}

fn change(id: &str) -> Access {
    Access::Change(vec![id.to_string()])
}

impl Backend for Service {
    async fn create_container(
        &self,
        caller: &Caller,
        container: &str,
        project: &str,
    ) -> Result<ContainerInfo, Error> {
        self.authorize(
            caller,
            "CreateContainer",
            Action::ManageContainers,
            container,
        )
        .await?;
        let (id, project, now) = (container.to_string(), project.to_string(), self.now());
        let owner = caller.uid;
        let created = self
            .run(
                "CreateContainer",
                container,
                change(container),
                move |inner| {
                    containers::create(&inner.zfs, &inner.layout, &id, &project, owner, now)
                },
            )
            .await?;
        tracing::info!(container = %created.id, project = %created.project, dataset = %created.dataset,
            "container created");
        Ok(created)
    }

    async fn list_containers(&self, caller: &Caller) -> Result<Vec<ContainerInfo>, Error> {
        let all = self.reads_all(caller, "ListContainers").await?;
        let listed = self
            .run("ListContainers", "", Access::Read, |inner| {
                containers::list(&inner.zfs, &inner.layout, &inner.index)
            })
            .await?;
        Ok(listed
            .into_iter()
            .filter(|container| all || container.owner == caller.uid)
            .collect())
    }

    async fn delete_container(&self, caller: &Caller, container: &str) -> Result<(), Error> {
        self.authorize(
            caller,
            "DeleteContainer",
            Action::ManageContainers,
            container,
        )
        .await?;
        let (id, now) = (container.to_string(), self.now());
        self.run(
            "DeleteContainer",
            container,
            change(container),
            move |inner| {
                let result = containers::delete(&inner.zfs, &inner.layout, &id, now);
                inner.index.reshaped(&id);
                result
            },
        )
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
        self.authorize(caller, "CreateSnapshot", Action::CreateSnapshot, container)
            .await?;
        let mut created = self
            .create_snapshots(
                "CreateSnapshot",
                vec![container.to_string()],
                alias,
                expiry_days,
                None,
            )
            .await?;
        Ok(created.remove(0))
    }

    async fn create_snapshot_group(
        &self,
        caller: &Caller,
        containers: &[String],
        alias: &str,
        expiry_days: u32,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        if containers.is_empty() {
            return Err(Error::InvalidArgument(
                "the group names no container; name at least one".into(),
            ));
        }
        for container in containers {
            self.authorize(
                caller,
                "CreateSnapshotGroup",
                Action::CreateSnapshot,
                container,
            )
            .await?;
        }
        let now = self.now();
        let group = format!("{:x}-{:x}", now.timestamp_millis(), std::process::id());
        self.create_snapshots(
            "CreateSnapshotGroup",
            containers.to_vec(),
            alias,
            expiry_days,
            Some(group),
        )
        .await
    }

    async fn list_snapshots(
        &self,
        caller: &Caller,
        container: &str,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        self.authorize(caller, "ListSnapshots", Action::Read, container)
            .await?;
        let id = container.to_string();
        self.run("ListSnapshots", container, Access::Read, move |inner| {
            snapshots::list(&inner.zfs, &inner.layout, &inner.index, &id)
        })
        .await
    }

    async fn get_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        self.authorize(caller, "GetSnapshot", Action::Read, container)
            .await?;
        let (id, reference) = (container.to_string(), snapshot.to_string());
        self.run("GetSnapshot", container, Access::Read, move |inner| {
            snapshots::get(&inner.zfs, &inner.layout, &inner.index, &id, &reference)
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
        self.authorize(
            caller,
            "RestoreSnapshot",
            Action::RestoreSnapshot,
            container,
        )
        .await?;
        let [force, save_before] =
            bool_options("RestoreSnapshot", options, ["force", "save_before"])?;
        let (id, reference, now) = (container.to_string(), snapshot.to_string(), self.now());
        let restored = self
            .run(
                "RestoreSnapshot",
                container,
                change(container),
                move |inner| {
                    let request = RestoreRequest {
                        container: &id,
                        reference: &reference,
                        force,
                        save_before,
                        max_expiry_days: inner.config().snapshots.max_expiry_days,
                        now,
                    };
                    restore::restore(
                        &inner.zfs,
                        &inner.layout,
                        &inner.index,
                        &inner.commit,
                        &inner.config().restore,
                        &request,
                    )
                },
            )
            .await?;
        if let (Some(saved), Some(emitter)) = (&restored.saved, self.emitter()) {
            let alias = saved.alias.as_deref().unwrap_or("");
            emit(
                "SnapshotCreated",
                Manager::<Service>::snapshot_created(emitter, container, &saved.name, alias).await,
            );
        }
        tracing::info!(container, snapshot = %restored.snapshot.name, force, save_before, "container restored");
        Ok(restored.snapshot)
    }

    async fn delete_snapshot(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
    ) -> Result<SnapshotInfo, Error> {
        self.authorize(caller, "DeleteSnapshot", Action::DeleteSnapshot, container)
            .await?;
        let (id, reference) = (container.to_string(), snapshot.to_string());
        let deleted = self
            .run(
                "DeleteSnapshot",
                container,
                change(container),
                move |inner| {
                    snapshots::delete(&inner.zfs, &inner.layout, &inner.index, &id, &reference)
                },
            )
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
        self.authorize(caller, "SetAlias", Action::ChangeSnapshot, container)
            .await?;
        let (id, reference, alias) = (
            container.to_string(),
            snapshot.to_string(),
            alias.to_string(),
        );
        let changed = self
            .run("SetAlias", container, change(container), move |inner| {
                snapshots::set_alias(&inner.zfs, &inner.layout, &id, &reference, &alias)
            })
            .await?;
        tracing::info!(container, snapshot = %changed.name, alias = changed.alias.as_deref().unwrap_or(""),
            "snapshot alias changed");
        Ok(changed)
    }

    async fn copy_container(
        &self,
        caller: &Caller,
        source: &str,
        snapshot: &str,
        container: &str,
        project: &str,
        options: &HashMap<String, OwnedValue>,
    ) -> Result<u32, Error> {
        self.authorize(caller, "CopyContainer", Action::Read, source)
            .await?;
        self.authorize(caller, "CopyContainer", Action::ManageContainers, container)
            .await?;
        let [clone] = bool_options("CopyContainer", options, ["clone"])?;
        self.start_copy(OwnedCopyRequest {
            source: source.to_string(),
            snapshot: snapshot.to_string(),
            container: container.to_string(),
            project: project.to_string(),
            owner: caller.uid,
            clone,
            now: self.now(),
        })
        .await
    }

    async fn get_job(&self, caller: &Caller, job: u32) -> Result<JobInfo, Error> {
        let found = {
            let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.get(&job).cloned()
        };
        // A job of another user is reported as missing, so job ids reveal nothing.
        let visible = match &found {
            Some(found) if found.uid == caller.uid => true,
            Some(_) => self.reads_all(caller, "GetJob").await?,
            None => false,
        };
        match found {
            Some(found) if visible => {
                Ok(found.info.lock().unwrap_or_else(|p| p.into_inner()).clone())
            }
            _ => Err(Error::NotFound(format!(
                "job {job} not found; job ids are valid until the daemon restarts"
            ))),
        }
    }

    async fn set_expiry(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        days: u32,
    ) -> Result<SnapshotInfo, Error> {
        self.authorize(caller, "SetExpiry", Action::ChangeSnapshot, container)
            .await?;
        let (id, reference, now) = (container.to_string(), snapshot.to_string(), self.now());
        let changed = self
            .run("SetExpiry", container, change(container), move |inner| {
                let max = inner.config().snapshots.max_expiry_days;
                snapshots::set_expiry(&inner.zfs, &inner.layout, &id, &reference, days, max, now)
            })
            .await?;
        tracing::info!(container, snapshot = %changed.name, expires_at = changed.expires_at.as_deref().unwrap_or("never"),
            "snapshot expiry changed");
        self.wake_expiry_for(changed.expires_at.as_deref());
        Ok(changed)
    }

    async fn set_pinned(
        &self,
        caller: &Caller,
        container: &str,
        snapshot: &str,
        pinned: bool,
    ) -> Result<SnapshotInfo, Error> {
        let method = if pinned {
            "PinSnapshot"
        } else {
            "UnpinSnapshot"
        };
        self.authorize(caller, method, Action::ChangeSnapshot, container)
            .await?;
        let (id, reference) = (container.to_string(), snapshot.to_string());
        let changed = self
            .run(method, container, change(container), move |inner| {
                snapshots::set_pinned(&inner.zfs, &inner.layout, &id, &reference, pinned)
            })
            .await?;
        tracing::info!(container, snapshot = %changed.name, pinned, "snapshot pin changed");
        self.wake_expiry();
        Ok(changed)
    }

    async fn preview_expiry(
        &self,
        caller: &Caller,
        container: &str,
    ) -> Result<Vec<ExpiryPreview>, Error> {
        if !container.is_empty() {
            self.authorize(caller, "PreviewExpiry", Action::Read, container)
                .await?;
        }
        let (id, now) = (container.to_string(), self.now());
        let preview = self
            .run("PreviewExpiry", container, Access::Read, move |inner| {
                let seen: Vec<Seen> = if id.is_empty() {
                    expiry::scan(&inner.zfs, &inner.layout, &inner.index, now)
                } else {
                    let family = inner.index.family(&inner.zfs, &inner.layout, &id)?;
                    family
                        .snapshots()
                        .into_iter()
                        .map(|snapshot| Seen {
                            container: id.clone(),
                            snapshot: snapshot.clone(),
                        })
                        .collect()
                };
                Ok(expiry::preview(&seen, now))
            })
            .await?;
        if !container.is_empty() {
            return Ok(preview);
        }
        self.visible(caller, "PreviewExpiry", preview, |item| &item.container)
            .await
    }

    async fn get_expiry_status(&self, caller: &Caller) -> Result<Vec<ExpiryProblem>, Error> {
        let problems = self
            .inner
            .expiry_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let all: Vec<ExpiryProblem> = problems
            .iter()
            .map(|((container, name), problem)| ExpiryProblem {
                container: container.clone(),
                name: name.clone(),
                reason: problem.reason.clone(),
                since: properties::format_time(problem.since),
                attempts: problem.attempts,
            })
            .collect();
        self.visible(caller, "GetExpiryStatus", all, |item| &item.container)
            .await
    }

    async fn set_owner(
        &self,
        caller: &Caller,
        container: &str,
        uid: u32,
    ) -> Result<ContainerInfo, Error> {
        self.authorize(caller, "SetOwner", Action::ManageContainers, container)
            .await?;
        // (uid_t) -1 means "no change" to chown(2), and reads as "nobody" in owner_in.
        if uid == u32::MAX {
            return Err(Error::InvalidArgument(format!(
                "uid {uid} is not a user; give a uid below {uid}"
            )));
        }
        let id = container.to_string();
        let changed = self
            .run("SetOwner", container, change(container), move |inner| {
                containers::set_owner(&inner.zfs, &inner.layout, &id, uid)
            })
            .await?;
        tracing::info!(container, owner = uid, "container owner changed");
        Ok(changed)
    }

    async fn get_status(&self, caller: &Caller) -> Result<StatusInfo, Error> {
        self.authorize(caller, "GetStatus", Action::Read, "")
            .await?;
        let now = self.now();
        let mut status = self
            .run("GetStatus", "", Access::Read, move |inner| {
                status::read(&inner.zfs, &inner.layout, &inner.index, now)
            })
            .await?;
        let problems = self
            .inner
            .expiry_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        status.failed_deletions = problems
            .values()
            .filter(|problem| problem.retry_at.is_some())
            .count() as u32;
        Ok(status)
    }

    async fn reload(&self, caller: &Caller) -> Result<(), Error> {
        self.authorize(caller, "Reload", Action::Configure, "")
            .await?;
        let _gate = self.enter().await?;
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.reload_config())
            .await
            .unwrap_or_else(|panic| {
                Err(Error::Failed(format!("Reload failed internally: {panic}")))
            })
            .inspect_err(
                |error| tracing::warn!(error = %error.message(), "configuration not reloaded"),
            )
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

impl Service {
    async fn create_snapshots(
        &self,
        method: &'static str,
        containers: Vec<String>,
        alias: &str,
        expiry_days: u32,
        group: Option<String>,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        let (alias, now) = (alias.to_string(), self.now());
        let label = containers.join(",");
        let ids = containers.clone();
        let created = self
            .run(method, &label, Access::Snapshot(ids), move |inner| {
                let request = CreateRequest {
                    containers: &containers,
                    alias: &alias,
                    expiry_days,
                    max_expiry_days: inner.config().snapshots.max_expiry_days,
                    now,
                    group: group.as_deref(),
                };
                snapshots::create(
                    &inner.zfs,
                    &inner.layout,
                    &inner.index,
                    &inner.commit,
                    &request,
                )
            })
            .await?;
        let earliest = created
            .iter()
            .filter_map(|snapshot| snapshot.expires_at.as_deref())
            .min();
        self.wake_expiry_for(earliest);
        for snapshot in &created {
            tracing::info!(container = %snapshot.container, snapshot = %snapshot.name,
                alias = snapshot.alias.as_deref().unwrap_or(""),
                expires_at = snapshot.expires_at.as_deref().unwrap_or("never"),
                group = snapshot.group.as_deref().unwrap_or(""), "snapshot created");
        }
        Ok(created)
    }
}
