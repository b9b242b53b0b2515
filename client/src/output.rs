//! Client output: text tables, JSON envelopes, error messages and exit codes.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use hoody_snapd_contract::{
    ContainerInfo, Error, ExpiryPreview, ExpiryProblem, JobInfo, SnapshotInfo, StatusInfo,
    BUS_NAME, ERROR_PREFIX,
};
use serde_json::{json, Value};
use unicode_width::UnicodeWidthStr;

/// A failed command: the exit code, the HTTP-style status for `--json`, the D-Bus error name
/// and the message.
#[derive(Debug)]
pub struct Failure {
    exit_code: u8,
    status: u16,
    error: String,
    message: String,
}

impl Failure {
    /// Builds the failure for a connection to the system bus or the daemon that failed.
    pub fn connect(error: zbus::Error) -> Failure {
        Failure {
            exit_code: 9,
            status: 503,
            error: "org.freedesktop.DBus.Error.NoServer".into(),
            message: format!(
                "cannot connect to the D-Bus system bus: {error}; is dbus running on this host?"
            ),
        }
    }

    /// Builds the failure for an error that the daemon (or the bus on its behalf) returned.
    pub fn from_error(error: Error) -> Failure {
        let (exit_code, status) = match &error {
            Error::NotFound(_) => (3, 404),
            Error::InvalidArgument(_) => (4, 400),
            Error::AlreadyExists(_)
            | Error::HasSnapshots(_)
            | Error::NotLatest(_)
            | Error::Ambiguous(_) => (5, 409),
            Error::Busy(_) | Error::ShuttingDown(_) => (6, 423),
            Error::AccessDenied(_) => (7, 403),
            Error::NoSpace(_) => (8, 507),
            Error::ReadOnly(_) => (8, 403),
            Error::Failed(_) => (1, 500),
            Error::ZBus(inner) => return Failure::from_bus(inner),
        };
        Failure {
            exit_code,
            status,
            error: format!("{ERROR_PREFIX}.{}", error.short_name()),
            message: error.message(),
        }
    }

    /// Builds the failure for an error that a job reported by name.
    pub fn from_name(name: &str, message: &str) -> Failure {
        let short = name
            .strip_prefix(ERROR_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or("");
        let message = message.to_string();
        let error = match short {
            "NotFound" => Error::NotFound(message),
            "InvalidArgument" => Error::InvalidArgument(message),
            "AlreadyExists" => Error::AlreadyExists(message),
            "Busy" => Error::Busy(message),
            "NoSpace" => Error::NoSpace(message),
            "ReadOnly" => Error::ReadOnly(message),
            "AccessDenied" => Error::AccessDenied(message),
            "ShuttingDown" => Error::ShuttingDown(message),
            _ => Error::Failed(message),
        };
        Failure::from_error(error)
    }

    fn from_bus(error: &zbus::Error) -> Failure {
        let name = match error {
            zbus::Error::MethodError(name, _, _) => name.as_str().to_string(),
            zbus::Error::FDO(fdo) => fdo_name(fdo),
            _ => String::new(),
        };
        let (exit_code, status, message) = match name.as_str() {
            "org.freedesktop.DBus.Error.ServiceUnknown" | "org.freedesktop.DBus.Error.NameHasNoOwner" => (
                9,
                503,
                format!(
                    "hoody-snapd is not running: no process owns {BUS_NAME} on the system bus; start \
                     it with `systemctl start hoody-snapd`"
                ),
            ),
            "org.freedesktop.DBus.Error.AccessDenied" => (7, 403, format!("access denied by the bus: {error}")),
            "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
                (6, 504, format!("hoody-snapd did not reply in time: {error}"))
            }
            _ => (1, 500, format!("D-Bus call failed: {error}")),
        };
        Failure {
            exit_code,
            status,
            error: name,
            message,
        }
    }
}

fn fdo_name(error: &zbus::fdo::Error) -> String {
    use zbus::DBusError;
    error.name().as_str().to_string()
}

/// Prints the outcome of a command and returns the exit code.
pub fn finish(json_output: bool, result: Result<(String, Value, String), Failure>) -> ExitCode {
    match (json_output, result) {
        (true, Ok((message, data, _))) => {
            println!(
                "{}",
                json!({"statusCode": 200, "message": message, "data": data})
            );
            ExitCode::SUCCESS
        }
        (false, Ok((message, _, text))) => {
            if text.is_empty() {
                println!("{message}");
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        (true, Err(failure)) => {
            println!(
                "{}",
                json!({"statusCode": failure.status, "message": failure.message, "error": failure.error, "data": null})
            );
            ExitCode::from(failure.exit_code)
        }
        (false, Err(failure)) => {
            eprintln!("hoody-snap: error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Escapes control characters so a value cannot break a table row, whatever was stored in ZFS.
pub fn escape(value: &str) -> String {
    value
        .chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Formats a byte count with binary units, as `zfs list` does.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut text = String::new();
    let mut push_row = |cells: Vec<String>| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                text.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        text.push('\n');
    };
    push_row(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        push_row(row);
    }
    text
}

/// Formats snapshots as a table.
pub fn snapshot_table(snapshots: &[SnapshotInfo]) -> String {
    let rows = snapshots
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.alias.as_deref().map(escape).unwrap_or_else(|| "-".into()),
                s.created_at.clone(),
                s.expires_at.clone().unwrap_or_else(|| "never".into()),
                s.last_used_at.clone().unwrap_or_else(|| "-".into()),
                human_size(s.size),
                human_size(s.used),
                if s.managed { "yes".into() } else { "no".into() },
                if s.container_deleted {
                    "deleted".into()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "ALIAS",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "SIZE",
            "USED",
            "MANAGED",
            "CONTAINER",
        ],
        rows,
    )
}

/// Formats an expiry preview as JSON.
pub fn preview_json(entries: &[ExpiryPreview]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({"container": e.container, "name": e.name, "alias": e.alias,
                    "expires_at": e.expires_at, "action": e.action, "reason": e.reason})
            })
            .collect(),
    )
}

/// Formats an expiry preview as a table.
pub fn preview_table(entries: &[ExpiryPreview]) -> String {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                escape(&e.container),
                e.name.clone(),
                e.alias.as_deref().map(escape).unwrap_or_else(|| "-".into()),
                e.expires_at
                    .as_deref()
                    .map(escape)
                    .unwrap_or_else(|| "never".into()),
                e.action.clone(),
                e.reason.clone(),
            ]
        })
        .collect();
    table(
        &["CONTAINER", "NAME", "ALIAS", "EXPIRES", "ACTION", "REASON"],
        rows,
    )
}

/// Formats the expiry status as JSON.
pub fn problems_json(problems: &[ExpiryProblem]) -> Value {
    Value::Array(
        problems
            .iter()
            .map(|p| {
                json!({"container": p.container, "name": p.name, "reason": p.reason,
                    "since": p.since, "attempts": p.attempts})
            })
            .collect(),
    )
}

/// Formats the expiry status as a table.
pub fn problems_table(problems: &[ExpiryProblem]) -> String {
    let rows = problems
        .iter()
        .map(|p| {
            vec![
                escape(&p.container),
                p.name.clone(),
                escape(&p.reason),
                p.since.clone(),
                p.attempts.to_string(),
            ]
        })
        .collect();
    table(&["CONTAINER", "NAME", "REASON", "SINCE", "ATTEMPTS"], rows)
}

/// Formats the health view as JSON, with `null` for absent fields.
pub fn status_json(status: &StatusInfo) -> Value {
    let mut newest: Vec<(&String, &String)> = status.newest_snapshots.iter().collect();
    newest.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
    json!({
        "version": status.version,
        "zfs_userland": status.zfs_userland,
        "zfs_kernel": status.zfs_kernel,
        "pool": status.pool,
        "pool_health": status.pool_health,
        "pool_size": status.pool_size,
        "pool_free": status.pool_free,
        "containers": status.containers,
        "deleted_containers": status.deleted_containers,
        "snapshots": status.snapshots,
        "next_expiry_at": status.next_expiry_at,
        "next_expiry": status.next_expiry,
        "failed_deletions": status.failed_deletions,
        "containers_without_snapshots": status.containers_without_snapshots,
        "newest_snapshots": newest
            .iter()
            .map(|(container, created)| json!({"container": container, "created_at": created}))
            .collect::<Vec<_>>(),
    })
}

/// Formats the health view as lines of text, then the newest snapshot of each container,
/// oldest first, with its age at `now`.
pub fn status_text(status: &StatusInfo, now: DateTime<Utc>) -> String {
    let mut text = String::new();
    let mut line = |label: &str, value: String| {
        text.push_str(&format!("{label:<18}{value}\n"));
    };
    line("daemon", status.version.clone());
    line(
        "zfs",
        format!(
            "{} (kernel module {})",
            status.zfs_userland, status.zfs_kernel
        ),
    );
    line(
        "pool",
        format!(
            "{} {}, {} free of {}",
            status.pool,
            status.pool_health,
            human_size(status.pool_free),
            human_size(status.pool_size)
        ),
    );
    line(
        "containers",
        format!(
            "{} ({} without snapshots; {} deleted, kept for their snapshots)",
            status.containers, status.containers_without_snapshots, status.deleted_containers
        ),
    );
    line("snapshots", status.snapshots.to_string());
    line(
        "next expiry",
        match (&status.next_expiry_at, &status.next_expiry) {
            (Some(at), Some(snapshot)) => format!("{at} {}", escape(snapshot)),
            _ => "none".into(),
        },
    );
    line(
        "failed deletions",
        if status.failed_deletions == 0 {
            "0".into()
        } else {
            format!(
                "{} (see `hoody-snap snapshots expiry-status`)",
                status.failed_deletions
            )
        },
    );

    let mut newest: Vec<(&String, &String)> = status.newest_snapshots.iter().collect();
    newest.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
    if newest.is_empty() {
        return text;
    }
    let rows = newest
        .iter()
        .map(|(container, created)| vec![escape(container), (*created).clone(), age(created, now)])
        .collect();
    text.push('\n');
    text.push_str(&table(&["CONTAINER", "NEWEST SNAPSHOT", "AGE"], rows));
    text
}

/// Formats the time since an RFC 3339 time in the largest whole unit, or `-` when the time
/// does not parse.
fn age(time: &str, now: DateTime<Utc>) -> String {
    let Ok(then) = DateTime::parse_from_rfc3339(time) else {
        return "-".into();
    };
    let seconds = (now - then.with_timezone(&Utc)).num_seconds().max(0);
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7_199 => format!("{} min", seconds / 60),
        7_200..=172_799 => format!("{} h", seconds / 3_600),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// Formats a job as JSON.
pub fn job_json(job: &JobInfo) -> Value {
    json!({
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "done": job.done,
        "total": job.total,
        "container": job.container,
        "error": job.error,
        "message": job.message,
    })
}

/// Formats a job as text.
pub fn job_text(job: &JobInfo) -> String {
    let mut text = format!(
        "job {} ({} of container {}): {}, {} of {}\n",
        job.id,
        job.kind,
        escape(&job.container),
        job.state,
        human_size(job.done),
        human_size(job.total)
    );
    if let Some(message) = &job.message {
        text.push_str(&format!("error: {}\n", escape(message)));
    }
    text
}

/// Formats containers as a table.
pub fn container_table(containers: &[ContainerInfo]) -> String {
    let rows = containers
        .iter()
        .map(|c| {
            vec![
                escape(&c.id),
                escape(&c.project),
                escape(&crate::users::name_of(c.owner)),
                c.snapshot_count.to_string(),
                human_size(c.used),
                c.created_at.clone(),
                c.mountpoint.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "CONTAINER",
            "PROJECT",
            "OWNER",
            "SNAPSHOTS",
            "USED",
            "CREATED",
            "MOUNTPOINT",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_unicode_and_escapes_controls() {
        assert_eq!(escape("a\tb\nc 🦀"), "a\\tb\\nc 🦀");
    }

    #[test]
    fn human_size_units() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1536), "1.5K");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0M");
    }

    #[test]
    fn table_aligns_wide_characters() {
        let text = table(
            &["A", "B"],
            vec![vec!["🦀".into(), "x".into()], vec!["ab".into(), "y".into()]],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "🦀  x");
        assert_eq!(lines[2], "ab  y");
    }

    #[test]
    fn daemon_errors_map_to_exit_codes() {
        let cases = [
            (Error::NotFound(String::new()), 3),
            (Error::InvalidArgument(String::new()), 4),
            (Error::AlreadyExists(String::new()), 5),
            (Error::NotLatest(String::new()), 5),
            (Error::Busy(String::new()), 6),
            (Error::AccessDenied(String::new()), 7),
            (Error::NoSpace(String::new()), 8),
            (Error::Failed(String::new()), 1),
        ];
        for (error, code) in cases {
            let name = error.short_name().to_string();
            assert_eq!(Failure::from_error(error).exit_code, code, "{name}");
        }
    }
}
