//! The in-process engine: runs a model inside bench on this machine's CPU
//! with candle (no server), so that `bench eval --model
//! Qwen/Qwen2.5-0.5B-Instruct` works on a fresh machine (issue 11). It owns
//! everything between a request (chat messages or text) and a completion.
//!
//! - [`chat_template`] renders chat messages with the model's own template,
//!   as transformers' `apply_chat_template` does.
//! - [`gguf`] loads a GGUF file: metadata, the tokenizer rebuilt from it, and
//!   the weights (llama, qwen2, qwen3 architectures).
//! - [`generate`] generates greedily for one sequence with a KV cache.

pub mod chat_template;
pub mod generate;
pub mod gguf;
