//! Reflectors (placeholder).
