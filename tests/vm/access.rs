//! Access control with a real polkitd. A stranger is denied every change and every read of a
//! container that is not theirs. An owner creates and restores snapshots of their own
//! container, and root does everything. The polkit rule of the test bed makes the members of
//! its group administrators.
//!
//! The guest (tests/guest/common.sh) installs our polkit actions, creates the users alice
//! (2001), bob (2002) and carol (2003, in the admin group), and a rule granting that group
//! every action.

use hoody_snapd_tests::*;

const ALICE_UID: &str = "2001";
const CAROL_UID: &str = "2003";

fn file_in(dataset: &str, name: &str) -> std::path::PathBuf {
    mountpoint(dataset).join(name)
}

/// Asserts that a busctl call failed with our AccessDenied text naming the action.
fn assert_denied(output: &std::process::Output, what: &str, uid: &str, action: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what} succeeded for uid {uid}");
    assert!(
        stderr.contains(&format!("is not allowed for uid {uid}")),
        "{what}: {stderr}"
    );
    assert!(
        stderr.contains(&format!("icu.hoody.snapd1.{action}")),
        "{what}: {stderr}"
    );
}

/// Asserts that a client run failed with exit code 7 and the AccessDenied error.
fn assert_client_denied(run: &ClientRun, what: &str) {
    assert_eq!(run.code, 7, "{what}: {}{}", run.stdout, run.stderr);
    let envelope = run.json();
    assert_eq!(
        envelope["error"], "icu.hoody.Snapd1.Error.AccessDenied",
        "{what}: {envelope}"
    );
}

fn listed_ids(envelope: &serde_json::Value) -> Vec<String> {
    envelope["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|container| container["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn stranger_is_denied_every_change_and_read() {
    let id = unique_id("guarded");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "guarded", 0);
    let name = snapshot["name"].as_str().unwrap();
    let intruder = unique_id("intruder");
    let calls: [(&str, &str, Vec<&str>, &str); 16] = [
        (
            "CreateContainer",
            "ss",
            vec![&intruder, ""],
            "manage-containers",
        ),
        ("DeleteContainer", "s", vec![&id], "manage-containers"),
        ("SetOwner", "su", vec![&id, "2002"], "manage-containers"),
        (
            "CreateSnapshot",
            "ssu",
            vec![&id, "", "0"],
            "create-snapshot",
        ),
        (
            "RestoreSnapshot",
            "ssa{sv}",
            vec![&id, name, "0"],
            "restore-snapshot",
        ),
        ("DeleteSnapshot", "ss", vec![&id, name], "delete-snapshot"),
        (
            "SetAlias",
            "sss",
            vec![&id, name, "taken"],
            "change-snapshot",
        ),
        ("SetExpiry", "ssu", vec![&id, name, "1"], "change-snapshot"),
        ("PinSnapshot", "ss", vec![&id, name], "change-snapshot"),
        ("UnpinSnapshot", "ss", vec![&id, name], "change-snapshot"),
        (
            "CreateSnapshotGroup",
            "assu",
            vec!["1", &id, "", "0"],
            "create-snapshot",
        ),
        (
            "CopyContainer",
            "ssssa{sv}",
            vec![&id, name, &intruder, "", "0"],
            "read",
        ),
        ("Reload", "", vec![], "configure"),
        ("ListSnapshots", "s", vec![&id], "read"),
        ("GetSnapshot", "ss", vec![&id, name], "read"),
        ("PreviewExpiry", "s", vec![&id], "read"),
    ];
    for (method, signature, args, action) in calls {
        let output = busctl_call(Some("bob"), method, signature, &args);
        assert_denied(&output, method, "2002", action);
    }

    assert_eq!(snapshot_names(&dataset), [name]);
    let full = format!("{dataset}@{name}");
    assert_eq!(zfs_get("icu.hoody:alias", &full), "guarded");
    assert_eq!(zfs_get("icu.hoody:expires", &full), "-");
    assert_eq!(zfs(&["holds", "-H", &full]), "");
    assert_eq!(zfs_get("icu.hoody:owner", &dataset), "0");
    assert!(dataset_of(&intruder).is_none());

    let listed = client_as_ok("bob", &["containers", "list"]);
    assert!(!listed_ids(&listed).contains(&id), "{listed}");
    let expiry = client_as_ok("bob", &["snapshots", "preview"]);
    assert!(
        !expiry.to_string().contains(&id),
        "bob sees expiry of {id}: {expiry}"
    );
}

#[test]
fn owner_creates_and_restores_own_container() {
    let id = unique_id("owned");
    let dataset = create_container(&id);
    let given = client_ok(&[
        "containers",
        "set-owner",
        "--container",
        &id,
        "--owner",
        "alice",
    ]);
    assert_eq!(given["data"]["owner"], 2001);
    assert_eq!(zfs_get("icu.hoody:owner", &dataset), ALICE_UID);

    std::fs::write(file_in(&dataset, "app.conf"), "version 1").unwrap();
    let first = client_as_ok(
        "alice",
        &["snapshots", "create", "--container", &id, "--alias", "v1"],
    );
    let first_name = first["data"]["name"].as_str().unwrap().to_string();
    std::fs::write(file_in(&dataset, "app.conf"), "version 2").unwrap();
    let second = client_as_ok(
        "alice",
        &["snapshots", "create", "--container", &id, "--alias", "v2"],
    );
    let second_name = second["data"]["name"].as_str().unwrap().to_string();
    assert_eq!(
        zfs_get("icu.hoody:alias", &format!("{dataset}@{first_name}")),
        "v1"
    );

    // v1 is not the newest snapshot, so this restore clones, promotes and renames: the new
    // live filesystem must carry the owner too.
    client_as_ok(
        "alice",
        &["snapshots", "restore", "--container", &id, "--name", "v1"],
    );
    assert_eq!(
        std::fs::read_to_string(file_in(&dataset, "app.conf")).unwrap(),
        "version 1"
    );
    assert_eq!(zfs_get("icu.hoody:owner", &dataset), ALICE_UID);
    let listed = client_as_ok("alice", &["snapshots", "list", "--container", &id]);
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [first_name.as_str(), second_name.as_str()]);
    let containers = client_as_ok("alice", &["containers", "list"]);
    assert!(listed_ids(&containers).contains(&id), "{containers}");
    for container in containers["data"].as_array().unwrap() {
        assert_eq!(container["owner"], 2001, "alice sees {container}");
    }

    // Deleting and changing metadata are not an owner's rights.
    let delete = client_as(
        "alice",
        &["snapshots", "delete", "--container", &id, "--name", "v2"],
    );
    assert_client_denied(&delete, "alice deletes v2");
    assert!(delete.json()["message"]
        .as_str()
        .unwrap()
        .contains("icu.hoody.snapd1.delete-snapshot"));
    let alias = client_as(
        "alice",
        &[
            "snapshots",
            "alias",
            "--container",
            &id,
            "--name",
            "v2",
            "--alias",
            "mine",
        ],
    );
    assert_client_denied(&alias, "alice sets an alias");
    assert_eq!(
        family_snapshot_names(&id),
        [first_name.clone(), second_name.clone()]
    );

    let stranger = client_as("bob", &["snapshots", "list", "--container", &id]);
    assert_client_denied(&stranger, "bob lists alice's snapshots");
    let restore = client_as(
        "bob",
        &["snapshots", "restore", "--container", &id, "--name", "v2"],
    );
    assert_client_denied(&restore, "bob restores alice's container");

    // Root may do everything, and the owner keeps seeing the kept snapshots of a deleted
    // container.
    client_ok(&["snapshots", "delete", "--container", &id, "--name", "v2"]);
    client_ok(&["containers", "delete", "--container", &id]);
    let kept = client_as_ok("alice", &["snapshots", "list", "--container", &id]);
    assert_eq!(kept["data"][0]["name"], first_name.as_str());
    assert_eq!(kept["data"][0]["container_deleted"], true);
    assert_eq!(family_snapshot_names(&id), [first_name]);
}

#[test]
fn admin_group_rule_grants_every_action() {
    let id = unique_id("administered");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "to be deleted", 0);
    let name = snapshot["name"].as_str().unwrap();

    let listed = client_as_ok("carol", &["containers", "list"]);
    assert!(listed_ids(&listed).contains(&id), "{listed}");
    client_as_ok(
        "carol",
        &[
            "snapshots",
            "expiry",
            "--container",
            &id,
            "--name",
            name,
            "--days",
            "3",
        ],
    );
    assert_ne!(
        zfs_get("icu.hoody:expires", &format!("{dataset}@{name}")),
        "-"
    );
    client_as_ok(
        "carol",
        &["snapshots", "delete", "--container", &id, "--name", name],
    );
    assert!(snapshot_names(&dataset).is_empty());

    let own = unique_id("carols");
    client_as_ok("carol", &["containers", "create", "--container", &own]);
    let created = dataset_of(&own).expect("carol's container has no dataset");
    assert_eq!(zfs_get("icu.hoody:owner", &created), CAROL_UID);
    client_as_ok("carol", &["containers", "delete", "--container", &own]);
    assert!(dataset_of(&own).is_none());
}

#[test]
fn stranger_cannot_see_another_users_job() {
    let id = unique_id("job-source");
    create_container(&id);
    let snapshot = create_snapshot(&id, "", 0);
    let copy = unique_id("job-copy");
    let started = client_ok(&[
        "containers",
        "copy",
        "--from",
        &id,
        "--snapshot",
        snapshot["name"].as_str().unwrap(),
        "--container",
        &copy,
        "--clone",
        "--no-wait",
    ]);
    let job = started["data"]["job"].to_string();
    let seen = client_as("bob", &["jobs", "show", &job]);
    assert_eq!(seen.code, 3, "{}{}", seen.stdout, seen.stderr);
    client_ok(&["jobs", "show", &job]);
}
