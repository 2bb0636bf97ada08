//! `bareboat.lock`: parsing and the check of every field, as a committed lockfile is read.
#![no_main]

use bareboat_apt::lockfile::Lockfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(lock) = Lockfile::parse(text)
    {
        // What was accepted round-trips: a lock is written back as it was read.
        let again = Lockfile::parse(&lock.to_toml()).expect("a checked lock writes back");
        assert_eq!(again, lock);
    }
});
