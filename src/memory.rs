//! The allocator's settings. mimalloc (the global allocator of the binary and the benchmarks)
//! keeps freed memory committed for a second (`purge_delay`, 1,000 ms in its v3) before
//! returning it to the system; a sync allocates and frees a batch of thousands of users many
//! times a second, so that second's worth stays resident: a 100,000-user sync peaked at
//! 153–182 MB. With a 100 ms delay, 125–130 MB on PostgreSQL and 150–160 MB on SQLite
//! (`sync_bench`); the read path's throughput did not move beyond its noise (`read_bench`,
//! alternating A/B), while a 10 ms delay cost it 7–11%. `MIMALLOC_PURGE_DELAY` in the
//! environment still wins.

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (libmimalloc-sys names no constant
/// for it); `the_purge_delay_option_is_mimallocs` checks the index against its default.
const PURGE_DELAY: mi_option_t = 15;

/// Milliseconds freed memory stays committed before mimalloc returns it. At 10 ms (v2's
/// default) the read path lost 7–11% of its throughput (`read_bench`, A/B).
const PURGE_AFTER_MS: i64 = 100;

/// Applies dirgate's allocator settings; call first thing in `main`.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option's value; mimalloc reads it when it next purges.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_AFTER_MS as _) };
    }
}

/// The purge delay mimalloc uses now, in milliseconds.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads an option's value.
    unsafe { mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // Untouched, index 15 holds v3's documented default for the purge delay: were the
        // index another option's, this would differ.
        assert_eq!(purge_delay_ms(), 1_000, "mimalloc v3's default purge delay");
        tune_allocator();
        assert_eq!(purge_delay_ms(), PURGE_AFTER_MS);
    }
}
