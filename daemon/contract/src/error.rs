//! Errors that the daemon returns over D-Bus.

use zbus::DBusError;

/// An error of the manager interface.
///
/// Each variant is sent as `icu.hoody.Snapd1.Error.<Variant>` with a message that names the
/// value that failed and what to do about it. Clients match on the name, never on the message.
#[derive(Debug, DBusError)]
#[zbus(prefix = "icu.hoody.Snapd1.Error")]
pub enum Error {
    /// A D-Bus transport or protocol error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// An argument is malformed, too long or out of range.
    InvalidArgument(String),
    /// The named container or snapshot does not exist.
    NotFound(String),
    /// A container, snapshot or alias with that name already exists.
    AlreadyExists(String),
    /// The dataset is in use, or another operation is using it.
    Busy(String),
    /// The pool has no space left for the operation.
    NoSpace(String),
    /// The pool or dataset is read-only.
    ReadOnly(String),
    /// The caller may not perform the operation.
    AccessDenied(String),
    /// A restore named a snapshot that is not the newest one of its container.
    NotLatest(String),
    /// A container cannot be deleted while it has snapshots.
    HasSnapshots(String),
    /// A name matches more than one snapshot (for example an alias set twice by hand).
    Ambiguous(String),
    /// The daemon is shutting down and accepts no new operations.
    ShuttingDown(String),
    /// A ZFS operation failed for a reason not covered by another variant.
    Failed(String),
}

impl Error {
    /// Returns the short name of the error, without the interface prefix.
    pub fn short_name(&self) -> &str {
        match self {
            Error::ZBus(_) => "ZBus",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::NotFound(_) => "NotFound",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::Busy(_) => "Busy",
            Error::NoSpace(_) => "NoSpace",
            Error::ReadOnly(_) => "ReadOnly",
            Error::AccessDenied(_) => "AccessDenied",
            Error::NotLatest(_) => "NotLatest",
            Error::HasSnapshots(_) => "HasSnapshots",
            Error::Ambiguous(_) => "Ambiguous",
            Error::ShuttingDown(_) => "ShuttingDown",
            Error::Failed(_) => "Failed",
        }
    }

    /// Returns the message of the error.
    pub fn message(&self) -> String {
        match self {
            Error::ZBus(error) => error.to_string(),
            Error::InvalidArgument(message)
            | Error::NotFound(message)
            | Error::AlreadyExists(message)
            | Error::Busy(message)
            | Error::NoSpace(message)
            | Error::ReadOnly(message)
            | Error::AccessDenied(message)
            | Error::NotLatest(message)
            | Error::HasSnapshots(message)
            | Error::Ambiguous(message)
            | Error::ShuttingDown(message)
            | Error::Failed(message) => message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_carry_prefix() {
        let error = Error::NotFound("container c1 not found".into());
        assert_eq!(error.name().as_str(), "icu.hoody.Snapd1.Error.NotFound");
        assert_eq!(error.description(), Some("container c1 not found"));
    }

    #[test]
    fn short_name_matches_wire_name() {
        let errors = [
            Error::InvalidArgument(String::new()),
            Error::NotFound(String::new()),
            Error::AlreadyExists(String::new()),
            Error::Busy(String::new()),
            Error::NoSpace(String::new()),
            Error::ReadOnly(String::new()),
            Error::AccessDenied(String::new()),
            Error::NotLatest(String::new()),
            Error::HasSnapshots(String::new()),
            Error::Ambiguous(String::new()),
            Error::ShuttingDown(String::new()),
            Error::Failed(String::new()),
        ];
        for error in errors {
            let expected = format!("{}.{}", crate::ERROR_PREFIX, error.short_name());
            assert_eq!(error.name().as_str(), expected);
        }
    }
}
