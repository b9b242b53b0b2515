//! Expiry on the real pool with a moved clock: snapshots are deleted at their deadline, pinned,
//! held and foreign ones are kept and reported, the preview matches what then happens, and
//! a daylight-saving change does not move an expiry.
//!
//! Each test restarts the daemon with a test clock (the real time plus the seconds in a file)
//! and a one-second sweep bound, and starts a normal daemon again at its end.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use hoody_snapd_tests::*;

const WORK_DIR: &str = "/tmp/hoody-expiry";

/// A daemon with a test clock, replaced by a normal daemon on drop.
struct ClockDaemon {
    clock_file: String,
}

impl ClockDaemon {
    fn start(time_zone: Option<&str>) -> ClockDaemon {
        ClockDaemon::start_with_expiry(time_zone, "max_sleep_seconds = 1\nretry_seconds = 2\n")
    }

    /// Starts a daemon with a test clock and `expiry` as the lines of its `[expiry]` table.
    fn start_with_expiry(time_zone: Option<&str>, expiry: &str) -> ClockDaemon {
        std::fs::create_dir_all(WORK_DIR).unwrap();
        let clock_file = format!("{WORK_DIR}/clock");
        write_clock(&clock_file, 0);
        let config = format!("{WORK_DIR}/config.toml");
        let base = std::fs::read_to_string(std::env::var("HOODY_CONFIG").unwrap()).unwrap();
        std::fs::write(&config, format!("{base}\n[expiry]\n{expiry}")).unwrap();

        stop_daemon();
        let mut environment = vec![("HOODY_SNAPD_CLOCK_FILE", clock_file.as_str())];
        if let Some(zone) = time_zone {
            environment.push(("TZ", zone));
        }
        start_daemon_with(&config, &environment);
        ClockDaemon { clock_file }
    }

    /// Sets the daemon's clock to `time`.
    fn set(&self, time: DateTime<Utc>) {
        set_clock(&self.clock_file, time);
    }

    /// Sets the daemon's clock to `time` after `delay`, from another thread.
    fn set_later(&self, time: DateTime<Utc>, delay: Duration) -> std::thread::JoinHandle<()> {
        let clock_file = self.clock_file.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            set_clock(&clock_file, time);
        })
    }
}

/// Writes the offset of `time` from the real time into the test clock file.
fn set_clock(clock_file: &str, time: DateTime<Utc>) {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let offset = (time.timestamp_millis() as f64 / 1000.0 - real).round() as i64;
    write_clock(clock_file, offset);
}

impl Drop for ClockDaemon {
    fn drop(&mut self) {
        stop_daemon();
        start_daemon(None);
    }
}

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time string"))
        .unwrap()
        .with_timezone(&Utc)
}

/// Waits up to `seconds` until `expiry-status` reports the snapshot `name` of `container` as
/// held.
fn wait_until_reported_held(container: &str, name: &str, seconds: u64) {
    wait_until(
        &format!("{container}@{name} is reported as held"),
        Duration::from_secs(seconds),
        || {
            client_ok(&["snapshots", "expiry-status"])["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["container"] == container && p["name"] == name && p["reason"] == "held")
        },
    );
}

fn gone_within(full: &str, seconds: u64) {
    wait_until(
        &format!("{full} is deleted"),
        Duration::from_secs(seconds),
        || !zfs_exists(full),
    );
}

fn stays_for(full: &str, seconds: u64) {
    std::thread::sleep(Duration::from_secs(seconds));
    assert!(zfs_exists(full), "{full} was deleted early");
}

#[test]
fn expired_snapshot_deleted_at_deadline() {
    let daemon = ClockDaemon::start(None);
    let id = unique_id("deadline");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "short-lived", 1);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());
    let expires = time(&snapshot["expires_at"]);
    assert_eq!(
        expires - time(&snapshot["created_at"]),
        chrono::Duration::days(1)
    );

    daemon.set(expires - chrono::Duration::seconds(30));
    stays_for(&full, 3);
    daemon.set(expires + chrono::Duration::seconds(1));
    gone_within(&full, 15);
    let name = snapshot["name"].as_str().unwrap();
    let logged = |line: &&str| line.contains(name) && line.contains("reason=\"expired\"");
    wait_until("the deletion is logged", Duration::from_secs(10), || {
        daemon_log().lines().any(|line| logged(&line))
    });
    let log = daemon_log();
    let line = log.lines().rev().find(logged).unwrap();
    assert!(line.contains(&id), "{line}");
    assert!(
        line.contains(snapshot["expires_at"].as_str().unwrap()),
        "{line}"
    );
}

#[test]
fn pinned_foreign_and_garbage_are_kept() {
    let daemon = ClockDaemon::start(None);
    let id = unique_id("kept");
    let dataset = create_container(&id);
    let pinned = create_snapshot(&id, "pinned", 1);
    client_ok(&["snapshots", "pin", "--container", &id, "--name", "pinned"]);
    let plain = create_snapshot(&id, "plain", 1);
    let permanent = create_snapshot(&id, "forever", 0);
    let manual = format!("{dataset}@manual");
    zfs(&["snapshot", &manual]);
    zfs(&["set", "icu.hoody:expires=2000-01-01T00:00:00.000Z", &manual]);
    let mut garbage = Vec::new();
    for (alias, value) in [
        ("abc", "abc"),
        ("minus", "-1"),
        ("empty", ""),
        ("digits", "12345678901234567890"),
    ] {
        let made = create_snapshot(&id, alias, 1);
        let full = format!("{dataset}@{}", made["name"].as_str().unwrap());
        zfs(&["set", &format!("icu.hoody:expires={value}"), &full]);
        garbage.push(full);
    }
    let full = |s: &serde_json::Value| format!("{dataset}@{}", s["name"].as_str().unwrap());

    let preview = client_ok(&["snapshots", "preview", "--container", &id]);
    let reasons: Vec<(String, String)> = preview["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason_of = |name: &str| {
        reasons
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert_eq!(reason_of(pinned["name"].as_str().unwrap()), "pinned");
    assert_eq!(reason_of(plain["name"].as_str().unwrap()), "not yet due");
    assert_eq!(reason_of(permanent["name"].as_str().unwrap()), "permanent");
    assert_eq!(reason_of("manual"), "not managed");
    for full_name in &garbage {
        assert_eq!(
            reason_of(full_name.split_once('@').unwrap().1),
            "invalid expiry",
            "{full_name}"
        );
    }

    daemon.set(time(&plain["expires_at"]) + chrono::Duration::days(1));
    gone_within(&full(&plain), 15);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        zfs_exists(&full(&pinned)),
        "the pinned snapshot was deleted"
    );
    assert!(zfs_exists(&full(&permanent)));
    assert!(zfs_exists(&manual), "the manual snapshot was deleted");
    for full_name in &garbage {
        assert!(
            zfs_exists(full_name),
            "{full_name} with a garbage expiry was deleted"
        );
    }

    let status = client_ok(&["snapshots", "expiry-status"]);
    let problems = status["data"].as_array().unwrap();
    let reason = |name: &str| {
        problems
            .iter()
            .find(|p| p["container"] == id.as_str() && p["name"] == name)
            .map(|p| p["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(
        reason(pinned["name"].as_str().unwrap()).as_deref(),
        Some("held")
    );
    for full_name in &garbage {
        let shown = reason(full_name.split_once('@').unwrap().1).unwrap_or_default();
        assert!(shown.starts_with("invalid expiry"), "{full_name}: {shown}");
    }
    client_ok(&["containers", "list"]);

    client_ok(&["snapshots", "unpin", "--container", &id, "--name", "pinned"]);
    gone_within(&full(&pinned), 15);
}

#[test]
fn held_snapshot_skipped_then_deleted() {
    let daemon = ClockDaemon::start(None);
    let id = unique_id("batch");
    let dataset = create_container(&id);
    let made: Vec<String> = ["first", "middle", "last"]
        .iter()
        .map(|alias| {
            format!(
                "{dataset}@{}",
                create_snapshot(&id, alias, 1)["name"].as_str().unwrap()
            )
        })
        .collect();
    zfs(&["hold", "test-hold", &made[1]]);
    let expires = time(
        &client_ok(&["snapshots", "show", "--container", &id, "--name", "last"])["data"]
            ["expires_at"],
    );

    daemon.set(expires + chrono::Duration::hours(1));
    gone_within(&made[0], 15);
    gone_within(&made[2], 15);
    assert!(zfs_exists(&made[1]));
    // The sweep stores its report after its deletions, so the report may come a moment later.
    let middle = made[1].split_once('@').unwrap().1;
    wait_until_reported_held(&id, middle, 10);
    assert!(zfs_exists(&made[1]));

    zfs(&["release", "test-hold", &made[1]]);
    gone_within(&made[1], 15);
}

#[test]
fn hold_released_by_hand_deleted_after_retry() {
    // The sweep would sleep an hour, so only the wake that it plans retry_seconds after finding
    // the held snapshot can delete it.
    let daemon =
        ClockDaemon::start_with_expiry(None, "max_sleep_seconds = 3600\nretry_seconds = 2\n");
    let id = unique_id("release");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "held", 1);
    let short_name = snapshot["name"].as_str().unwrap();
    let name = format!("{dataset}@{short_name}");
    zfs(&["hold", "test-hold", &name]);

    daemon.set(time(&snapshot["expires_at"]) + chrono::Duration::hours(1));
    // A reload wakes the expiry task, which then reads the moved clock.
    client_ok(&["reload"]);
    wait_until_reported_held(&id, short_name, 15);
    assert!(zfs_exists(&name));

    zfs(&["release", "test-hold", &name]);
    gone_within(&name, 15);
}

#[test]
fn deleted_container_snapshots_expire() {
    let daemon = ClockDaemon::start(None);
    let id = unique_id("orphan");
    create_container(&id);
    let snapshot = create_snapshot(&id, "orphaned", 1);
    client_ok(&["containers", "delete", "--container", &id]);
    assert_eq!(internal_datasets(&id).len(), 1);

    daemon.set(time(&snapshot["expires_at"]) + chrono::Duration::seconds(5));
    wait_until(
        "the deleted container's last snapshot expires",
        Duration::from_secs(20),
        || internal_datasets(&id).is_empty(),
    );
}

#[test]
fn set_expiry_changes_and_removes() {
    let daemon = ClockDaemon::start(None);
    let id = unique_id("reexpire");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "changing", 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());
    let start = Utc::now() + chrono::Duration::days(10);
    daemon.set(start);

    let changed = client_ok(&[
        "snapshots",
        "expiry",
        "--container",
        &id,
        "--name",
        "changing",
        "--days",
        "3",
    ]);
    let expires = time(&changed["data"]["expires_at"]);
    assert_eq!(
        zfs_get("icu.hoody:expires", &full),
        changed["data"]["expires_at"].as_str().unwrap()
    );
    assert!(
        (expires - start - chrono::Duration::days(3))
            .num_seconds()
            .abs()
            <= 5
    );

    client_ok(&[
        "snapshots",
        "expiry",
        "--container",
        &id,
        "--name",
        "changing",
        "--days",
        "0",
    ]);
    assert_eq!(zfs_get("icu.hoody:expires", &full), "-");
    daemon.set(start + chrono::Duration::days(30));
    stays_for(&full, 3);
}

#[test]
fn dst_fall_back_in_rome() {
    let daemon = ClockDaemon::start(Some("Europe/Rome"));
    let id = unique_id("rome");
    let dataset = create_container(&id);
    // 2017-10-29 00:30 in Rome is 22:30 UTC the day before; the clocks went back from 03:00
    // CEST to 02:00 CET at 01:00 UTC.
    let start = Utc.with_ymd_and_hms(2017, 10, 28, 22, 30, 0).unwrap();
    let mut made = Vec::new();
    for step in 0..19 {
        daemon.set(start + chrono::Duration::minutes(10 * step));
        let snapshot = create_snapshot(&id, &format!("rome-{step}"), 1);
        let created = time(&snapshot["created_at"]);
        let expires = time(&snapshot["expires_at"]);
        assert_eq!(
            (expires - created).num_milliseconds(),
            86_400_000,
            "step {step}"
        );
        made.push((
            format!("{dataset}@{}", snapshot["name"].as_str().unwrap()),
            expires,
        ));
    }
    let names: std::collections::HashSet<&String> = made.iter().map(|(name, _)| name).collect();
    assert_eq!(
        names.len(),
        made.len(),
        "snapshot names repeat across the fall-back"
    );
    let mut sorted: Vec<&String> = made.iter().map(|(name, _)| name).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        made.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );

    // Each snapshot is deleted at its own expiry, exactly a day after it was made: not 20 s
    // before, and within 15 s after.
    for (index, (full, expires)) in made.iter().enumerate() {
        daemon.set(*expires - chrono::Duration::seconds(20));
        stays_for(full, 1);
        daemon.set(*expires + chrono::Duration::seconds(1));
        gone_within(full, 15);
        if let Some((next, _)) = made.get(index + 1) {
            assert!(zfs_exists(next), "{next} was deleted before its time");
        }
    }
}

/// Rounds of the race between a copy and the expiry sweep. Each costs a snapshot, a copy and a
/// container delete, about 5 s under qemu's emulation.
const ROUNDS: u32 = 18;

#[test]
fn copy_racing_expiry_copies_or_not_found() {
    let daemon = ClockDaemon::start(None);
    let source = unique_id("expiry-race");
    let dataset = create_container(&source);
    std::fs::write(mountpoint(&dataset).join("state"), "racing").unwrap();
    let mut now = Utc::now();
    let (mut copied, mut missed) = (0, 0);
    for round in 0..ROUNDS {
        let alias = format!("e{round}");
        let target = format!("{source}-copy-{round}");
        daemon.set(now);
        let snapshot = create_snapshot(&source, &alias, 1);
        let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());
        now = time(&snapshot["expires_at"]) + chrono::Duration::seconds(1);
        // Every second round copies as a clone, which makes the expiring snapshot a clone
        // origin that expiry can only mark for deferred destruction.
        let clone = round % 2 == 1;
        let mut args = vec![
            "--json",
            "containers",
            "copy",
            "--from",
            &source,
            "--snapshot",
            &alias,
            "--container",
            &target,
        ];
        if clone {
            args.push("--clone");
        }

        // One round in three lets expiry delete the snapshot first. In the others the clock
        // passes the expiry at a different moment after the copy starts, and the sweep runs
        // within a second of that.
        let mover = if round % 3 == 0 {
            daemon.set(now);
            gone_within(&full, 30);
            None
        } else {
            let delay = Duration::from_millis(u64::from(round * 137 % 2500));
            Some(daemon.set_later(now, delay))
        };
        let run = client(&args);
        if let Some(mover) = mover {
            mover.join().unwrap();
        }
        match run.code {
            0 => {
                let copy = dataset_of(&target).expect("a succeeded copy has a dataset");
                let text = std::fs::read_to_string(mountpoint(&copy).join("state")).unwrap();
                assert_eq!(text, "racing", "round {round}: the copy is not complete");
                client_ok(&["containers", "delete", "--container", &target]);
                copied += 1;
            }
            3 => {
                assert!(
                    dataset_of(&target).is_none(),
                    "round {round}: {}",
                    run.stdout
                );
                missed += 1;
            }
            code => panic!(
                "round {round}: copy exited {code}: {}{}",
                run.stdout, run.stderr
            ),
        }
        gone_within(&full, 30);
        let left = half_made_datasets();
        assert!(left.is_empty(), "round {round}: {left:?}");
        assert!(journal_entries().is_empty(), "round {round}");
    }
    assert!(copied > 0, "no copy won a race against expiry");
    assert!(missed >= ROUNDS / 3, "only {missed} copies got NotFound");
    let problems = client_ok(&["snapshots", "expiry-status"]);
    assert!(
        !problems.to_string().contains(&source),
        "expiry reports problems: {problems}"
    );
}
