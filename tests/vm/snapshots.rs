//! Snapshots: create, list, restore, delete and alias, each checked with the `zfs` command.

use chrono::{DateTime, Duration, Utc};
use hoody_snapd_tests::*;
use std::collections::HashMap;

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time is a string"))
        .expect("time is RFC 3339")
        .with_timezone(&Utc)
}

fn is_snapshot_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("snap-") else {
        return false;
    };
    let stamp = &rest.as_bytes()[..rest.len().min(15)];
    let digits = stamp.iter().enumerate().all(|(i, b)| {
        if i == 8 {
            *b == b'-'
        } else {
            b.is_ascii_digit()
        }
    });
    let suffix_ok = rest.len() == 15
        || (rest.len() == 19
            && rest.as_bytes()[15] == b'-'
            && rest[16..].bytes().all(|b| b.is_ascii_digit()));
    stamp.len() == 15 && digits && suffix_ok
}

#[test]
fn create_snapshot_stores_alias_and_expiry() {
    let id = unique_id("meta");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "before-ai-changes", 7);
    let name = snapshot["name"].as_str().unwrap();
    let full = format!("{dataset}@{name}");

    assert!(is_snapshot_name(name), "{name}");
    assert!(zfs_exists(&full));
    assert_eq!(zfs_get("icu.hoody:alias", &full), "before-ai-changes");
    assert_eq!(zfs_source("icu.hoody:alias", &full), "local");
    assert_eq!(zfs_get("icu.hoody:managed", &full), "true");
    let created = time(&snapshot["created_at"]);
    let expires = time(&serde_json::Value::String(zfs_get(
        "icu.hoody:expires",
        &full,
    )));
    assert_eq!(expires - created, Duration::days(7));
    assert_eq!(time(&snapshot["expires_at"]), expires);
    assert_eq!(snapshot["stateful"], false);
    assert_eq!(snapshot["last_used_at"], serde_json::Value::Null);
}

#[test]
fn permanent_snapshot_has_no_expiry() {
    let id = unique_id("permanent");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "", 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());

    assert_eq!(zfs_get("icu.hoody:expires", &full), "-");
    assert_eq!(zfs_get("icu.hoody:alias", &full), "-");
    assert_eq!(snapshot["expires_at"], serde_json::Value::Null);
    assert_eq!(snapshot["alias"], serde_json::Value::Null);
}

#[test]
fn snapshot_created_time_matches_zfs() {
    let id = unique_id("created");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "", 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());
    let creation: i64 = zfs_get("creation", &full).parse().unwrap();
    let created = time(&snapshot["created_at"]).timestamp();

    assert!(
        (created - creation).abs() <= 2,
        "created_at {created}, zfs creation {creation}"
    );
}

#[test]
fn list_matches_zfs_list() {
    let id = unique_id("listing");
    let dataset = create_container(&id);
    for alias in ["one", "two", "three"] {
        create_snapshot(&id, alias, 0);
    }
    let envelope = client_ok(&["snapshots", "list", "--container", &id]);
    let listed: Vec<String> = envelope["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let aliases: Vec<&str> = envelope["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();

    assert_eq!(listed, snapshot_names(&dataset));
    assert_eq!(aliases, ["one", "two", "three"]);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, listed, "names do not sort by creation");
}

#[test]
fn restore_latest_brings_back_content() {
    let id = unique_id("restore");
    let dataset = create_container(&id);
    let file = mountpoint(&dataset).join("app.conf");
    std::fs::write(&file, "version=1").unwrap();
    let snapshot = create_snapshot(&id, "v1", 0);
    std::fs::write(&file, "version=2").unwrap();
    std::fs::write(mountpoint(&dataset).join("new-file"), "x").unwrap();

    let envelope = client_ok(&["snapshots", "restore", "--container", &id, "--name", "v1"]);

    assert_eq!(std::fs::read_to_string(&file).unwrap(), "version=1");
    assert!(!mountpoint(&dataset).join("new-file").exists());
    let name = snapshot["name"].as_str().unwrap();
    let full = format!("{dataset}@{name}");
    assert_ne!(zfs_get("icu.hoody:last-used", &full), "-");
    assert_eq!(envelope["data"]["name"], name);
    assert!(envelope["data"]["last_used_at"].is_string());
}

#[test]
fn delete_by_name_and_alias() {
    let id = unique_id("delete");
    let dataset = create_container(&id);
    let first = create_snapshot(&id, "by-alias", 0);
    let second = create_snapshot(&id, "", 0);
    let second_name = second["name"].as_str().unwrap();

    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        &id,
        "--name",
        "by-alias",
    ]);
    assert!(!zfs_exists(&format!(
        "{dataset}@{}",
        first["name"].as_str().unwrap()
    )));
    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        &id,
        "--name",
        second_name,
    ]);
    assert!(!zfs_exists(&format!("{dataset}@{second_name}")));
    assert!(snapshot_names(&dataset).is_empty());
}

#[test]
fn delete_unknown_snapshot_is_not_found() {
    let id = unique_id("unknown");
    create_container(&id);
    let result = client(&[
        "--json",
        "snapshots",
        "delete",
        "--container",
        &id,
        "--name",
        "nope",
    ]);

    assert_eq!(result.code, 3, "{}", result.stdout);
    assert_eq!(result.json()["error"], "icu.hoody.Snapd1.Error.NotFound");
}

#[test]
fn alias_set_and_clear() {
    let id = unique_id("alias");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "old", 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());

    client_ok(&[
        "snapshots",
        "alias",
        "--container",
        &id,
        "--name",
        "old",
        "--alias",
        "new",
    ]);
    assert_eq!(zfs_get("icu.hoody:alias", &full), "new");
    client_ok(&[
        "snapshots",
        "alias",
        "--container",
        &id,
        "--name",
        "new",
        "--clear",
    ]);
    assert_eq!(zfs_get("icu.hoody:alias", &full), "-");
    assert_eq!(zfs_get("icu.hoody:managed", &full), "true");
}

#[test]
fn duplicate_alias_is_rejected() {
    let id = unique_id("dupalias");
    let dataset = create_container(&id);
    create_snapshot(&id, "same", 0);
    let before = snapshot_names(&dataset);
    let result = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--alias",
        "same",
    ]);

    assert_eq!(result.code, 5, "{}", result.stdout);
    assert_eq!(
        result.json()["error"],
        "icu.hoody.Snapd1.Error.AlreadyExists"
    );
    assert_eq!(snapshot_names(&dataset), before);
}

#[test]
fn concurrent_creates_get_distinct_names() {
    let id = unique_id("burst");
    let dataset = create_container(&id);
    let aliases: Vec<String> = (0..5).map(|i| format!("burst-{i}")).collect();

    let created = block_on(async {
        let (_connection, proxy) = proxy().await;
        let calls = aliases
            .iter()
            .map(|alias| proxy.create_snapshot(&id, alias, 1));
        futures_util::future::join_all(calls).await
    });

    let mut by_name = HashMap::new();
    for (alias, result) in aliases.iter().zip(created) {
        let snapshot = result.unwrap_or_else(|error| panic!("create {alias} failed: {error}"));
        assert_eq!(snapshot.alias.as_deref(), Some(alias.as_str()));
        by_name.insert(snapshot.name.clone(), alias.clone());
    }
    assert_eq!(by_name.len(), 5, "names are not distinct: {by_name:?}");
    let names = snapshot_names(&dataset);
    assert_eq!(names.len(), 5);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names, "names do not sort in creation order");
    for name in &names {
        let alias = zfs_get("icu.hoody:alias", &format!("{dataset}@{name}"));
        assert_eq!(
            &alias, &by_name[name],
            "snapshot {name} carries another call's alias"
        );
    }
}

#[test]
fn manual_snapshot_is_listed_unmanaged() {
    let id = unique_id("manual");
    let dataset = create_container(&id);
    zfs(&["snapshot", &format!("{dataset}@manual")]);
    let envelope = client_ok(&["snapshots", "list", "--container", &id]);
    let listed = &envelope["data"][0];

    assert_eq!(listed["name"], "manual");
    assert_eq!(listed["managed"], false);
    assert_eq!(listed["alias"], serde_json::Value::Null);
}

#[test]
fn junk_alias_set_by_hand_lists_exactly() {
    let id = unique_id("junk");
    let dataset = create_container(&id);
    let kept = create_snapshot(&id, "kept", 3);
    let target = create_snapshot(&id, "target", 0);
    let junk = "x\tlocal\npool/c1\ticu.hoody:expires\t0";
    let full = format!("{dataset}@{}", target["name"].as_str().unwrap());
    zfs(&["set", &format!("icu.hoody:alias={junk}"), &full]);

    let envelope = client_ok(&["snapshots", "list", "--container", &id]);
    let listed = envelope["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["alias"], "kept");
    assert_eq!(listed[0]["expires_at"], kept["expires_at"]);
    assert_eq!(listed[1]["alias"], junk);
    assert_eq!(listed[1]["expires_at"], serde_json::Value::Null);

    let table = client(&["snapshots", "list", "--container", &id]);
    assert_eq!(table.code, 0);
    assert_eq!(
        table.stdout.lines().count(),
        3,
        "a row broke: {}",
        table.stdout
    );
}

#[test]
fn snapshot_properties_not_inherited_from_container() {
    let id = unique_id("inherit");
    let dataset = create_container(&id);
    zfs(&["snapshot", &format!("{dataset}@by-hand")]);
    zfs(&["set", "icu.hoody:alias=on-dataset", &dataset]);
    let envelope = client_ok(&["snapshots", "list", "--container", &id]);

    assert_eq!(envelope["data"][0]["alias"], serde_json::Value::Null);
    assert_eq!(envelope["data"][0]["managed"], false);
}

#[test]
fn show_snapshot_by_alias() {
    let id = unique_id("show");
    create_container(&id);
    let snapshot = create_snapshot(&id, "shown", 2);
    let envelope = client_ok(&["snapshots", "show", "--container", &id, "--name", "shown"]);

    assert_eq!(envelope["data"], snapshot);
}
