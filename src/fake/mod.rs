//! Test doubles that speak the real protocols on 127.0.0.1: a fake Hugging
//! Face hub ([`hub`]) and a fake OpenAI-compatible server ([`openai`]).
//!
//! They live in the library (not only under `tests/`) because the
//! integration tests, the speed benchmarks and users checking their setup all
//! need them. Both bind port 0 and report the address they got.

pub mod hub;
pub mod openai;
