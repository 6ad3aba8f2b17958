//! The in-process engine: runs a model on this machine's CPU with candle,
//! with no server.
//!
//! - [`gguf`] loads a GGUF file: metadata, the tokenizer rebuilt from it, and
//!   the weights (llama, qwen2, qwen3 architectures).
//! - [`generate`] generates greedily for one sequence with a KV cache.

pub mod generate;
pub mod gguf;
