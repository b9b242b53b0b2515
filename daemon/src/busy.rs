//! Detection of processes that use a container's files, before a restore replaces them.

use std::fs;
use std::path::{Path, PathBuf};

/// A process that has its working directory, root, executable or an open file below a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub pid: u32,
    pub command: String,
}

/// Lists the processes that use files below `mountpoint`, by reading `/proc/<pid>/cwd`,
/// `root`, `exe` and `fd/*`. Processes whose links cannot be read (they exited, or belong to
/// another namespace) are skipped.
pub fn users(mountpoint: &Path) -> Vec<User> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let dir = entry.path();
        if uses(&dir, mountpoint) {
            let command = fs::read_to_string(dir.join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            found.push(User { pid, command });
        }
    }
    found.sort_by_key(|user| user.pid);
    found
}

fn uses(process: &Path, mountpoint: &Path) -> bool {
    let below =
        |link: PathBuf| fs::read_link(link).is_ok_and(|target| target.starts_with(mountpoint));
    if ["cwd", "root", "exe"]
        .iter()
        .any(|name| below(process.join(name)))
    {
        return true;
    }
    let Ok(fds) = fs::read_dir(process.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| below(fd.path()))
}

/// Formats users for a message, at most five of them.
pub fn describe(users: &[User]) -> String {
    let mut listed: Vec<String> = users
        .iter()
        .take(5)
        .map(|u| format!("{} ({})", u.pid, u.command))
        .collect();
    if users.len() > 5 {
        listed.push(format!("and {} more", users.len() - 5));
    }
    listed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_working_directory_is_not_reported() {
        let here = std::env::current_dir().unwrap();
        assert!(users(&here)
            .iter()
            .all(|user| user.pid != std::process::id()));
    }

    #[test]
    fn child_in_directory_is_reported() {
        let dir = std::env::temp_dir().join(format!("busy-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let found = users(&dir);
        child.kill().unwrap();
        child.wait().unwrap();
        fs::remove_dir_all(&dir).ok();
        assert!(found.iter().any(|user| user.pid == child.id()), "{found:?}");
    }

    #[test]
    fn describe_caps_the_list() {
        let many: Vec<User> = (1..=7)
            .map(|pid| User {
                pid,
                command: "sh".into(),
            })
            .collect();
        assert_eq!(
            describe(&many),
            "1 (sh), 2 (sh), 3 (sh), 4 (sh), 5 (sh), and 2 more"
        );
    }
}
