//! Perf prompt sources (being written).
