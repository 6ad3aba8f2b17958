//! Perf statistics (being written).
