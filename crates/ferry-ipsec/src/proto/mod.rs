//! The protocol without I/O: IKEv2 messages and exchanges, key derivation, proposals,
//! traffic selectors and ESP packet processing. Time comes in as an explicit `now`;
//! datagrams come in and go out as byte slices. The only outside resource used is the
//! system random generator (nonces, SPIs, DH keys).

pub mod consts;
pub mod crypto;
pub mod esp;
pub mod ike;
pub mod message;
pub mod proposal;
pub mod sk;
pub mod ts;
mod wire;

use std::sync::{Mutex, MutexGuard};

/// Lock a mutex, ignoring poisoning: a panicking data-path thread must not take the
/// control plane down with it, and every critical section leaves the state valid.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
