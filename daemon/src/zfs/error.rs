//! Typed ZFS errors, mapped from errno values and libzfs error codes in this one place.

use std::fmt;

use super::sys;

/// The class of a failed ZFS call, which decides how the caller reacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The dataset or snapshot does not exist (`ENOENT`).
    NotFound,
    /// A dataset or snapshot of that name already exists (`EEXIST`).
    AlreadyExists,
    /// The dataset is busy: mounted and in use, held, or has dependent clones (`EBUSY`).
    Busy,
    /// The pool or a quota has no space left (`ENOSPC`, `EDQUOT`).
    NoSpace,
    /// The pool or dataset is read-only (`EROFS`).
    ReadOnly,
    /// The process lacks the privilege for the call (`EPERM`, `EACCES`).
    PermissionDenied,
    /// The kernel rejected a name or property value (`EINVAL`, `ENAMETOOLONG`).
    InvalidArgument,
    /// Any other failure; the errno or libzfs code is kept in [`ZfsError`].
    Other,
}

impl ErrorKind {
    /// Maps an errno value returned by a libzfs_core call.
    pub fn from_errno(errno: i32) -> ErrorKind {
        match errno {
            libc::ENOENT => ErrorKind::NotFound,
            libc::EEXIST => ErrorKind::AlreadyExists,
            libc::EBUSY => ErrorKind::Busy,
            libc::ENOSPC | libc::EDQUOT => ErrorKind::NoSpace,
            libc::EROFS => ErrorKind::ReadOnly,
            libc::EPERM | libc::EACCES => ErrorKind::PermissionDenied,
            libc::EINVAL | libc::ENAMETOOLONG => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        }
    }

    /// Maps an `EZFS_*` code returned by `libzfs_errno`.
    ///
    /// The codes come from `zfs_error_t` in the installed `libzfs.h`.
    pub fn from_libzfs(code: i32) -> ErrorKind {
        let Ok(code) = u32::try_from(code) else {
            return ErrorKind::Other;
        };
        match code {
            sys::zfs_error_EZFS_NOENT => ErrorKind::NotFound,
            sys::zfs_error_EZFS_EXISTS => ErrorKind::AlreadyExists,
            sys::zfs_error_EZFS_BUSY | sys::zfs_error_EZFS_UMOUNTFAILED => ErrorKind::Busy,
            sys::zfs_error_EZFS_NOSPC => ErrorKind::NoSpace,
            sys::zfs_error_EZFS_POOLREADONLY => ErrorKind::ReadOnly,
            sys::zfs_error_EZFS_PERM => ErrorKind::PermissionDenied,
            sys::zfs_error_EZFS_INVALIDNAME
            | sys::zfs_error_EZFS_BADPROP
            | sys::zfs_error_EZFS_PROPREADONLY => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        }
    }
}

/// The code that a ZFS call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// An errno value from libzfs_core or the kernel.
    Errno(i32),
    /// An `EZFS_*` value from libzfs.
    Libzfs(i32),
}

/// A failed ZFS call: what was called, on what, and why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsError {
    pub kind: ErrorKind,
    pub code: Code,
    /// The library call that failed, for example `lzc_snapshot`.
    pub operation: &'static str,
    /// The dataset or snapshot that the call was about.
    pub target: String,
    /// The library's description of the failure.
    pub description: String,
}

impl ZfsError {
    /// Builds an error from an errno value returned by a libzfs_core call.
    pub fn from_errno(operation: &'static str, target: &str, errno: i32) -> ZfsError {
        ZfsError {
            kind: ErrorKind::from_errno(errno),
            code: Code::Errno(errno),
            operation,
            target: target.to_string(),
            description: std::io::Error::from_raw_os_error(errno).to_string(),
        }
    }

    /// Builds an error from a libzfs error code and its description.
    pub fn from_libzfs(
        operation: &'static str,
        target: &str,
        code: i32,
        description: String,
    ) -> ZfsError {
        ZfsError {
            kind: ErrorKind::from_libzfs(code),
            code: Code::Libzfs(code),
            operation,
            target: target.to_string(),
            description,
        }
    }
}

impl fmt::Display for ZfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            Code::Errno(errno) => format!("errno {errno}"),
            Code::Libzfs(code) => format!("libzfs error {code}"),
        };
        write!(
            f,
            "{} on {} failed: {} ({code})",
            self.operation, self.target, self.description
        )
    }
}

impl std::error::Error for ZfsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_enoent_is_not_found() {
        assert_eq!(ErrorKind::from_errno(libc::ENOENT), ErrorKind::NotFound);
    }

    #[test]
    fn errno_eexist_is_already_exists() {
        assert_eq!(
            ErrorKind::from_errno(libc::EEXIST),
            ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn errno_ebusy_is_busy() {
        assert_eq!(ErrorKind::from_errno(libc::EBUSY), ErrorKind::Busy);
    }

    #[test]
    fn errno_enospc_and_edquot_are_no_space() {
        assert_eq!(ErrorKind::from_errno(libc::ENOSPC), ErrorKind::NoSpace);
        assert_eq!(ErrorKind::from_errno(libc::EDQUOT), ErrorKind::NoSpace);
    }

    #[test]
    fn errno_erofs_is_read_only() {
        assert_eq!(ErrorKind::from_errno(libc::EROFS), ErrorKind::ReadOnly);
    }

    #[test]
    fn errno_eperm_and_eacces_are_permission() {
        assert_eq!(
            ErrorKind::from_errno(libc::EPERM),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            ErrorKind::from_errno(libc::EACCES),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn errno_einval_is_invalid_argument() {
        assert_eq!(
            ErrorKind::from_errno(libc::EINVAL),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            ErrorKind::from_errno(libc::ENAMETOOLONG),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn errno_unknown_is_other() {
        assert_eq!(ErrorKind::from_errno(libc::EIO), ErrorKind::Other);
        assert_eq!(ErrorKind::from_errno(0), ErrorKind::Other);
    }

    #[test]
    fn libzfs_codes_map_to_kinds() {
        let cases = [
            (sys::zfs_error_EZFS_NOENT, ErrorKind::NotFound),
            (sys::zfs_error_EZFS_EXISTS, ErrorKind::AlreadyExists),
            (sys::zfs_error_EZFS_BUSY, ErrorKind::Busy),
            (sys::zfs_error_EZFS_UMOUNTFAILED, ErrorKind::Busy),
            (sys::zfs_error_EZFS_NOSPC, ErrorKind::NoSpace),
            (sys::zfs_error_EZFS_POOLREADONLY, ErrorKind::ReadOnly),
            (sys::zfs_error_EZFS_PERM, ErrorKind::PermissionDenied),
            (sys::zfs_error_EZFS_INVALIDNAME, ErrorKind::InvalidArgument),
            (sys::zfs_error_EZFS_UNKNOWN, ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(
                ErrorKind::from_libzfs(code as i32),
                kind,
                "libzfs code {code}"
            );
        }
    }

    #[test]
    fn libzfs_negative_code_is_other() {
        assert_eq!(ErrorKind::from_libzfs(-1), ErrorKind::Other);
    }

    #[test]
    fn display_names_call_target_and_errno() {
        let error = ZfsError::from_errno("lzc_snapshot", "tank/c1@snap-1", libc::ENOSPC);
        let text = error.to_string();
        assert!(
            text.starts_with("lzc_snapshot on tank/c1@snap-1 failed: "),
            "{text}"
        );
        assert!(text.ends_with("(errno 28)"), "{text}");
    }
}
