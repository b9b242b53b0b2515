//! Containers: create, list and delete, checked against `zfs list` and `zfs get`.

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
fn delete_container_with_snapshots_is_rejected() {
    let id = unique_id("keeps");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "kept", 0);
    let result = client(&["--json", "containers", "delete", "--container", &id]);

    assert_eq!(result.code, 5, "{}", result.stdout);
    assert_eq!(
        result.json()["error"],
        "icu.hoody.Snapd1.Error.HasSnapshots"
    );
    assert!(zfs_exists(&dataset));
    let name = snapshot["name"].as_str().unwrap();
    assert!(zfs_exists(&format!("{dataset}@{name}")));
    assert_eq!(zfs_get("mounted", &dataset), "yes");
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
