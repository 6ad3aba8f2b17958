//! EvalScope v1 answer extraction and scoring (being written).
