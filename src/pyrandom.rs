//! CPython-compatible random (being written).
