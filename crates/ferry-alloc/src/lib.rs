//! The memory allocator of ferry's processes: mimalloc (v2), with its purge
//! delay raised so a busy daemon keeps the pages it just freed.
//!
//! ferry's daemons (agent, API server, DNS) allocate and free many small JSON
//! values per request. With glibc malloc that was ~20 % of the 10k-service
//! propagation benchmark's CPU; mimalloc's default 10 ms purge delay then
//! returned freed pages to the kernel and faulted them back in (zeroed)
//! moments later, another ~20 % of the agents' CPU. With a 1 s delay memory
//! still goes back to the system once a burst is over.
//!
//! But mimalloc only purges while the thread that freed the memory keeps
//! allocating: a daemon that goes idle after start-up kept every page it had
//! freed. [`release_when_idle`] (tokio's `on_thread_park` hook in the
//! daemons) hands a parked thread's freed pages back at most once per purge
//! delay, and threads that exit (tokio's blocking pool) purge theirs at once.
//!
//! And mimalloc asks for transparent huge pages on its 1 GiB arena
//! (`madvise(MADV_HUGEPAGE)`), so every 2 MiB of it that a daemon touched was
//! resident in full: 42 of the gateway's 43 MB of heap at idle were huge
//! pages. [`small_pages`] turns them off for a daemon.
//!
//! What it is not: a place for allocation statistics or limits.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: ferry_alloc::Allocator = ferry_alloc::Allocator;
//!
//! fn main() {
//!     ferry_alloc::tune();
//! }
//! ```
// The one unsafe call (an FFI option setter) is allowed where it is made.
#![deny(unsafe_code)]

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The allocator to install with `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc v2's `mi_option_purge_delay` (see its `mimalloc.h`: the options
/// enum of v2, which this crate's `v2` feature builds; v3 numbers differ).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc v2's `mi_option_abandoned_page_purge`: a thread that exits
/// purges its free pages at once instead of leaving them to a later sweep
/// that an idle process never makes.
const MI_OPTION_ABANDONED_PAGE_PURGE: libmimalloc_sys::mi_option_t = 12;

/// mimalloc v2's `mi_option_allow_thp`.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 37;

/// How long freed memory stays with the process before it is purged.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// The least time between two [`release_when_idle`] sweeps of one thread:
/// the purge delay, so a thread that parks between the bursts of a busy
/// period does not fault its pages back in more often than mimalloc would.
const RELEASE_INTERVAL: Duration = Duration::from_millis(PURGE_DELAY_MS as u64);

/// Applies ferry's allocator settings; call first thing in `main`. An
/// explicit `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ABANDONED_PAGE_PURGE` in the
/// environment wins, so an operator can still trade memory for CPU.
pub fn tune() {
    set_unless_in_env(
        "MIMALLOC_PURGE_DELAY",
        MI_OPTION_PURGE_DELAY,
        PURGE_DELAY_MS,
    );
    set_unless_in_env(
        "MIMALLOC_ABANDONED_PAGE_PURGE",
        MI_OPTION_ABANDONED_PAGE_PURGE,
        1,
    );
}

fn set_unless_in_env(var: &str, option: libmimalloc_sys::mi_option_t, value: std::ffi::c_long) {
    if std::env::var_os(var).is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer in mimalloc's option
    // table; it is thread-safe and takes no pointers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(option, value);
    }
}

/// Backs the rest of this process's heap with 4 KiB pages only: for daemons
/// whose heap is small and mostly idle, where a 2 MiB huge page holding a
/// few live objects costs 2 MiB of RSS. Not for the API server, whose large
/// heap gains from fewer TLB misses. Call early (the few pages touched
/// before stay as they are). An explicit `MIMALLOC_ALLOW_THP` wins.
pub fn small_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // mimalloc reads this option once, when it starts (before main), and
    // then madvises its arena for huge pages; the option only stops it from
    // doing so for arenas it maps later.
    set_unless_in_env("MIMALLOC_ALLOW_THP", MI_OPTION_ALLOW_THP, 0);
    // What mimalloc itself does with allow_thp=0 at start-up: the kernel
    // then ignores MADV_HUGEPAGE for every mapping of this process.
    // SAFETY: prctl with integer arguments only; no memory is passed.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Only memory is at stake; the daemon works either way.
        eprintln!(
            "ferry-alloc: PR_SET_THP_DISABLE: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Hands the memory the calling thread has freed back to the kernel, unless
/// this thread already did so within the purge delay. Meant for tokio's
/// `Builder::on_thread_park`: a worker about to sleep has nothing better to
/// do, and an idle daemon would otherwise keep its start-up garbage.
pub fn release_when_idle() {
    thread_local! {
        static LAST_RELEASE: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let due = LAST_RELEASE.with(|last| match last.get() {
        Some(t) if now.duration_since(t) < RELEASE_INTERVAL => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        // SAFETY: mi_collect takes no pointers; forced, it frees this
        // thread's empty pages and purges its (and the arenas') free memory.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_collect(true);
        }
    }
}

#[cfg(test)]
mod tests;
