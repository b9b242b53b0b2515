//! Unix user names and uids, through the system's user database (NSS), for owners.

use std::ffi::{CStr, CString};

/// Initial size of the buffer for one passwd record's strings. `getpw*_r` returns ERANGE when
/// a record needs more, and the buffer doubles up to `MAX_BUFFER`.
const INITIAL_BUFFER: usize = 1024;
const MAX_BUFFER: usize = 1 << 20;

/// Looks up a user by name or by decimal uid and returns the uid.
pub fn uid_of(user: &str) -> Result<u32, String> {
    if !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit()) {
        return user
            .parse()
            .map_err(|_| format!("uid {user} is out of range"));
    }
    let name = CString::new(user).map_err(|_| format!("user name {user:?} contains a NUL byte"))?;
    lookup(|record, buffer, found| {
        // SAFETY: every pointer is valid for the call; the buffer outlives the record.
        unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                record,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                found,
            )
        }
    })
    .map(|record| record.0)
    .ok_or_else(|| format!("no user named {user:?}; give a user name or a uid"))
}

/// Looks up the name of a uid, or returns the uid in decimal when the user database has none.
pub fn name_of(uid: u32) -> String {
    lookup(|record, buffer, found| {
        // SAFETY: every pointer is valid for the call; the buffer outlives the record.
        unsafe { libc::getpwuid_r(uid, record, buffer.as_mut_ptr().cast(), buffer.len(), found) }
    })
    .map(|record| record.1)
    .unwrap_or_else(|| uid.to_string())
}

/// Runs one `getpw*_r` query, growing the buffer while it is too small; returns the uid and
/// name of the record found.
fn lookup(
    query: impl Fn(*mut libc::passwd, &mut Vec<u8>, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<(u32, String)> {
    let mut buffer = vec![0u8; INITIAL_BUFFER];
    loop {
        // SAFETY: passwd is plain data; all zeroes is a valid value before the call fills it.
        let mut record: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = query(&mut record, &mut buffer, &mut found);
        if status == libc::ERANGE && buffer.len() < MAX_BUFFER {
            buffer.resize(buffer.len() * 2, 0);
            continue;
        }
        if status != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside the buffer.
        let name = unsafe { CStr::from_ptr(record.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some((record.pw_uid, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_both_ways() {
        assert_eq!(uid_of("root"), Ok(0));
        assert_eq!(name_of(0), "root");
    }

    #[test]
    fn uid_numbers_pass_through() {
        assert_eq!(uid_of("4242"), Ok(4242));
        assert!(uid_of("99999999999").is_err());
        assert!(uid_of("no-such-user-here").is_err());
    }
}
