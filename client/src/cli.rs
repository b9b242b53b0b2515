//! The command line of hoody-snap, as clap definitions.
//!
//! This module uses nothing but clap, so that the generator of man pages and shell completions
//! (`packaging/generate`) can include it and build the same `clap::Command` as the client.

use clap::{Args, Parser, Subcommand};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage error
  3  container or snapshot not found
  4  invalid argument
  5  conflict: already exists, has snapshots, not the newest snapshot, or ambiguous name
  6  busy, or the daemon is shutting down
  7  access denied
  8  no space left, or read-only pool
  9  hoody-snapd is not reachable on the system bus";

/// Client of hoody-snapd: create, list, restore and delete ZFS snapshots of containers.
#[derive(Parser)]
// The name and the about text are spelt out, not taken from Cargo, because the generator that
// includes this module is another crate. A test there checks them against client/Cargo.toml.
#[command(
    name = "hoody-snap",
    version,
    about = "Command-line client of hoody-snapd, the ZFS snapshot daemon for containers",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Print one JSON object {"statusCode", "message", "data"} instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Manage containers.
    #[command(subcommand)]
    Containers(ContainerCommand),
    /// Manage snapshots of a container.
    #[command(subcommand)]
    Snapshots(SnapshotCommand),
    /// Show background jobs.
    #[command(subcommand)]
    Jobs(JobCommand),
    /// Make the daemon read its configuration file again, as `systemctl reload` does.
    Reload,
    /// Show the daemon's health: versions, pool state and free space, counts, the next
    /// expiry, failed deletions, and the age of each container's newest snapshot.
    Status,
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// Show the state of a job.
    Show {
        /// Job id, as printed by `containers copy --no-wait`.
        job: u32,
    },
}

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Create a container: a new ZFS filesystem under the daemon's root.
    Create {
        #[arg(long, value_name = "ID")]
        container: String,
        /// Project the container belongs to.
        #[arg(long, value_name = "ID", default_value = "default")]
        project: String,
    },
    /// List containers.
    List,
    /// Delete a container. Its snapshots are kept until they are deleted or expire.
    Delete {
        #[arg(long, value_name = "ID")]
        container: String,
    },
    /// Give a container to a unix user, who may then list, create and restore its snapshots.
    SetOwner {
        #[arg(long, value_name = "ID")]
        container: String,
        /// User name or uid of the new owner.
        #[arg(long, value_name = "USER")]
        owner: String,
    },
    /// Copy a snapshot into a new container, and wait until the copy is done.
    Copy {
        /// Container whose snapshot is copied (it may be deleted).
        #[arg(long, value_name = "ID")]
        from: String,
        /// Snapshot name or alias to copy.
        #[arg(long, value_name = "NAME")]
        snapshot: String,
        /// Id of the new container.
        #[arg(long, value_name = "ID")]
        container: String,
        /// Project of the new container.
        #[arg(long, value_name = "ID", default_value = "default")]
        project: String,
        /// Make an instant copy as a ZFS clone, which keeps the source snapshot until the copy
        /// is deleted, instead of a full, independent copy.
        #[arg(long)]
        clone: bool,
        /// Print the job id and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Args)]
pub struct SnapshotTarget {
    #[arg(long, value_name = "ID")]
    pub container: String,
    /// Snapshot name (snap-YYYYMMDD-HHMMSS) or alias.
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a container.
    Create {
        #[arg(long, value_name = "ID")]
        container: String,
        /// Alias of the snapshot, at most 100 characters.
        #[arg(long, value_name = "NAME", default_value = "")]
        alias: String,
        /// Days until the snapshot expires; 0 keeps it forever.
        #[arg(long, value_name = "DAYS", default_value_t = 0)]
        expiry: u32,
    },
    /// Snapshot several containers at once, in one ZFS transaction.
    CreateGroup {
        /// A container to snapshot; repeat for each container.
        #[arg(long = "container", value_name = "ID", required = true)]
        containers: Vec<String>,
        /// Alias of every snapshot of the group, at most 100 characters.
        #[arg(long, value_name = "NAME", default_value = "")]
        alias: String,
        /// Days until the snapshots expire; 0 keeps them forever.
        #[arg(long, value_name = "DAYS", default_value_t = 0)]
        expiry: u32,
    },
    /// List the snapshots of a container, oldest first.
    List {
        #[arg(long, value_name = "ID")]
        container: String,
    },
    /// Show one snapshot.
    Show(SnapshotTarget),
    /// Restore a container to any of its snapshots, keeping all others.
    Restore {
        #[command(flatten)]
        target: SnapshotTarget,
        /// Restore even while processes use the container's files.
        #[arg(long)]
        force: bool,
        /// First snapshot the current state as before-restore (or before-restore-2...).
        #[arg(long)]
        save_before: bool,
    },
    /// Delete a snapshot.
    Delete(SnapshotTarget),
    /// Set the expiry of a snapshot, in days from now; 0 makes it permanent.
    Expiry {
        #[command(flatten)]
        target: SnapshotTarget,
        /// Days from now until the snapshot expires; 0 keeps it forever.
        #[arg(long, value_name = "DAYS")]
        days: u32,
    },
    /// Pin a snapshot: nothing deletes it, expiry included, until it is unpinned.
    Pin(SnapshotTarget),
    /// Remove the pin of a snapshot.
    Unpin(SnapshotTarget),
    /// Show which snapshots expiry will delete, and why it keeps the others.
    Preview {
        /// Only this container; all containers when left out.
        #[arg(long, value_name = "ID", default_value = "")]
        container: String,
    },
    /// Show the snapshots that expiry could not delete, or whose expiry is not a time.
    ExpiryStatus,
    /// Set or clear the alias of a snapshot.
    Alias {
        #[command(flatten)]
        target: SnapshotTarget,
        /// New alias.
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        alias: Option<String>,
        /// Remove the alias.
        #[arg(long)]
        clear: bool,
    },
}
