//! ferry's user-space WireGuard data path.
