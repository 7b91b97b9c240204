//! The tokio runtime of a long-running daemon, shared by `ferry`'s daemons
//! and the benchmarks that run a daemon's code in a child process, so a
//! benchmark measures the memory and CPU the daemon really has.

/// A multi-threaded runtime of at most `max_workers` worker threads (fewer
/// on a machine with fewer CPUs), each of which hands the memory it freed
/// back to the kernel when it runs out of work
/// ([`ferry_alloc::release_when_idle`]), in a process whose heap has no
/// huge pages ([`ferry_alloc::small_pages`]). Every worker costs its own
/// stack and allocator heap, so daemons whose work is not the data path
/// keep one or two instead of tokio's one per CPU (issue #19: idle RSS).
pub fn daemon(max_workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    ferry_alloc::small_pages();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(max_workers.clamp(1, cpus.max(1)))
        .on_thread_park(ferry_alloc::release_when_idle)
        .enable_all()
        .build()
}
