//! Restore to any snapshot: older and newer snapshots all stay, with their metadata, and the
//! superseded timelines never show up as containers or get mounted.

use hoody_snapd_tests::*;
use serde_json::Value;

fn read(dataset: &str, file: &str) -> String {
    std::fs::read_to_string(mountpoint(dataset).join(file)).unwrap()
}

fn write(dataset: &str, file: &str, text: &str) {
    std::fs::write(mountpoint(dataset).join(file), text).unwrap();
}

/// Checks that the client lists exactly `expected` (name, alias) pairs, oldest first, that
/// `zfs list` shows the same names across the family, and that each alias and expiry is on its
/// snapshot in ZFS.
fn check_listing(id: &str, expected: &[(String, &str, Value)]) {
    let listed = client_ok(&["snapshots", "list", "--container", id]);
    let listed = listed["data"].as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names, wanted, "client listing");
    assert_eq!(family_snapshot_names(id), wanted, "zfs list of the family");
    for ((name, alias, expires), shown) in expected.iter().zip(listed) {
        assert_eq!(shown["alias"], *alias, "alias of {name}");
        assert_eq!(shown["expires_at"], *expires, "expiry of {name}");
        let full =
            find_snapshot(id, name).unwrap_or_else(|| panic!("zfs list has no snapshot {name}"));
        assert_eq!(
            zfs_get("icu.hoody:alias", &full),
            *alias,
            "zfs alias of {full}"
        );
    }
}

fn check_no_timeline_visible(id: &str, dataset: &str) {
    let containers = client_ok(&["containers", "list"]);
    let same: Vec<&Value> = containers["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect();
    assert_eq!(
        same.len(),
        1,
        "the container is listed {} times",
        same.len()
    );
    let under_root = zfs(&[
        "list",
        "-H",
        "-r",
        "-t",
        "filesystem",
        "-o",
        "name",
        &container_root(),
    ]);
    assert_eq!(
        under_root
            .lines()
            .filter(|l| l.starts_with(dataset))
            .count(),
        1
    );
    for (name, role, mounted) in internal_datasets(id) {
        assert_eq!(mounted, "no", "{name} ({role}) is mounted");
    }
    assert_eq!(zfs_get("mounted", dataset), "yes");
}

#[test]
fn seed_scenario_keeps_every_snapshot() {
    let id = unique_id("seed");
    let dataset = create_container(&id);
    write(&dataset, "code.py", "original");
    let a = create_snapshot(&id, "before-ai-changes", 7);
    write(&dataset, "code.py", "ai version");
    write(&dataset, "notes", "added by ai");
    let b = create_snapshot(&id, "with-ai-changes", 0);
    write(&dataset, "code.py", "unsaved work");
    let a_name = a["name"].as_str().unwrap().to_string();
    let b_name = b["name"].as_str().unwrap().to_string();
    let expected = [
        (a_name.clone(), "before-ai-changes", a["expires_at"].clone()),
        (b_name.clone(), "with-ai-changes", Value::Null),
    ];

    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "before-ai-changes",
    ]);
    assert_eq!(read(&dataset, "code.py"), "original");
    assert!(!mountpoint(&dataset).join("notes").exists());
    check_listing(&id, &expected);
    check_no_timeline_visible(&id, &dataset);

    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "with-ai-changes",
    ]);
    assert_eq!(read(&dataset, "code.py"), "ai version");
    assert_eq!(read(&dataset, "notes"), "added by ai");
    check_listing(&id, &expected);
    check_no_timeline_visible(&id, &dataset);

    let envelope = client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        &a_name,
    ]);
    assert_eq!(read(&dataset, "code.py"), "original");
    check_listing(&id, &expected);
    check_no_timeline_visible(&id, &dataset);
    assert!(envelope["data"]["last_used_at"].is_string());
    assert_ne!(
        zfs_get("icu.hoody:last-used", &find_snapshot(&id, &a_name).unwrap()),
        "-"
    );
}

#[test]
fn restore_newest_is_plain_rollback() {
    let id = unique_id("rollback");
    let dataset = create_container(&id);
    write(&dataset, "f", "1");
    create_snapshot(&id, "one", 0);
    write(&dataset, "f", "2");
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "one"]);

    assert_eq!(read(&dataset, "f"), "1");
    assert!(
        internal_datasets(&id).is_empty(),
        "a rollback made internal datasets"
    );
    assert_eq!(zfs_get("origin", &dataset), "-");
}

#[test]
fn save_before_keeps_current_state() {
    let id = unique_id("save");
    let dataset = create_container(&id);
    write(&dataset, "f", "old");
    create_snapshot(&id, "old", 0);
    write(&dataset, "f", "current");
    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "old",
        "--save-before",
    ]);
    assert_eq!(read(&dataset, "f"), "old");

    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "before-restore",
    ]);
    assert_eq!(read(&dataset, "f"), "current");
    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "old",
        "--save-before",
    ]);
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    let aliases: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["old", "before-restore", "before-restore-2"]);
}

#[test]
fn busy_container_needs_force() {
    let id = unique_id("busy");
    let dataset = create_container(&id);
    write(&dataset, "f", "1");
    create_snapshot(&id, "one", 0);
    create_snapshot(&id, "two", 0);
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(mountpoint(&dataset))
        .spawn()
        .unwrap();

    let result = client(&[
        "--json",
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "one",
    ]);
    assert_eq!(result.code, 6, "{}", result.stdout);
    assert_eq!(result.json()["error"], "icu.hoody.Snapd1.Error.Busy");
    assert!(result.json()["message"]
        .as_str()
        .unwrap()
        .contains(&sleeper.id().to_string()));
    assert!(internal_datasets(&id).is_empty());

    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "one",
        "--force",
    ]);
    sleeper.kill().ok();
    sleeper.wait().ok();
    assert_eq!(family_snapshot_names(&id).len(), 2);
}

#[test]
fn restore_runs_hooks() {
    let id = unique_id("hooks");
    create_container(&id);
    create_snapshot(&id, "one", 0);
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "one"]);

    assert!(
        hook_dir().join(format!("pre-{id}")).exists(),
        "pre_hook did not run"
    );
    assert!(
        hook_dir().join(format!("post-{id}")).exists(),
        "post_hook did not run"
    );
}

#[test]
fn delete_snapshot_that_timeline_needs() {
    let id = unique_id("needed");
    let dataset = create_container(&id);
    write(&dataset, "f", "a");
    let a = create_snapshot(&id, "a", 0);
    write(&dataset, "f", "b");
    create_snapshot(&id, "b", 0);
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "a"]);

    client_ok(&["snapshots", "delete", "--container", &id, "--name", "a"]);
    let a_full = format!("{dataset}@{}", a["name"].as_str().unwrap());
    assert!(
        zfs_exists(&a_full) && zfs_get("defer_destroy", &a_full) == "on" || !zfs_exists(&a_full)
    );
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "b"]);
    assert_eq!(read(&dataset, "f"), "b");

    client_ok(&["snapshots", "delete", "--container", &id, "--name", "b"]);
    assert!(family_snapshot_names(&id).is_empty());
    assert!(
        internal_datasets(&id).is_empty(),
        "{:?}",
        internal_datasets(&id)
    );
    assert!(
        !zfs_exists(&a_full),
        "the deferred snapshot outlived its dependents"
    );
}

#[test]
fn group_snapshot_is_one_transaction() {
    let first = unique_id("group-a");
    let second = unique_id("group-b");
    let first_dataset = create_container(&first);
    let second_dataset = create_container(&second);
    let envelope = client_ok(&[
        "snapshots",
        "create-group",
        "--container",
        &first,
        "--container",
        &second,
        "--alias",
        "fleet",
        "--expiry",
        "2",
    ]);
    let created = envelope["data"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    let first_full = format!("{first_dataset}@{}", created[0]["name"].as_str().unwrap());
    let second_full = format!("{second_dataset}@{}", created[1]["name"].as_str().unwrap());

    assert_eq!(
        zfs_get("createtxg", &first_full),
        zfs_get("createtxg", &second_full)
    );
    assert_eq!(
        zfs_get("icu.hoody:group", &first_full),
        zfs_get("icu.hoody:group", &second_full)
    );
    assert_ne!(zfs_get("icu.hoody:group", &first_full), "-");
    assert_eq!(zfs_get("icu.hoody:alias", &second_full), "fleet");
    assert_eq!(created[0]["group"], created[1]["group"]);
}

#[test]
fn group_with_bad_member_makes_nothing() {
    let good = unique_id("group-good");
    let dataset = create_container(&good);
    let result = client(&[
        "--json",
        "snapshots",
        "create-group",
        "--container",
        &good,
        "--container",
        "missing-one",
    ]);

    assert_eq!(result.code, 3, "{}", result.stdout);
    assert!(snapshot_names(&dataset).is_empty());
}
