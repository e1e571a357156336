//! The process's limit on open descriptors, for the tests that run out of them (each in a
//! test binary of its own: the limit is the whole process's).

/// Sets the soft limit on open descriptors, returning the old one.
pub fn set_fd_limit(soft: libc::rlim_t) -> libc::rlim_t {
    // SAFETY: get/setrlimit read and write the struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

/// Lowers the limit to `soft` and opens `/dev/null` until no descriptor is left; returns the
/// old limit and the files holding the descriptors (drop them, then set the old limit back).
pub fn exhaust_fds(soft: libc::rlim_t) -> (libc::rlim_t, Vec<std::fs::File>) {
    let old = set_fd_limit(soft);
    let mut fillers = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => fillers.push(file),
            Err(err) => break err,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE));
    (old, fillers)
}
