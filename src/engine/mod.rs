//! The in-process engine: runs a model inside bench (no server), so that
//! `bench eval --model Qwen/Qwen2.5-0.5B-Instruct` works on a fresh machine
//! (issue 11). It owns everything between a request (chat messages or text)
//! and a completion: the model's chat template ([`chat_template`]), and later
//! the tokenizer, weights and generation loop.

pub mod chat_template;
