//! The D-Bus contract of hoody-snapd, shared by the daemon and its clients.
//!
//! The interface is defined once, as [`Manager`], a zbus interface that is generic over the
//! [`Backend`] that does the work. The daemon serves `Manager` with its ZFS backend, and zbus
//! generates [`ManagerProxy`] for clients from the same definition, so the two cannot drift.
//! This crate does not link the ZFS libraries.

mod error;
mod interface;
mod types;

pub use error::Error;
pub use interface::{Backend, Caller, JobFinishedStream, JobProgressStream, Manager, ManagerProxy};
pub use types::{
    ContainerInfo, ExpiryPreview, ExpiryProblem, JobInfo, SnapshotInfo, StatusInfo,
    DELETE_REASON_EXPIRED, DELETE_REASON_USER, JOB_FAILED, JOB_RUNNING, JOB_SUCCEEDED,
};

/// Well-known bus name that the daemon owns on the system bus.
pub const BUS_NAME: &str = "icu.hoody.Snapd1";

/// Object path of the manager object.
pub const OBJECT_PATH: &str = "/icu/hoody/Snapd1";

/// Name of the manager interface.
pub const INTERFACE_NAME: &str = "icu.hoody.Snapd1.Manager";

/// Prefix of every error name that the daemon returns.
pub const ERROR_PREFIX: &str = "icu.hoody.Snapd1.Error";

/// Introspection data of the manager interface as shipped in the repository.
///
/// A unit test checks that it is the same as what the interface definition generates.
pub const INTROSPECTION_XML: &str =
    include_str!("../../../config/dbus/icu.hoody.Snapd1.Manager.xml");
