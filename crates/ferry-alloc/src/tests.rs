#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOCATOR: super::Allocator = super::Allocator;

/// The option number is v2's purge delay: after `tune`, mimalloc reports
/// the delay it was given (a wrong number would set another option).
#[test]
#[allow(unsafe_code)]
fn tune_sets_the_purge_delay() {
    super::tune();
    // SAFETY: reads an integer option; no pointers.
    let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        assert_eq!(delay, super::PURGE_DELAY_MS);
    }
    // Allocation still works through the tuned allocator.
    let v: Vec<u64> = (0..100_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 4_999_950_000);
}

/// Resident memory of this process in bytes (from /proc/self/statm).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Memory freed moments ago is still resident (the purge delay), and
/// `release_when_idle` hands it back at once; a second call within the
/// delay is a no-op (nothing left to check but that it returns).
#[test]
fn release_when_idle_returns_freed_memory() {
    super::tune();
    const TOTAL: usize = 64 << 20;
    let blocks: Vec<Vec<u8>> = (0..TOTAL / 4000).map(|_| vec![1u8; 4000]).collect();
    let touched = blocks.iter().map(|b| usize::from(b[3999])).sum::<usize>();
    assert_eq!(touched, TOTAL / 4000);
    drop(blocks);
    let before = rss_bytes();
    super::release_when_idle();
    let after = rss_bytes();
    assert!(
        before.saturating_sub(after) > TOTAL / 2,
        "RSS went from {before} to {after} bytes; expected at least {} MB back",
        (TOTAL / 2) >> 20
    );
    super::release_when_idle();
}

/// After `small_pages` the kernel gives this process no transparent huge
/// pages, whatever mimalloc's arena was madvised with.
#[test]
#[allow(unsafe_code)]
fn small_pages_disables_thp_for_the_process() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    super::small_pages();
    // SAFETY: prctl query with integer arguments only.
    let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    assert_eq!(disabled, 1);
}
