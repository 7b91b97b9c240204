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
