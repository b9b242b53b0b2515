//! Containers: create, list and delete, checked against `zfs list` and `zfs get`.

use std::process::Command;

use hoody_snapd_tests::*;

#[test]
fn create_container_tags_dataset() {
    let id = unique_id("tagged");
    let dataset = create_container(&id);

    assert_eq!(zfs_get("icu.hoody:container-id", &dataset), id);
    assert_eq!(zfs_source("icu.hoody:container-id", &dataset), "local");
    assert_eq!(zfs_get("icu.hoody:project-id", &dataset), "default");
    assert_eq!(zfs_get("icu.hoody:managed", &dataset), "true");
    assert_eq!(zfs_get("mounted", &dataset), "yes");
    assert_eq!(dataset, format!("{}/{id}", container_root()));
}

#[test]
fn create_container_records_project() {
    let id = unique_id("projected");
    let envelope = client_ok(&[
        "containers",
        "create",
        "--container",
        &id,
        "--project",
        "billing",
    ]);
    let dataset = dataset_of(&id).expect("dataset exists");

    assert_eq!(zfs_get("icu.hoody:project-id", &dataset), "billing");
    assert_eq!(envelope["data"]["project"], "billing");
    assert_eq!(envelope["data"]["dataset"], dataset.as_str());
}

#[test]
fn create_container_twice_is_conflict() {
    let id = unique_id("twice");
    create_container(&id);
    let second = client(&["--json", "containers", "create", "--container", &id]);

    assert_eq!(second.code, 5, "{}", second.stdout);
    assert_eq!(
        second.json()["error"],
        "icu.hoody.Snapd1.Error.AlreadyExists"
    );
    assert_eq!(second.json()["statusCode"], 409);
}

#[test]
fn list_containers_shows_created() {
    let id = unique_id("listed");
    let dataset = create_container(&id);
    let envelope = client_ok(&["containers", "list"]);
    let containers = envelope["data"].as_array().expect("data is a list");
    let found = containers
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("container listed");

    assert_eq!(found["dataset"], dataset.as_str());
    assert_eq!(found["snapshot_count"], 0);
    assert_eq!(found["mountpoint"], mountpoint(&dataset).to_str().unwrap());
}

#[test]
fn delete_empty_container_destroys_dataset() {
    let id = unique_id("deleted");
    let dataset = create_container(&id);
    client_ok(&["containers", "delete", "--container", &id]);

    assert!(!zfs_exists(&dataset), "zfs list still shows {dataset}");
}

#[test]
fn delete_container_keeps_snapshots() {
    let id = unique_id("keeps");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "kept", 0);
    let name = snapshot["name"].as_str().unwrap();
    client_ok(&["containers", "delete", "--container", &id]);

    assert!(!zfs_exists(&dataset), "zfs list still shows {dataset}");
    let kept = internal_datasets(&id);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, "deleted");
    assert_eq!(kept[0].2, "no", "a deleted container is mounted");
    let full = format!("{}@{name}", kept[0].0);
    assert_eq!(zfs_get("icu.hoody:alias", &full), "kept");

    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["name"], name);
    assert_eq!(listed["data"][0]["container_deleted"], true);
    let containers = client_ok(&["containers", "list"]);
    assert!(containers["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != id.as_str()));

    client_ok(&["snapshots", "delete", "--container", &id, "--name", "kept"]);
    assert!(
        internal_datasets(&id).is_empty(),
        "space of the deleted container not freed"
    );
    let gone = client(&["--json", "snapshots", "list", "--container", &id]);
    assert_eq!(gone.code, 3, "{}", gone.stdout);
}

#[test]
fn delete_unknown_container_is_not_found() {
    let result = client(&[
        "--json",
        "containers",
        "delete",
        "--container",
        "never-made",
    ]);

    assert_eq!(result.code, 3);
    assert_eq!(result.json()["error"], "icu.hoody.Snapd1.Error.NotFound");
}

#[test]
fn unicode_container_works_end_to_end() {
    let id = unique_id("café");
    let dataset = create_container(&id);
    assert!(dataset.contains("caf:c3:a9"), "{dataset}");
    std::fs::write(mountpoint(&dataset).join("menu"), "espresso").unwrap();

    let snapshot = create_snapshot(&id, "crème", 1);
    std::fs::write(mountpoint(&dataset).join("menu"), "latte").unwrap();
    client_ok(&[
        "snapshots",
        "restore",
        "--container",
        &id,
        "--name",
        "crème",
    ]);
    assert_eq!(
        std::fs::read_to_string(mountpoint(&dataset).join("menu")).unwrap(),
        "espresso"
    );

    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["alias"], "crème");
    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        &id,
        "--name",
        snapshot["name"].as_str().unwrap(),
    ]);
    client_ok(&["containers", "delete", "--container", &id]);
    assert!(!zfs_exists(&dataset));
}

#[test]
fn container_not_made_by_daemon_is_not_listed() {
    let dataset = format!("{}/by-hand-{}", container_root(), std::process::id());
    zfs(&["create", &dataset]);
    let envelope = client_ok(&["containers", "list"]);
    let containers = envelope["data"].as_array().unwrap();

    assert!(containers.iter().all(|c| c["dataset"] != dataset.as_str()));
    let by_id = client(&[
        "--json",
        "snapshots",
        "list",
        "--container",
        &format!("by-hand-{}", std::process::id()),
    ]);
    assert_eq!(by_id.code, 3, "{}", by_id.stdout);
}

#[test]
fn status_reports_pool_and_counts() {
    let id = unique_id("status");
    create_container(&id);
    let snapshot = create_snapshot(&id, "status-check", 3);
    let status = client_ok(&["status"])["data"].clone();

    let pool = container_root().split('/').next().unwrap().to_string();
    assert_eq!(status["pool"], pool.as_str());
    let health = Command::new("zpool")
        .args(["list", "-H", "-o", "health", &pool])
        .output()
        .unwrap();
    assert_eq!(
        status["pool_health"],
        String::from_utf8_lossy(&health.stdout).trim()
    );
    let size = Command::new("zpool")
        .args(["list", "-Hp", "-o", "size", &pool])
        .output()
        .unwrap();
    assert_eq!(
        status["pool_size"].as_u64().unwrap().to_string(),
        String::from_utf8_lossy(&size.stdout).trim()
    );
    assert!(status["pool_free"].as_u64().unwrap() > 0);
    let module = std::fs::read_to_string("/sys/module/zfs/version").unwrap();
    assert!(
        status["zfs_kernel"]
            .as_str()
            .unwrap()
            .contains(module.trim()),
        "{status}"
    );
    assert!(status["containers"].as_u64().unwrap() >= 1);
    assert!(status["snapshots"].as_u64().unwrap() >= 1);

    let newest = status["newest_snapshots"].as_array().unwrap();
    let ours = newest
        .iter()
        .find(|entry| entry["container"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} is not in {status}"));
    assert_eq!(ours["created_at"], snapshot["created_at"]);
    let next = status["next_expiry_at"].as_str().unwrap();
    assert!(
        next <= snapshot["expires_at"].as_str().unwrap(),
        "next expiry {next} is after {snapshot}"
    );

    let text = client(&["status"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains(&id), "{}", text.stdout);
}
