//! Safe access to OpenZFS through libzfs_core and libzfs.
//!
//! All `unsafe` code of the daemon is in this module. Writes that libzfs_core offers (create,
//! snapshot, destroy, rollback) go through it, because its calls are thin ioctl wrappers that are
//! safe to use from several threads. Reads, mounts and property changes on existing datasets need
//! libzfs, whose handle is not thread-safe, so it is kept behind a mutex.

mod error;
mod sys;

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;

pub use error::{Code, ErrorKind, ZfsError};

/// Maximum length of a dataset or snapshot name in bytes, without the terminating NUL.
///
/// `ZFS_MAX_DATASET_NAME_LEN` (256) in `sys/fs/zfs.h` counts the NUL.
pub const MAX_NAME_LEN: usize = sys::ZFS_MAX_DATASET_NAME_LEN as usize - 1;

const FILESYSTEM: c_int = sys::zfs_type_t::ZFS_TYPE_FILESYSTEM as c_int;
const SNAPSHOT: c_int = sys::zfs_type_t::ZFS_TYPE_SNAPSHOT as c_int;

/// The properties of one filesystem or snapshot that the daemon reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    /// Full name, `pool/fs` or `pool/fs@snap`.
    pub name: String,
    /// Creation time in whole seconds since the Unix epoch (the `creation` property).
    pub creation: u64,
    /// Transaction group in which the dataset was created (the `createtxg` property).
    pub createtxg: u64,
    /// The `used` property in bytes.
    pub used: u64,
    /// The `referenced` property in bytes.
    pub referenced: u64,
    /// User properties set on this dataset itself. Values inherited from a parent (snapshots
    /// inherit from their filesystem) are left out.
    pub user_properties: BTreeMap<String, String>,
    /// Mount path of the filesystem, or `None` for snapshots and unmounted filesystems.
    pub mountpoint: Option<String>,
    /// The snapshot this filesystem was cloned from (the `origin` property).
    pub origin: Option<String>,
    /// Number of clones of this snapshot (the `numclones` property).
    pub clones: u64,
    /// Whether this snapshot is marked for deferred destruction (the `defer_destroy` property):
    /// ZFS destroys it when its last clone or hold goes away.
    pub defer_destroy: bool,
    /// Number of user holds on this snapshot (the `userrefs` property).
    pub holds: u64,
    /// When a snapshot of this filesystem was last created, destroyed or renamed, in whole
    /// seconds since the Unix epoch (the `snapshots_changed` property of OpenZFS 2.2 and later).
    /// 0 for snapshots, for a filesystem that never had one, and on older OpenZFS.
    pub snapshots_changed: u64,
    /// Space used by this filesystem's snapshots in bytes (the `usedbysnapshots` property); 0
    /// for snapshots.
    pub used_by_snapshots: u64,
}

/// Snapshots that are made together or not at all, with the user properties they all get.
pub struct SnapshotRequest<'a> {
    pub snapshots: &'a [String],
    pub properties: &'a [(&'a str, &'a str)],
}

/// Channel program of `Zfs::snapshot_requests`. Its argument maps each request key to
/// `{snapshots = {name = ""...}, properties = {name = value...}}`, and it returns, by request
/// key, `{error = errno, snapshot = name}`. It runs in syncing context, so every snapshot it
/// makes is in the same transaction group. A request is checked whole before any of its
/// snapshots is made, and its snapshots are destroyed again when setting a property fails.
const SNAPSHOT_PROGRAM: &CStr = c"
local requests = ...
local results = {}
for key, request in pairs(requests) do
    local err, failed = 0, ''
    for snapshot in pairs(request.snapshots) do
        err = zfs.check.snapshot(snapshot)
        if err ~= 0 then
            failed = snapshot
            break
        end
    end
    if err == 0 then
        local made = {}
        for snapshot in pairs(request.snapshots) do
            err = zfs.sync.snapshot(snapshot)
            if err ~= 0 then
                failed = snapshot
                break
            end
            made[#made + 1] = snapshot
            for property, value in pairs(request.properties) do
                err = zfs.sync.set_prop(snapshot, property, value)
                if err ~= 0 then
                    failed = snapshot
                    break
                end
            end
            if err ~= 0 then
                break
            end
        end
        if err ~= 0 then
            for _, snapshot in ipairs(made) do
                zfs.sync.destroy(snapshot)
            end
        end
    end
    results[key] = {error = err, snapshot = failed}
end
return results
";

/// The state of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// `ONLINE`, `DEGRADED`, `FAULTED`, `OFFLINE`, `UNAVAIL` or `REMOVED`.
    pub health: String,
    /// Size in bytes (the `size` property).
    pub size: u64,
    /// Free space in bytes (the `free` property).
    pub free: u64,
}

/// A failed `lzc_snapshot` or `lzc_destroy_snaps` batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// The error of the call as a whole.
    pub error: ZfsError,
    /// The snapshots that failed, each with its own errno. Empty when ZFS named none.
    pub failed: Vec<(String, ZfsError)>,
}

/// An open connection to the ZFS kernel module.
pub struct Zfs {
    libzfs: Mutex<LibzfsHandle>,
}

struct LibzfsHandle(*mut sys::libzfs_handle_t);

// SAFETY: the libzfs handle is only used while the mutex around it is locked, so no two threads
// use it at once. libzfs keeps no thread-local state in it.
unsafe impl Send for LibzfsHandle {}

impl Drop for LibzfsHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from libzfs_init and is freed exactly once, here.
        unsafe { sys::libzfs_fini(self.0) };
    }
}

/// An owned nvlist, freed on drop.
struct NvList(*mut sys::nvlist_t);

impl NvList {
    fn new() -> NvList {
        // SAFETY: fnvlist_alloc aborts on allocation failure instead of returning NULL.
        NvList(unsafe { sys::fnvlist_alloc() })
    }

    fn add_boolean(&mut self, name: &CStr) {
        // SAFETY: self.0 is a valid nvlist and name is NUL-terminated; fnvlist copies the name.
        unsafe { sys::fnvlist_add_boolean(self.0, name.as_ptr()) };
    }

    fn add_list(&mut self, name: &CStr, value: &NvList) {
        // SAFETY: both lists are valid and the name is NUL-terminated; the value is copied.
        unsafe { sys::fnvlist_add_nvlist(self.0, name.as_ptr(), value.0) };
    }

    fn add_string(&mut self, name: &CStr, value: &CStr) {
        // SAFETY: as in add_boolean; the value is copied too.
        unsafe { sys::fnvlist_add_string(self.0, name.as_ptr(), value.as_ptr()) };
    }
}

impl Drop for NvList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the list is owned by this value and freed once.
            unsafe { sys::nvlist_free(self.0) };
        }
    }
}

/// Reads the (name, errno) pairs of an errors nvlist that lzc_snapshot or lzc_destroy_snaps
/// filled in.
fn errno_pairs(list: &NvList, operation: &'static str) -> Vec<(String, ZfsError)> {
    let mut failed = Vec::new();
    if list.0.is_null() {
        return failed;
    }
    // SAFETY: list.0 is a valid nvlist, and nvlist_next_nvpair walks it until it returns NULL. The
    // names and values it yields stay valid while the list lives.
    unsafe {
        let mut pair = sys::nvlist_next_nvpair(list.0, ptr::null());
        while !pair.is_null() {
            let name = CStr::from_ptr(sys::nvpair_name(pair))
                .to_string_lossy()
                .into_owned();
            let mut errno: i32 = 0;
            if sys::nvpair_value_int32(pair, &mut errno) == 0 {
                let error = ZfsError::from_errno(operation, &name, errno);
                failed.push((name, error));
            }
            pair = sys::nvlist_next_nvpair(list.0, pair);
        }
    }
    failed
}

fn c_string(value: &str) -> Result<CString, ZfsError> {
    CString::new(value).map_err(|_| ZfsError {
        kind: ErrorKind::InvalidArgument,
        code: Code::Errno(libc::EINVAL),
        operation: "CString::new",
        target: value.escape_debug().to_string(),
        description: "the value contains a NUL byte".into(),
    })
}

fn string_list(values: &[(&str, &str)]) -> Result<NvList, ZfsError> {
    let mut list = NvList::new();
    for (name, value) in values {
        list.add_string(&c_string(name)?, &c_string(value)?);
    }
    Ok(list)
}

fn name_list(names: &[String]) -> Result<NvList, ZfsError> {
    let mut list = NvList::new();
    for name in names {
        list.add_boolean(&c_string(name)?);
    }
    Ok(list)
}

fn errno_result(operation: &'static str, target: &str, errno: c_int) -> Result<(), ZfsError> {
    if errno == 0 {
        Ok(())
    } else {
        Err(ZfsError::from_errno(operation, target, errno))
    }
}

impl Zfs {
    /// Opens /dev/zfs through libzfs_core and libzfs.
    pub fn open() -> Result<Zfs, ZfsError> {
        // SAFETY: libzfs_core_init may be called more than once; it takes a reference.
        let errno = unsafe { sys::libzfs_core_init() };
        errno_result("libzfs_core_init", "/dev/zfs", errno)?;

        // SAFETY: libzfs_init returns NULL with errno set on failure.
        let handle = unsafe { sys::libzfs_init() };
        if handle.is_null() {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(ZfsError::from_errno("libzfs_init", "/dev/zfs", errno));
        }
        // SAFETY: handle is valid; libzfs should report errors to us, not print them.
        unsafe { sys::libzfs_print_on_error(handle, sys::boolean_t_B_FALSE) };

        Ok(Zfs {
            libzfs: Mutex::new(LibzfsHandle(handle)),
        })
    }

    /// Returns the versions of the user-space libraries and of the kernel module.
    pub fn versions(&self) -> (String, String) {
        // SAFETY: zfs_version_userland returns a static string. zfs_version_kernel returns a
        // malloc'd string or NULL, which is freed here.
        unsafe {
            let userland = CStr::from_ptr(sys::zfs_version_userland())
                .to_string_lossy()
                .into_owned();
            let kernel_ptr = sys::zfs_version_kernel();
            let kernel = if kernel_ptr.is_null() {
                "unknown".to_string()
            } else {
                let text = CStr::from_ptr(kernel_ptr).to_string_lossy().into_owned();
                libc::free(kernel_ptr.cast());
                text
            };
            (userland, kernel)
        }
    }

    /// Reads the health (`ONLINE`, `DEGRADED`...), size and free space in bytes of a pool.
    pub fn pool(&self, name: &str) -> Result<Pool, ZfsError> {
        let c_name = c_string(name)?;
        let libzfs = self
            .libzfs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the library handle is valid and locked; zpool_open returns NULL on failure
        // and records the error in the handle.
        let handle = unsafe { sys::zpool_open(libzfs.0, c_name.as_ptr()) };
        if handle.is_null() {
            return Err(libzfs.last_error("zpool_open", name));
        }
        use sys::zpool_prop_t::*;
        // SAFETY: handle is an open pool handle until zpool_close; the state string is static.
        let pool = unsafe {
            let health = CStr::from_ptr(sys::zpool_get_state_str(handle))
                .to_string_lossy()
                .into_owned();
            let size = sys::zpool_get_prop_int(handle, ZPOOL_PROP_SIZE, ptr::null_mut());
            let free = sys::zpool_get_prop_int(handle, ZPOOL_PROP_FREE, ptr::null_mut());
            sys::zpool_close(handle);
            Pool { health, size, free }
        };
        Ok(pool)
    }

    /// Reports whether a dataset or snapshot exists.
    pub fn exists(&self, name: &str) -> bool {
        let Ok(name) = c_string(name) else {
            return false;
        };
        // SAFETY: name is NUL-terminated.
        unsafe { sys::lzc_exists(name.as_ptr()) == sys::boolean_t_B_TRUE }
    }

    /// Creates a filesystem with the given user properties, set in the same transaction.
    pub fn create_filesystem(
        &self,
        name: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), ZfsError> {
        let c_name = c_string(name)?;
        let props = string_list(properties)?;
        // SAFETY: c_name and props are valid for the call; no wrapping key is passed.
        let errno = unsafe {
            sys::lzc_create(
                c_name.as_ptr(),
                sys::lzc_dataset_type_LZC_DATSET_TYPE_ZFS,
                props.0,
                ptr::null_mut(),
                0,
            )
        };
        errno_result("lzc_create", name, errno)
    }

    /// Destroys a filesystem that has no snapshots and is not mounted.
    pub fn destroy(&self, name: &str) -> Result<(), ZfsError> {
        let c_name = c_string(name)?;
        // SAFETY: c_name is NUL-terminated.
        let errno = unsafe { sys::lzc_destroy(c_name.as_ptr()) };
        errno_result("lzc_destroy", name, errno)
    }

    /// Takes snapshots atomically, in one transaction group, all with the same user properties.
    ///
    /// The batch is all or nothing: when one snapshot fails, none is made, and `failed` names the
    /// snapshots that caused it.
    pub fn snapshot(
        &self,
        snapshots: &[String],
        properties: &[(&str, &str)],
    ) -> Result<(), BatchError> {
        let target = snapshots.join(" ");
        let wrap = |error| BatchError {
            error,
            failed: Vec::new(),
        };
        let names = name_list(snapshots).map_err(wrap)?;
        let props = string_list(properties).map_err(wrap)?;
        let mut errors = NvList(ptr::null_mut());
        // SAFETY: names and props are valid nvlists; lzc_snapshot allocates the errors list,
        // which NvList frees.
        let errno = unsafe { sys::lzc_snapshot(names.0, props.0, &mut errors.0) };
        if errno == 0 {
            return Ok(());
        }
        Err(BatchError {
            error: ZfsError::from_errno("lzc_snapshot", &target, errno),
            failed: errno_pairs(&errors, "lzc_snapshot"),
        })
    }

    /// Takes the snapshots of several requests in one transaction group, with a channel
    /// program. Each request is all or nothing, with its own user properties, and a request that
    /// fails leaves the others alone. Returns one result per request, in order; the outer error
    /// means that the program did not run, and then no snapshot was made.
    ///
    /// All snapshots must be in `pool`, and no filesystem may appear twice, because ZFS makes at
    /// most one snapshot of a filesystem per transaction group.
    pub fn snapshot_requests(
        &self,
        pool: &str,
        requests: &[SnapshotRequest<'_>],
    ) -> Result<Vec<Result<(), BatchError>>, ZfsError> {
        let mut arguments = NvList::new();
        for (index, request) in requests.iter().enumerate() {
            let mut entry = NvList::new();
            let mut snapshots = NvList::new();
            for snapshot in request.snapshots {
                snapshots.add_string(&c_string(snapshot)?, c"");
            }
            entry.add_list(c"snapshots", &snapshots);
            entry.add_list(c"properties", &string_list(request.properties)?);
            arguments.add_list(&c_string(&format!("r{index}"))?, &entry);
        }

        let c_pool = c_string(pool)?;
        let mut output = NvList(ptr::null_mut());
        // SAFETY: the pool name and the program are NUL-terminated, arguments is a valid
        // nvlist, and the output list that the call allocates is freed by NvList. The limits
        // are OpenZFS's defaults.
        let errno = unsafe {
            sys::lzc_channel_program(
                c_pool.as_ptr(),
                SNAPSHOT_PROGRAM.as_ptr(),
                u64::from(sys::ZCP_DEFAULT_INSTRLIMIT),
                u64::from(sys::ZCP_DEFAULT_MEMLIMIT),
                arguments.0,
                &mut output.0,
            )
        };
        if errno != 0 {
            let mut error = ZfsError::from_errno("lzc_channel_program", pool, errno);
            if !output.0.is_null() {
                // SAFETY: output is a valid nvlist; a failed program leaves its message under
                // "error".
                if let Some(message) = unsafe { lookup_string(output.0, c"error") } {
                    error.description = message;
                }
            }
            return Err(error);
        }

        let mut results = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let target = request.snapshots.join(" ");
            // SAFETY: output is the valid nvlist that the program returned; the nested lists
            // belong to it.
            let outcome = unsafe { program_outcome(output.0, &format!("r{index}")) };
            results.push(match outcome {
                Some((0, _)) => Ok(()),
                Some((errno, snapshot)) => {
                    let errno = i32::try_from(errno).unwrap_or(libc::EIO);
                    let error = ZfsError::from_errno("zfs.sync.snapshot", &target, errno);
                    let failed = if snapshot.is_empty() {
                        Vec::new()
                    } else {
                        let own = ZfsError::from_errno("zfs.sync.snapshot", &snapshot, errno);
                        vec![(snapshot, own)]
                    };
                    Err(BatchError { error, failed })
                }
                None => Err(BatchError {
                    error: ZfsError::from_errno("lzc_channel_program", &target, libc::EIO),
                    failed: Vec::new(),
                }),
            });
        }
        Ok(results)
    }

    /// Reports whether a filesystem has at least one snapshot, reading only the first one.
    pub fn has_snapshots(&self, filesystem: &str) -> Result<bool, ZfsError> {
        self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            // SAFETY: handle is open and the callback ignores its data pointer. With simple
            // true, libzfs reads only names, and the callback stops the walk at the first one.
            let status = unsafe {
                sys::zfs_iter_snapshots(
                    handle,
                    sys::boolean_t_B_TRUE,
                    Some(stop_at_first),
                    ptr::null_mut(),
                    0,
                    0,
                )
            };
            match status {
                0 => Ok(false),
                FOUND => Ok(true),
                _ => libzfs
                    .check("zfs_iter_snapshots", filesystem, status)
                    .map(|()| false),
            }
        })
    }

    /// Destroys snapshots atomically, in one transaction group. A held snapshot, or one with
    /// clones, fails the batch with EBUSY.
    pub fn destroy_snapshots(&self, snapshots: &[String]) -> Result<(), BatchError> {
        self.destroy_snaps(snapshots, false)
    }

    /// Rolls a filesystem back to a snapshot, which must be its most recent one.
    pub fn rollback_to(&self, filesystem: &str, snapshot: &str) -> Result<(), ZfsError> {
        let c_filesystem = c_string(filesystem)?;
        let c_snapshot = c_string(snapshot)?;
        // SAFETY: both names are NUL-terminated.
        let errno = unsafe { sys::lzc_rollback_to(c_filesystem.as_ptr(), c_snapshot.as_ptr()) };
        errno_result("lzc_rollback_to", snapshot, errno)
    }

    /// Creates a filesystem as a clone of a snapshot, with user properties set in the same
    /// transaction.
    pub fn clone_snapshot(
        &self,
        snapshot: &str,
        clone: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), ZfsError> {
        let c_clone = c_string(clone)?;
        let c_snapshot = c_string(snapshot)?;
        let props = string_list(properties)?;
        // SAFETY: both names are NUL-terminated and props is a valid nvlist.
        let errno = unsafe { sys::lzc_clone(c_clone.as_ptr(), c_snapshot.as_ptr(), props.0) };
        errno_result("lzc_clone", clone, errno)
    }

    /// Promotes a clone: it takes over the snapshots of its origin up to the origin snapshot,
    /// and the former origin filesystem becomes its clone.
    pub fn promote(&self, clone: &str) -> Result<(), ZfsError> {
        let c_clone = c_string(clone)?;
        let mut conflict = vec![0 as c_char; MAX_NAME_LEN + 1];
        // SAFETY: the name is NUL-terminated; the buffer receives the name of a conflicting
        // snapshot on EEXIST and is as long as the longest name.
        let errno = unsafe {
            sys::lzc_promote(
                c_clone.as_ptr(),
                conflict.as_mut_ptr(),
                conflict.len() as c_int,
            )
        };
        if errno == libc::EEXIST {
            // SAFETY: lzc_promote wrote a NUL-terminated name into the buffer.
            let name = unsafe { CStr::from_ptr(conflict.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let mut error = ZfsError::from_errno("lzc_promote", clone, errno);
            error.description = format!("snapshot name {name} exists on both datasets");
            return Err(error);
        }
        errno_result("lzc_promote", clone, errno)
    }

    /// Renames a filesystem within its pool. The filesystem should not be mounted.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), ZfsError> {
        let c_from = c_string(from)?;
        let c_to = c_string(to)?;
        // SAFETY: both names are NUL-terminated.
        let errno = unsafe { sys::lzc_rename(c_from.as_ptr(), c_to.as_ptr()) };
        errno_result("lzc_rename", from, errno)
    }

    /// Estimates the size in bytes of a full send stream of a snapshot.
    pub fn send_space(&self, snapshot: &str) -> Result<u64, ZfsError> {
        let c_snapshot = c_string(snapshot)?;
        let mut space: u64 = 0;
        // SAFETY: the name is NUL-terminated and space outlives the call.
        let errno = unsafe { sys::lzc_send_space(c_snapshot.as_ptr(), ptr::null(), 0, &mut space) };
        errno_result("lzc_send_space", snapshot, errno)?;
        Ok(space)
    }

    /// Writes a full send stream of a snapshot to a file descriptor, returning when the stream
    /// is complete or failed.
    pub fn send(&self, snapshot: &str, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), ZfsError> {
        use std::os::fd::AsRawFd;
        let c_snapshot = c_string(snapshot)?;
        // SAFETY: the name is NUL-terminated and fd stays open for the whole call.
        let errno = unsafe { sys::lzc_send(c_snapshot.as_ptr(), ptr::null(), fd.as_raw_fd(), 0) };
        errno_result("lzc_send", snapshot, errno)
    }

    /// Receives a full send stream from a file descriptor as a new snapshot `snapshot`, creating
    /// its filesystem.
    pub fn receive(&self, snapshot: &str, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), ZfsError> {
        use std::os::fd::AsRawFd;
        let c_snapshot = c_string(snapshot)?;
        // SAFETY: the name is NUL-terminated, no properties or origin are passed, and fd stays
        // open for the whole call. force and raw are false.
        let errno = unsafe {
            sys::lzc_receive(
                c_snapshot.as_ptr(),
                ptr::null_mut(),
                ptr::null(),
                sys::boolean_t_B_FALSE,
                sys::boolean_t_B_FALSE,
                fd.as_raw_fd(),
            )
        };
        errno_result("lzc_receive", snapshot, errno)
    }

    /// Marks snapshots for destruction once their last clone or hold is gone, or destroys them
    /// now when they have none.
    pub fn destroy_snapshots_deferred(&self, snapshots: &[String]) -> Result<(), BatchError> {
        self.destroy_snaps(snapshots, true)
    }

    fn destroy_snaps(&self, snapshots: &[String], defer: bool) -> Result<(), BatchError> {
        let target = snapshots.join(" ");
        let names = name_list(snapshots).map_err(|error| BatchError {
            error,
            failed: Vec::new(),
        })?;
        let defer = boolean(defer);
        let mut errors = NvList(ptr::null_mut());
        // SAFETY: names is a valid nvlist; the errors list is allocated by the call and freed by
        // NvList.
        let errno = unsafe { sys::lzc_destroy_snaps(names.0, defer, &mut errors.0) };
        if errno == 0 {
            return Ok(());
        }
        Err(BatchError {
            error: ZfsError::from_errno("lzc_destroy_snaps", &target, errno),
            failed: errno_pairs(&errors, "lzc_destroy_snaps"),
        })
    }

    /// Detaches a filesystem even while processes use it (a lazy unmount, `umount -l`): it
    /// disappears from the mount table at once, and the kernel releases it when the last
    /// process leaves it.
    pub fn detach(&self, filesystem: &str) -> Result<(), ZfsError> {
        self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            // SAFETY: handle is an open filesystem handle.
            let mounted = unsafe { sys::zfs_is_mounted(handle, ptr::null_mut()) };
            if mounted != sys::boolean_t_B_TRUE {
                return Ok(());
            }
            // SAFETY: as above; libzfs passes MNT_DETACH to umount2.
            let status = unsafe { sys::zfs_unmount(handle, ptr::null(), libc::MNT_DETACH) };
            libzfs.check("zfs_unmount", filesystem, status)
        })
    }

    /// Mounts a filesystem at its `mountpoint` property. Does nothing when it is mounted.
    pub fn mount(&self, filesystem: &str) -> Result<(), ZfsError> {
        self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            // SAFETY: handle is an open filesystem handle of libzfs.
            if unsafe { sys::zfs_is_mounted(handle, ptr::null_mut()) } == sys::boolean_t_B_TRUE {
                return Ok(());
            }
            // SAFETY: handle is an open filesystem handle of libzfs.
            let status = unsafe { sys::zfs_mount(handle, ptr::null(), 0) };
            libzfs.check("zfs_mount", filesystem, status)
        })
    }

    /// Unmounts a filesystem. Does nothing when it is not mounted.
    pub fn unmount(&self, filesystem: &str) -> Result<(), ZfsError> {
        self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            // SAFETY: handle is an open filesystem handle; a NULL mountpoint means "wherever it is
            // mounted".
            let mounted = unsafe { sys::zfs_is_mounted(handle, ptr::null_mut()) };
            if mounted != sys::boolean_t_B_TRUE {
                return Ok(());
            }
            // SAFETY: as above.
            let status = unsafe { sys::zfs_unmount(handle, ptr::null(), 0) };
            libzfs.check("zfs_unmount", filesystem, status)
        })
    }

    /// Places a user hold with `tag` on a snapshot (`zfs hold`). Holding it again with the same
    /// tag fails with AlreadyExists.
    pub fn hold(&self, snapshot: &str, tag: &str) -> Result<(), ZfsError> {
        let holds = string_list(&[(snapshot, tag)])?;
        let mut errors = NvList(ptr::null_mut());
        // SAFETY: holds maps the snapshot to its tag; -1 means no cleanup file descriptor, so
        // the hold outlives this process. The errors list is freed by NvList.
        let errno = unsafe { sys::lzc_hold(holds.0, -1, &mut errors.0) };
        let failed = errno_pairs(&errors, "lzc_hold");
        if let Some((_, error)) = failed.into_iter().next() {
            return Err(error);
        }
        errno_result("lzc_hold", snapshot, errno)
    }

    /// Releases the user hold with `tag` from a snapshot (`zfs release`).
    pub fn release(&self, snapshot: &str, tag: &str) -> Result<(), ZfsError> {
        let mut tags = NvList::new();
        tags.add_boolean(&c_string(tag)?);
        let holds = NvList::new();
        let c_snapshot = c_string(snapshot)?;
        // SAFETY: holds and tags are valid nvlists; fnvlist_add_nvlist copies tags.
        unsafe { sys::fnvlist_add_nvlist(holds.0, c_snapshot.as_ptr(), tags.0) };
        let mut errors = NvList(ptr::null_mut());
        // SAFETY: holds maps the snapshot to a list of tags; the errors list is freed by NvList.
        let errno = unsafe { sys::lzc_release(holds.0, &mut errors.0) };
        let failed = errno_pairs(&errors, "lzc_release");
        if let Some((_, error)) = failed.into_iter().next() {
            return Err(error);
        }
        errno_result("lzc_release", snapshot, errno)
    }

    /// Sets a user or native property on a filesystem or snapshot. libzfs parses the value by
    /// the property's type, so `mountpoint=none` and `canmount=off` work too.
    pub fn set_property(&self, dataset: &str, property: &str, value: &str) -> Result<(), ZfsError> {
        let c_property = c_string(property)?;
        let c_value = c_string(value)?;
        self.with_dataset(dataset, Self::any_type(), |libzfs, handle| {
            // SAFETY: handle is open; property and value are NUL-terminated.
            let status =
                unsafe { sys::zfs_prop_set(handle, c_property.as_ptr(), c_value.as_ptr()) };
            libzfs.check("zfs_prop_set", dataset, status)
        })
    }

    /// Removes a user property that was set on a filesystem or snapshot itself.
    pub fn clear_user_property(&self, dataset: &str, property: &str) -> Result<(), ZfsError> {
        let c_property = c_string(property)?;
        self.with_dataset(dataset, Self::any_type(), |libzfs, handle| {
            // SAFETY: handle is open; property is NUL-terminated; received is false, so the local
            // value is removed.
            let status = unsafe {
                sys::zfs_prop_inherit(handle, c_property.as_ptr(), sys::boolean_t_B_FALSE)
            };
            libzfs.check("zfs_prop_inherit", dataset, status)
        })
    }

    /// Reads one filesystem or snapshot.
    pub fn dataset(&self, name: &str) -> Result<Dataset, ZfsError> {
        self.with_dataset(name, Self::any_type(), |_, handle| {
            Ok(read_dataset(handle, Mount::Look))
        })
    }

    /// Reads one filesystem or snapshot without searching the mount table, which is the
    /// slowest part of a read on a host with many mounts, so `mountpoint` is always `None`.
    pub fn dataset_unmounted(&self, name: &str) -> Result<Dataset, ZfsError> {
        self.with_dataset(name, Self::any_type(), |_, handle| {
            Ok(read_dataset(handle, Mount::Skip))
        })
    }

    /// Reads every snapshot of a filesystem, oldest first (by `createtxg`).
    pub fn snapshots(&self, filesystem: &str) -> Result<Vec<Dataset>, ZfsError> {
        // SAFETY: collect_dataset pushes into a Vec<Dataset>. With simple false, libzfs loads
        // each snapshot's properties.
        let mut found: Vec<Dataset> =
            unsafe { self.iterate_snapshots(filesystem, false, Some(collect_dataset)) }?;
        found.sort_by_key(|snapshot| snapshot.createtxg);
        Ok(found)
    }

    /// Lists the names of a filesystem's snapshots, without reading their properties.
    pub fn snapshot_names(&self, filesystem: &str) -> Result<Vec<String>, ZfsError> {
        // SAFETY: collect_name pushes into a Vec<String>. With simple true, libzfs reads only
        // each snapshot's name and object stats.
        unsafe { self.iterate_snapshots(filesystem, true, Some(collect_name)) }
    }

    /// Runs `zfs_iter_snapshots` on a filesystem, in all transaction groups, and returns what
    /// `collect` gathered.
    ///
    /// # Safety
    ///
    /// `collect` must treat its data pointer as a `*mut Vec<T>` and close each handle.
    unsafe fn iterate_snapshots<T>(
        &self,
        filesystem: &str,
        simple: bool,
        collect: sys::zfs_iter_f,
    ) -> Result<Vec<T>, ZfsError> {
        self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            let mut found: Vec<T> = Vec::new();
            // SAFETY: handle is open, and collect receives &mut found, which outlives the call,
            // as the Vec<T> that the caller's contract requires. The range 0, 0 means all
            // transaction groups.
            let status = unsafe {
                sys::zfs_iter_snapshots(
                    handle,
                    boolean(simple),
                    collect,
                    (&mut found as *mut Vec<T>).cast(),
                    0,
                    0,
                )
            };
            libzfs.check("zfs_iter_snapshots", filesystem, status)?;
            Ok(found)
        })
    }

    /// Reads the filesystems directly below a filesystem, sorted by name.
    pub fn child_filesystems(&self, filesystem: &str) -> Result<Vec<Dataset>, ZfsError> {
        self.children(filesystem, collect_dataset)
    }

    /// Reads the filesystems directly below a filesystem, sorted by name, without searching
    /// the mount table, so their `mountpoint` is always `None`.
    pub fn child_filesystems_unmounted(&self, filesystem: &str) -> Result<Vec<Dataset>, ZfsError> {
        self.children(filesystem, collect_dataset_unmounted)
    }

    fn children(
        &self,
        filesystem: &str,
        collect: unsafe extern "C" fn(*mut sys::zfs_handle_t, *mut c_void) -> c_int,
    ) -> Result<Vec<Dataset>, ZfsError> {
        let mut found = self.with_dataset(filesystem, FILESYSTEM, |libzfs, handle| {
            let mut found: Vec<Dataset> = Vec::new();
            // SAFETY: as in snapshots; both collectors expect a Vec<Dataset>.
            let status = unsafe {
                sys::zfs_iter_filesystems(
                    handle,
                    Some(collect),
                    (&mut found as *mut Vec<Dataset>).cast(),
                )
            };
            libzfs.check("zfs_iter_filesystems", filesystem, status)?;
            Ok(found)
        })?;
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn any_type() -> c_int {
        FILESYSTEM | SNAPSHOT
    }

    /// Opens a dataset with libzfs, runs `f` on it with the library lock held, and closes it.
    fn with_dataset<T>(
        &self,
        name: &str,
        types: c_int,
        f: impl FnOnce(&LibzfsHandle, *mut sys::zfs_handle_t) -> Result<T, ZfsError>,
    ) -> Result<T, ZfsError> {
        let c_name = c_string(name)?;
        let libzfs = self
            .libzfs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the library handle is valid and locked; zfs_open returns NULL on failure and
        // records the error in the library handle.
        let handle = unsafe { sys::zfs_open(libzfs.0, c_name.as_ptr(), types) };
        if handle.is_null() {
            return Err(libzfs.last_error("zfs_open", name));
        }
        let result = f(&libzfs, handle);
        // SAFETY: handle came from zfs_open and is closed once.
        unsafe { sys::zfs_close(handle) };
        result
    }
}

impl LibzfsHandle {
    fn last_error(&self, operation: &'static str, target: &str) -> ZfsError {
        // SAFETY: the handle is valid; the description is a static or handle-owned string.
        let (code, description) = unsafe {
            let code = sys::libzfs_errno(self.0);
            let description = CStr::from_ptr(sys::libzfs_error_description(self.0))
                .to_string_lossy()
                .into_owned();
            (code, description)
        };
        ZfsError::from_libzfs(operation, target, code, description)
    }

    fn check(&self, operation: &'static str, target: &str, status: c_int) -> Result<(), ZfsError> {
        if status == 0 {
            Ok(())
        } else {
            Err(self.last_error(operation, target))
        }
    }
}

/// Converts a Rust bool to libzfs's boolean_t.
fn boolean(value: bool) -> sys::boolean_t {
    if value {
        sys::boolean_t_B_TRUE
    } else {
        sys::boolean_t_B_FALSE
    }
}

/// Iteration callback that appends the dataset's name to the Vec<String> behind `data`.
unsafe extern "C" fn collect_name(handle: *mut sys::zfs_handle_t, data: *mut c_void) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libzfs passes an open handle and the data pointer given to zfs_iter_*, which
        // points to a live Vec<String>.
        let names = unsafe { &mut *data.cast::<Vec<String>>() };
        // SAFETY: the name belongs to the open handle and is copied.
        let name = unsafe { CStr::from_ptr(sys::zfs_get_name(handle)) };
        names.push(name.to_string_lossy().into_owned());
    }));
    // SAFETY: the callback owns the handle that libzfs passed to it and must close it.
    unsafe { sys::zfs_close(handle) };
    if result.is_ok() {
        0
    } else {
        -1
    }
}

/// Return value of `stop_at_first` that stops a walk. libzfs passes it through as the walk's
/// result.
const FOUND: c_int = 1;

/// Iteration callback that closes the first dataset and stops the walk.
unsafe extern "C" fn stop_at_first(handle: *mut sys::zfs_handle_t, _data: *mut c_void) -> c_int {
    // SAFETY: the callback owns the handle that libzfs passed to it and must close it.
    unsafe { sys::zfs_close(handle) };
    FOUND
}

/// Reads the outcome of one request from the table that `SNAPSHOT_PROGRAM` returned: its errno
/// and the snapshot that failed (empty when none did).
///
/// # Safety
///
/// `output` must be a valid nvlist.
unsafe fn program_outcome(output: *mut sys::nvlist_t, key: &str) -> Option<(i64, String)> {
    let key = CString::new(key).ok()?;
    // SAFETY: the caller guarantees output is valid; the nested lists belong to it.
    unsafe {
        let mut returned: *mut sys::nvlist_t = ptr::null_mut();
        if sys::nvlist_lookup_nvlist(output, c"return".as_ptr(), &mut returned) != 0 {
            return None;
        }
        let mut entry: *mut sys::nvlist_t = ptr::null_mut();
        if sys::nvlist_lookup_nvlist(returned, key.as_ptr(), &mut entry) != 0 {
            return None;
        }
        let mut errno: i64 = 0;
        if sys::nvlist_lookup_int64(entry, c"error".as_ptr(), &mut errno) != 0 {
            return None;
        }
        let snapshot = lookup_string(entry, c"snapshot").unwrap_or_default();
        Some((errno, snapshot))
    }
}

/// Iteration callback of zfs_iter_*: reads the dataset into the Vec behind `data` and closes it.
unsafe extern "C" fn collect_dataset(handle: *mut sys::zfs_handle_t, data: *mut c_void) -> c_int {
    // SAFETY: the caller's contract is the one of collect_into.
    unsafe { collect_into(handle, data, Mount::Look) }
}

/// As `collect_dataset`, without searching the mount table.
unsafe extern "C" fn collect_dataset_unmounted(
    handle: *mut sys::zfs_handle_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: the caller's contract is the one of collect_into.
    unsafe { collect_into(handle, data, Mount::Skip) }
}

/// Reads the dataset of an iteration callback into the Vec behind `data` and closes it.
///
/// # Safety
///
/// `handle` must be an open handle that the callee owns, and `data` must point to a live
/// `Vec<Dataset>`.
unsafe fn collect_into(handle: *mut sys::zfs_handle_t, data: *mut c_void, mount: Mount) -> c_int {
    // A panic must not unwind into C, so it is caught and turned into an iteration error.
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libzfs passes an open handle and the data pointer given to zfs_iter_*, which
        // points to a live Vec<Dataset>.
        let found = unsafe { &mut *data.cast::<Vec<Dataset>>() };
        found.push(read_dataset(handle, mount));
    }));
    // SAFETY: the callback owns the handle that libzfs passed to it and must close it.
    unsafe { sys::zfs_close(handle) };
    if result.is_ok() {
        0
    } else {
        -1
    }
}

/// Whether a read of a filesystem looks up where it is mounted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mount {
    Look,
    Skip,
}

/// Reads the properties the daemon uses from an open dataset handle.
fn read_dataset(handle: *mut sys::zfs_handle_t, mount: Mount) -> Dataset {
    use sys::zfs_prop_t::*;

    // SAFETY: handle is an open libzfs dataset handle for the whole function; the strings that
    // libzfs returns are copied before the handle can be closed.
    unsafe {
        let name = CStr::from_ptr(sys::zfs_get_name(handle))
            .to_string_lossy()
            .into_owned();
        let is_snapshot = sys::zfs_get_type(handle) == sys::zfs_type_t::ZFS_TYPE_SNAPSHOT;
        let mut mount_path: *mut c_char = ptr::null_mut();
        // Snapshots are only mounted on access below `.zfs`, which the daemon never uses, so
        // they skip the search of the mount table.
        let mountpoint = if !is_snapshot
            && mount == Mount::Look
            && sys::zfs_is_mounted(handle, &mut mount_path) == sys::boolean_t_B_TRUE
            && !mount_path.is_null()
        {
            let path = CStr::from_ptr(mount_path).to_string_lossy().into_owned();
            libc::free(mount_path.cast());
            Some(path)
        } else {
            None
        };
        let user_properties = local_user_properties(handle, &name);
        let origin = if is_snapshot {
            None
        } else {
            string_property(handle, ZFS_PROP_ORIGIN)
        };
        let (clones, defer_destroy, holds) = if is_snapshot {
            (
                sys::zfs_prop_get_int(handle, ZFS_PROP_NUMCLONES),
                sys::zfs_prop_get_int(handle, ZFS_PROP_DEFER_DESTROY) != 0,
                sys::zfs_prop_get_int(handle, ZFS_PROP_USERREFS),
            )
        } else {
            (0, false, 0)
        };
        let (snapshots_changed, used_by_snapshots) = if is_snapshot {
            (0, 0)
        } else {
            (
                snapshots_changed_of(handle),
                sys::zfs_prop_get_int(handle, ZFS_PROP_USEDSNAP),
            )
        };

        Dataset {
            origin,
            clones,
            defer_destroy,
            holds,
            snapshots_changed,
            used_by_snapshots,
            creation: sys::zfs_prop_get_int(handle, ZFS_PROP_CREATION),
            createtxg: sys::zfs_prop_get_int(handle, ZFS_PROP_CREATETXG),
            used: sys::zfs_prop_get_int(handle, ZFS_PROP_USED),
            referenced: sys::zfs_prop_get_int(handle, ZFS_PROP_REFERENCED),
            name,
            user_properties,
            mountpoint,
        }
    }
}

/// Reads the `snapshots_changed` property of a filesystem; 0 on OpenZFS older than 2.2.
///
/// # Safety
///
/// `handle` must be an open libzfs dataset handle.
#[cfg(zfs_snapshots_changed)]
unsafe fn snapshots_changed_of(handle: *mut sys::zfs_handle_t) -> u64 {
    // SAFETY: the caller guarantees handle is open.
    unsafe { sys::zfs_prop_get_int(handle, sys::zfs_prop_t::ZFS_PROP_SNAPSHOTS_CHANGED) }
}

#[cfg(not(zfs_snapshots_changed))]
unsafe fn snapshots_changed_of(_handle: *mut sys::zfs_handle_t) -> u64 {
    0
}

/// Whether this build can read `snapshots_changed`, and so trust the index between reloads.
pub const HAS_SNAPSHOTS_CHANGED: bool = cfg!(zfs_snapshots_changed);

/// Reads a string-valued native property, or `None` when it is unset or empty.
///
/// # Safety
///
/// `handle` must be an open libzfs dataset handle.
unsafe fn string_property(
    handle: *mut sys::zfs_handle_t,
    property: sys::zfs_prop_t::Type,
) -> Option<String> {
    let mut buffer = vec![0 as c_char; sys::ZFS_MAXPROPLEN as usize];
    // SAFETY: the caller guarantees handle is open; the buffer is as large as the longest
    // property value, and no source is requested.
    let status = unsafe {
        sys::zfs_prop_get(
            handle,
            property,
            buffer.as_mut_ptr(),
            buffer.len(),
            ptr::null_mut(),
            ptr::null_mut(),
            0,
            sys::boolean_t_B_TRUE,
        )
    };
    if status != 0 {
        return None;
    }
    // SAFETY: zfs_prop_get wrote a NUL-terminated string into the buffer.
    let value = unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (!value.is_empty() && value != "-").then_some(value)
}

/// Reads the user properties whose source is the dataset itself.
///
/// # Safety
///
/// `handle` must be an open libzfs dataset handle.
unsafe fn local_user_properties(
    handle: *mut sys::zfs_handle_t,
    name: &str,
) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    // SAFETY: the caller guarantees handle is open; the nvlist belongs to the handle and must not
    // be freed. Each entry is an nvlist with the string members "value" and "source", where
    // "source" names the dataset the value is set on.
    unsafe {
        let list = sys::zfs_get_user_props(handle);
        if list.is_null() {
            return properties;
        }
        let mut pair = sys::nvlist_next_nvpair(list, ptr::null());
        while !pair.is_null() {
            let property = CStr::from_ptr(sys::nvpair_name(pair))
                .to_string_lossy()
                .into_owned();
            let mut entry: *mut sys::nvlist_t = ptr::null_mut();
            if sys::nvpair_value_nvlist(pair, &mut entry) == 0 {
                let value = lookup_string(entry, c"value");
                let source = lookup_string(entry, c"source");
                if let (Some(value), Some(source)) = (value, source) {
                    if source == name {
                        properties.insert(property, value);
                    }
                }
            }
            pair = sys::nvlist_next_nvpair(list, pair);
        }
    }
    properties
}

/// Looks up a string member of an nvlist.
///
/// # Safety
///
/// `list` must be a valid nvlist.
unsafe fn lookup_string(list: *mut sys::nvlist_t, key: &CStr) -> Option<String> {
    let mut value: *const c_char = ptr::null();
    // SAFETY: the caller guarantees list is valid; the returned string belongs to the list.
    unsafe {
        if sys::nvlist_lookup_string(list, key.as_ptr(), &mut value) == 0 && !value.is_null() {
            Some(CStr::from_ptr(value).to_string_lossy().into_owned())
        } else {
            None
        }
    }
}
