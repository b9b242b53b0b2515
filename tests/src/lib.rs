//! Helpers for the integration tests, which run inside the test VM (see `tests/run.sh`) against
//! the running daemon, a real pool and a real system bus. Every check of the pool's state goes
//! through the `zfs` command, independently of the daemon's own code.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use hoody_snapd_contract::ManagerProxy;
use serde_json::Value;

/// Panics unless the test runs inside the test VM, so that a ZFS test can never pass by being
/// skipped on a machine without ZFS.
pub fn require_vm() {
    assert_eq!(
        std::env::var("HOODY_TEST_VM").as_deref(),
        Ok("1"),
        "these tests need the ZFS test VM; run them with tests/run.sh"
    );
}

fn env(name: &str) -> String {
    require_vm();
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set by tests/guest/run-tests.sh"))
}

/// Filesystem under which the daemon keeps containers.
pub fn container_root() -> String {
    env("HOODY_CONTAINER_ROOT")
}

/// Filesystem under which the daemon keeps timelines, deleted containers and work datasets.
pub fn internal_root() -> String {
    env("HOODY_INTERNAL_ROOT")
}

/// Folder where the restore hooks of the test configuration touch `pre-<id>` and `post-<id>`.
pub fn hook_dir() -> PathBuf {
    PathBuf::from(env("HOODY_HOOK_DIR"))
}

/// Lists the datasets below the internal root that carry a container id, as
/// (name, role, mounted) by `zfs list`.
pub fn internal_datasets(container: &str) -> Vec<(String, String, String)> {
    let listing = zfs(&[
        "list",
        "-H",
        "-d",
        "1",
        "-t",
        "filesystem",
        "-o",
        "name,icu.hoody:container-id,icu.hoody:role,mounted",
        &internal_root(),
    ]);
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 4 && fields[1] == container).then(|| {
                (
                    fields[0].to_string(),
                    fields[2].to_string(),
                    fields[3].to_string(),
                )
            })
        })
        .collect()
}

/// Returns the snapshot names (after the `@`) of a container's live dataset and of its
/// datasets below the internal root, sorted by `createtxg`, by `zfs list`. Snapshots marked for
/// deferred destruction are left out, as the daemon hides them.
pub fn family_snapshot_names(container: &str) -> Vec<String> {
    let mut datasets: Vec<String> = internal_datasets(container)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    datasets.extend(dataset_of(container));
    let mut all: Vec<(u64, String)> = Vec::new();
    for dataset in datasets {
        let listing = zfs(&[
            "list",
            "-H",
            "-p",
            "-t",
            "snapshot",
            "-d",
            "1",
            "-o",
            "name,createtxg,defer_destroy",
            &dataset,
        ]);
        for line in listing.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() == 3 && fields[2] != "on" {
                let name = fields[0]
                    .split_once('@')
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_default();
                all.push((fields[1].parse().unwrap_or(0), name));
            }
        }
    }
    all.sort();
    all.into_iter().map(|(_, name)| name).collect()
}

/// Finds the full name of a container's snapshot, wherever in its family it is, by `zfs list`.
pub fn find_snapshot(container: &str, name: &str) -> Option<String> {
    let mut datasets: Vec<String> = internal_datasets(container)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    datasets.extend(dataset_of(container));
    datasets
        .into_iter()
        .map(|dataset| format!("{dataset}@{name}"))
        .find(|full| zfs_exists(full))
}

/// Lists every dataset and snapshot below the daemon's two roots that has an operation's work
/// role, or is a partial receive. A crash must never leave one visible after recovery. Only
/// these roots count, because another daemon with roots of its own may run at the same time.
pub fn half_made_datasets() -> Vec<String> {
    zfs(&[
        "list",
        "-H",
        "-r",
        "-t",
        "all",
        "-o",
        "name,icu.hoody:role",
        &container_root(),
        &internal_root(),
    ])
    .lines()
    .filter(|line| line.ends_with("\twork") || line.contains('%'))
    .map(str::to_string)
    .collect()
}

/// Lists the journal entries left on the internal root, by `zfs get`.
pub fn journal_entries() -> Vec<String> {
    zfs(&[
        "get",
        "-H",
        "-o",
        "property,source",
        "all",
        &internal_root(),
    ])
    .lines()
    .filter(|line| line.starts_with("icu.hoody:op:") && line.ends_with("\tlocal"))
    .map(str::to_string)
    .collect()
}

/// Sets the offset of a test clock file, in seconds, with an atomic rename, so the daemon
/// never reads a half-written file.
pub fn write_clock(file: &str, offset_seconds: i64) {
    let temporary = format!("{file}.new");
    std::fs::write(&temporary, offset_seconds.to_string()).unwrap();
    std::fs::rename(&temporary, file).unwrap();
}

/// Returns the contents of the daemon log.
pub fn daemon_log() -> String {
    std::fs::read_to_string(env("HOODY_DAEMON_LOG")).unwrap_or_default()
}

/// Returns the path of the file with the pid of the daemon under test.
fn pid_file() -> String {
    env("HOODY_PID_FILE")
}

fn bus_name_owned() -> bool {
    busctl_as(None, &["status", "icu.hoody.Snapd1"])
        .status
        .success()
}

fn process_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// Waits until `condition` holds, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, condition: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Returns the pid of the running daemon, from the pid file.
pub fn daemon_pid() -> String {
    std::fs::read_to_string(pid_file())
        .expect("no daemon pid file")
        .trim()
        .to_string()
}

/// Stops the running daemon with SIGTERM and waits until it has exited.
pub fn stop_daemon() {
    let pid = daemon_pid();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success(), "cannot signal hoody-snapd {pid}");
    wait_for_exit(&pid);
}

/// Waits until the daemon process `pid` is gone and its bus name released.
pub fn wait_for_exit(pid: &str) {
    let timeout = std::time::Duration::from_secs(120);
    wait_until("the daemon exits", timeout, || !process_alive(pid));
    wait_until("the bus name is released", timeout, || !bus_name_owned());
}

/// Starts the daemon with the test configuration, optionally with a fault point armed, and
/// waits until it owns its bus name.
pub fn start_daemon(fault: Option<&str>) {
    let environment: Vec<(&str, &str)> = fault
        .map(|point| ("HOODY_SNAPD_FAULT", point))
        .into_iter()
        .collect();
    start_daemon_with(&env("HOODY_CONFIG"), &environment);
}

/// Starts the daemon with a configuration file and extra environment variables, and waits
/// until it owns its bus name. The daemon outlives the test process on purpose, so it is
/// never waited for here.
#[allow(clippy::zombie_processes)]
pub fn start_daemon_with(config: &str, environment: &[(&str, &str)]) {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(env("HOODY_DAEMON_LOG"))
        .unwrap();
    let mut command = Command::new(env("HOODY_SNAPD_BIN"));
    command
        .args(["--config", config])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .env_remove("HOODY_SNAPD_FAULT")
        .env_remove("HOODY_SNAPD_CLOCK_FILE");
    for (name, value) in environment {
        command.env(name, value);
    }
    let child = command.spawn().expect("cannot start hoody-snapd");
    std::fs::write(pid_file(), child.id().to_string()).unwrap();
    wait_until(
        "the daemon owns its bus name",
        std::time::Duration::from_secs(120),
        bus_name_owned,
    );
}

/// Returns an id that no other test uses: the prefix, the process id and a counter.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the `zfs` command and returns its standard output; panics when it fails.
pub fn zfs(args: &[&str]) -> String {
    let output = run("zfs", args);
    assert!(
        output.status.success(),
        "zfs {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// Runs the `zfs` command and returns whether it succeeded.
pub fn zfs_succeeds(args: &[&str]) -> bool {
    run("zfs", args).status.success()
}

/// Returns the value of one property as `zfs get -Hp` prints it (`-` when unset).
pub fn zfs_get(property: &str, dataset: &str) -> String {
    let value = zfs(&["get", "-H", "-p", "-o", "value", property, dataset]);
    value.strip_suffix('\n').unwrap_or(&value).to_string()
}

/// Returns the source of one property as `zfs get` prints it (`local`, `-`, `inherited from ...`).
pub fn zfs_source(property: &str, dataset: &str) -> String {
    zfs(&["get", "-H", "-o", "source", property, dataset])
        .trim_end()
        .to_string()
}

/// Reports whether a dataset or snapshot exists, by `zfs list`.
pub fn zfs_exists(name: &str) -> bool {
    zfs_succeeds(&["list", "-H", "-t", "all", "-o", "name", name])
}

/// Finds a container's dataset by its `icu.hoody:container-id` property, as `zfs list` shows it.
pub fn dataset_of(container: &str) -> Option<String> {
    let listing = zfs(&[
        "list",
        "-H",
        "-d",
        "1",
        "-t",
        "filesystem",
        "-o",
        "name,icu.hoody:container-id",
        &container_root(),
    ]);
    listing.lines().find_map(|line| {
        let (name, id) = line.split_once('\t')?;
        (id == container).then(|| name.to_string())
    })
}

/// Returns the snapshot names (after the `@`) of a dataset, oldest first, by `zfs list`.
pub fn snapshot_names(dataset: &str) -> Vec<String> {
    zfs(&[
        "list",
        "-H",
        "-t",
        "snapshot",
        "-d",
        "1",
        "-s",
        "createtxg",
        "-o",
        "name",
        dataset,
    ])
    .lines()
    .map(|line| {
        line.split_once('@')
            .map(|(_, s)| s.to_string())
            .unwrap_or_default()
    })
    .collect()
}

/// Returns the mountpoint of a container's dataset.
pub fn mountpoint(dataset: &str) -> PathBuf {
    PathBuf::from(zfs_get("mountpoint", dataset))
}

/// The result of one client run.
pub struct ClientRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    fn from_output(output: &Output) -> ClientRun {
        ClientRun {
            code: output.status.code().unwrap_or(-1),
            stdout: stdout(output),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Parses standard output as the client's JSON envelope.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("client output is not JSON ({error}): {}", self.stdout))
    }
}

/// Runs the hoody-snap client.
pub fn client(args: &[&str]) -> ClientRun {
    ClientRun::from_output(&run(&env("HOODY_SNAP_BIN"), args))
}

/// Runs the hoody-snap client as another unix user, with `--json`.
pub fn client_as(user: &str, args: &[&str]) -> ClientRun {
    let binary = env("HOODY_SNAP_BIN");
    let mut all = vec!["-u", user, "--", binary.as_str(), "--json"];
    all.extend_from_slice(args);
    ClientRun::from_output(&run("runuser", &all))
}

/// Runs the client as another user and returns the envelope; panics unless it exits 0.
pub fn client_as_ok(user: &str, args: &[&str]) -> Value {
    let result = client_as(user, args);
    assert_eq!(
        result.code, 0,
        "hoody-snap {args:?} as {user} failed: {}{}",
        result.stdout, result.stderr
    );
    result.json()
}

fn polkit_running() -> bool {
    busctl_as(None, &["status", "org.freedesktop.PolicyKit1"])
        .status
        .success()
}

/// Stops polkitd and waits until its bus name is gone.
pub fn stop_polkit() {
    let status = Command::new("pkill")
        .args(["-TERM", "-x", "polkitd"])
        .status()
        .unwrap();
    assert!(status.success(), "no polkitd was running");
    wait_until(
        "polkitd releases its bus name",
        std::time::Duration::from_secs(60),
        || !polkit_running(),
    );
}

/// Starts polkitd again and waits until it owns its bus name. It outlives the test process.
#[allow(clippy::zombie_processes)]
pub fn start_polkit() {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(env("HOODY_POLKIT_LOG"))
        .unwrap();
    Command::new("/usr/lib/polkit-1/polkitd")
        .arg("--no-debug")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("cannot start polkitd");
    wait_until(
        "polkitd owns its bus name",
        std::time::Duration::from_secs(60),
        polkit_running,
    );
}

/// Runs the client with `--json` and returns the envelope; panics unless it exits 0.
pub fn client_ok(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let result = client(&all);
    assert_eq!(
        result.code, 0,
        "hoody-snap {args:?} failed: {}{}",
        result.stdout, result.stderr
    );
    let envelope = result.json();
    assert_eq!(envelope["statusCode"], 200, "{envelope}");
    envelope
}

/// Runs `busctl --system` with the given arguments, optionally as another user.
pub fn busctl_as(user: Option<&str>, args: &[&str]) -> Output {
    let mut command = match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--", "busctl"]);
            command
        }
        None => Command::new("busctl"),
    };
    command
        .arg("--system")
        .args(args)
        .output()
        .expect("cannot run busctl")
}

/// Calls a manager method with busctl: `busctl call icu.hoody.Snapd1 /icu/hoody/Snapd1
/// icu.hoody.Snapd1.Manager METHOD SIGNATURE ARGS...`.
pub fn busctl_call(user: Option<&str>, method: &str, signature: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "call",
        "icu.hoody.Snapd1",
        "/icu/hoody/Snapd1",
        "icu.hoody.Snapd1.Manager",
        method,
    ];
    if !signature.is_empty() {
        all.push(signature);
    }
    all.extend_from_slice(args);
    busctl_as(user, &all)
}

/// Creates a container through the client and returns its dataset name.
pub fn create_container(id: &str) -> String {
    client_ok(&["containers", "create", "--container", id]);
    dataset_of(id).unwrap_or_else(|| panic!("zfs list shows no dataset for container {id}"))
}

/// Creates a snapshot through the client and returns its JSON record.
pub fn create_snapshot(container: &str, alias: &str, expiry_days: u32) -> Value {
    let days = expiry_days.to_string();
    let envelope = client_ok(&[
        "snapshots",
        "create",
        "--container",
        container,
        "--alias",
        alias,
        "--expiry",
        &days,
    ]);
    envelope["data"].clone()
}

/// Connects to the daemon on the system bus.
pub async fn proxy() -> (zbus::Connection, ManagerProxy<'static>) {
    require_vm();
    let connection = zbus::Connection::system()
        .await
        .expect("cannot connect to the system bus");
    let proxy = ManagerProxy::new(&connection)
        .await
        .expect("cannot build the manager proxy");
    (connection, proxy)
}

/// Runs an async test body on a current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
        .block_on(future)
}
