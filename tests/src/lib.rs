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
    /// Parses standard output as the client's JSON envelope.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("client output is not JSON ({error}): {}", self.stdout))
    }
}

/// Runs the hoody-snap client.
pub fn client(args: &[&str]) -> ClientRun {
    let output = run(&env("HOODY_SNAP_BIN"), args);
    ClientRun {
        code: output.status.code().unwrap_or(-1),
        stdout: stdout(&output),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
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
