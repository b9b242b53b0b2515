//! hoody-snap: a thin command-line client of hoody-snapd over the D-Bus system bus.
//!
//! The exit codes are listed in `cli::EXIT_CODES`, which `hoody-snap --help` prints.

mod cli;
mod jobs;
mod output;
mod users;

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use hoody_snapd_contract::{Error, ManagerProxy};
use serde_json::{json, Value};

use crate::cli::{Cli, Command, ContainerCommand, JobCommand, SnapshotCommand};
use crate::output::Failure;

/// Output of a successful command: a message, and the data as JSON and as text.
struct Success {
    message: String,
    data: Value,
    text: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    let result = runtime.block_on(run(cli.command));
    output::finish(cli.json, result.map(|s| (s.message, s.data, s.text)))
}

async fn run(command: Command) -> Result<Success, Failure> {
    let connection = zbus::Connection::system().await.map_err(Failure::connect)?;
    let proxy = ManagerProxy::new(&connection)
        .await
        .map_err(Failure::connect)?;
    match command {
        Command::Containers(command) => run_container(&proxy, command).await,
        Command::Snapshots(command) => run_snapshot(&proxy, command).await,
        Command::Reload => {
            call(proxy.reload().await)?;
            Ok(Success {
                message: "configuration reloaded".into(),
                data: Value::Null,
                text: String::new(),
            })
        }
        Command::Status => {
            let status = call(proxy.get_status().await)?;
            let now = chrono::Utc::now();
            Ok(Success {
                message: format!("pool {} is {}", status.pool, status.pool_health),
                data: output::status_json(&status),
                text: output::status_text(&status, now),
            })
        }
        Command::Jobs(JobCommand::Show { job }) => {
            let info = call(proxy.get_job(job).await)?;
            Ok(Success {
                message: format!("job {job} {}", info.state),
                data: output::job_json(&info),
                text: output::job_text(&info),
            })
        }
    }
}

async fn run_container(
    proxy: &ManagerProxy<'_>,
    command: ContainerCommand,
) -> Result<Success, Failure> {
    match command {
        ContainerCommand::Create { container, project } => {
            let created = call(proxy.create_container(&container, &project).await)?;
            Ok(Success {
                message: format!("created container {}", created.id),
                data: json!(created.to_json()),
                text: output::container_table(std::slice::from_ref(&created)),
            })
        }
        ContainerCommand::List => {
            let containers = call(proxy.list_containers().await)?;
            Ok(Success {
                message: format!("{} containers", containers.len()),
                data: json!(containers.iter().map(|c| c.to_json()).collect::<Vec<_>>()),
                text: output::container_table(&containers),
            })
        }
        ContainerCommand::Delete { container } => {
            call(proxy.delete_container(&container).await)?;
            Ok(Success {
                message: format!("deleted container {container}"),
                data: Value::Null,
                text: String::new(),
            })
        }
        ContainerCommand::SetOwner { container, owner } => {
            let uid = users::uid_of(&owner)
                .map_err(|message| Failure::from_error(Error::InvalidArgument(message)))?;
            let changed = call(proxy.set_owner(&container, uid).await)?;
            Ok(Success {
                message: format!(
                    "container {} now belongs to {}",
                    changed.id,
                    users::name_of(changed.owner)
                ),
                data: json!(changed.to_json()),
                text: output::container_table(std::slice::from_ref(&changed)),
            })
        }
        ContainerCommand::Copy {
            from,
            snapshot,
            container,
            project,
            clone,
            no_wait,
        } => {
            let mut options = HashMap::new();
            if clone {
                options.insert("clone".to_string(), owned_bool(true));
            }
            let waiter = jobs::Waiter::subscribe(proxy)
                .await
                .map_err(Failure::from_error)?;
            let job = call(
                proxy
                    .copy_container(&from, &snapshot, &container, &project, options)
                    .await,
            )?;
            if no_wait {
                return Ok(Success {
                    message: format!("started copy job {job}"),
                    data: json!({ "job": job }),
                    text: format!("started copy job {job}\n"),
                });
            }
            waiter.wait(proxy, job).await?;
            let copied = call(proxy.list_containers().await)?
                .into_iter()
                .find(|c| c.id == container)
                .ok_or_else(|| {
                    Failure::from_error(Error::NotFound(format!(
                        "copied container {container} not found"
                    )))
                })?;
            Ok(Success {
                message: format!("copied {from} snapshot {snapshot} into container {container}"),
                data: json!(copied.to_json()),
                text: output::container_table(std::slice::from_ref(&copied)),
            })
        }
    }
}

async fn run_snapshot(
    proxy: &ManagerProxy<'_>,
    command: SnapshotCommand,
) -> Result<Success, Failure> {
    let (message, snapshot) = match command {
        SnapshotCommand::Create {
            container,
            alias,
            expiry,
        } => {
            let created = call(proxy.create_snapshot(&container, &alias, expiry).await)?;
            (
                format!("created snapshot {} of container {container}", created.name),
                created,
            )
        }
        SnapshotCommand::CreateGroup {
            containers,
            alias,
            expiry,
        } => {
            let created = call(
                proxy
                    .create_snapshot_group(containers.clone(), &alias, expiry)
                    .await,
            )?;
            return Ok(Success {
                message: format!("created {} snapshots as one group", created.len()),
                data: json!(created.iter().map(|s| s.to_json()).collect::<Vec<_>>()),
                text: output::snapshot_table(&created),
            });
        }
        SnapshotCommand::Preview { container } => {
            let entries = call(proxy.preview_expiry(&container).await)?;
            let deleting = entries.iter().filter(|e| e.action == "delete").count();
            return Ok(Success {
                message: format!(
                    "{deleting} of {} snapshots are due for deletion",
                    entries.len()
                ),
                data: output::preview_json(&entries),
                text: output::preview_table(&entries),
            });
        }
        SnapshotCommand::ExpiryStatus => {
            let problems = call(proxy.get_expiry_status().await)?;
            return Ok(Success {
                message: format!("{} snapshots with expiry problems", problems.len()),
                data: output::problems_json(&problems),
                text: output::problems_table(&problems),
            });
        }
        SnapshotCommand::List { container } => {
            let snapshots = call(proxy.list_snapshots(&container).await)?;
            return Ok(Success {
                message: format!("{} snapshots of container {container}", snapshots.len()),
                data: json!(snapshots.iter().map(|s| s.to_json()).collect::<Vec<_>>()),
                text: output::snapshot_table(&snapshots),
            });
        }
        SnapshotCommand::Show(target) => {
            let found = call(proxy.get_snapshot(&target.container, &target.name).await)?;
            (
                format!("snapshot {} of container {}", found.name, target.container),
                found,
            )
        }
        SnapshotCommand::Restore {
            target,
            force,
            save_before,
        } => {
            let mut options = HashMap::new();
            options.insert("force".to_string(), owned_bool(force));
            options.insert("save_before".to_string(), owned_bool(save_before));
            let restored = call(
                proxy
                    .restore_snapshot(&target.container, &target.name, options)
                    .await,
            )?;
            (
                format!(
                    "restored container {} to snapshot {}",
                    target.container, restored.name
                ),
                restored,
            )
        }
        SnapshotCommand::Delete(target) => {
            let deleted = call(proxy.delete_snapshot(&target.container, &target.name).await)?;
            (
                format!(
                    "deleted snapshot {} of container {}",
                    deleted.name, target.container
                ),
                deleted,
            )
        }
        SnapshotCommand::Expiry { target, days } => {
            let changed = call(
                proxy
                    .set_expiry(&target.container, &target.name, days)
                    .await,
            )?;
            let message = match &changed.expires_at {
                Some(at) => format!("snapshot {} now expires at {at}", changed.name),
                None => format!("snapshot {} is now permanent", changed.name),
            };
            (message, changed)
        }
        SnapshotCommand::Pin(target) => {
            let changed = call(proxy.pin_snapshot(&target.container, &target.name).await)?;
            (format!("pinned snapshot {}", changed.name), changed)
        }
        SnapshotCommand::Unpin(target) => {
            let changed = call(proxy.unpin_snapshot(&target.container, &target.name).await)?;
            (format!("unpinned snapshot {}", changed.name), changed)
        }
        SnapshotCommand::Alias {
            target,
            alias,
            clear,
        } => {
            let alias = if clear {
                String::new()
            } else {
                alias.unwrap_or_default()
            };
            let changed = call(
                proxy
                    .set_alias(&target.container, &target.name, &alias)
                    .await,
            )?;
            let message = match &changed.alias {
                Some(alias) => format!(
                    "set alias of snapshot {} to {}",
                    changed.name,
                    output::escape(alias)
                ),
                None => format!("cleared alias of snapshot {}", changed.name),
            };
            (message, changed)
        }
    };
    Ok(Success {
        message,
        data: json!(snapshot.to_json()),
        text: output::snapshot_table(std::slice::from_ref(&snapshot)),
    })
}

fn owned_bool(value: bool) -> zbus::zvariant::OwnedValue {
    zbus::zvariant::Value::Bool(value)
        .try_to_owned()
        .expect("a boolean value has no file descriptor to duplicate")
}

/// Converts the result of a proxy call, turning D-Bus errors into typed failures.
fn call<T>(result: Result<T, Error>) -> Result<T, Failure> {
    result.map_err(Failure::from_error)
}
