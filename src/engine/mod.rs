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
//! - [`sample`] reads a request's generation settings and picks tokens.
//! - [`scheduler`] is the engine thread: continuous batching over a
//!   [`BatchModel`].
//! - [`runner`] is the [`Engine`] handle: requests in, streamed text out.
//! - [`load`] turns `--model` (a path or a hub id) into a loaded model.
//! - [`model`] is the batched transformer (Llama 3.x, Qwen2, Qwen3) behind
//!   [`BatchModel`], loaded from GGUF or Hugging Face safetensors.

pub mod chat_template;
pub mod generate;
pub mod gguf;
pub mod linear;
pub mod load;
pub mod runner;
pub mod sample;
pub mod scheduler;

pub mod model;

pub use runner::{Engine, EngineInfo};

use gguf::EngineError;

/// A model that runs several sequences at once, each with its own KV cache.
///
/// A sequence lives in a *slot* chosen by the caller (any `usize`): the first
/// [`forward`](BatchModel::forward) on a free slot starts a sequence there at
/// position 0, later calls append at the position after its last token, and
/// [`free`](BatchModel::free) forgets it. The scheduler puts every in-flight
/// sequence into one call, so implementations can batch the matrix products
/// of the single-token decode steps (one pass over the weights for all of
/// them) while each sequence attends only to its own cache.
pub trait BatchModel: Send {
    /// Appends each `(slot, tokens)` to its sequence and returns, in the same
    /// order, the logits of the next token after the last of `tokens`.
    /// Slots in one call are distinct and `tokens` is never empty.
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, EngineError>;
    /// Forgets the sequence in `slot` (a no-op for a free slot).
    fn free(&mut self, slot: usize);
    /// How many tokens the sequence in `slot` holds (0 for a free slot).
    fn seq_len(&self, slot: usize) -> usize;
    /// The most sequences [`forward`](BatchModel::forward) takes in one call.
    fn max_batch(&self) -> usize;
}
