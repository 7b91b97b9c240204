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

/// The allocator to install with `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc v2's `mi_option_purge_delay` (see its `mimalloc.h`: the options
/// enum of v2, which this crate's `v2` feature builds; v3 numbers differ).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before it is purged.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Applies ferry's allocator settings; call first thing in `main`. An
/// explicit `MIMALLOC_PURGE_DELAY` in the environment wins, so an operator
/// can still trade memory for CPU.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer in mimalloc's option
    // table; it is thread-safe and takes no pointers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

#[cfg(test)]
mod tests;
