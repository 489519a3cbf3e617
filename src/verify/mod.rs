//! Verification gates (being written).
