//! lm-evaluation-harness's context assembly, shared by the `lm-eval*` modes.
//!
//! A task renders `doc_to_text` and `doc_to_target` for each few-shot
//! example and `doc_to_text` for the item; lm-eval then joins them as plain
//! text (for `/v1/completions`) or, with `--apply_chat_template
//! --fewshot_as_multiturn` (its chat default), as alternating user/assistant
//! turns (for `/v1/chat/completions`). An optional `gen_prefix` starts the
//! answer (an assistant prefill in chat).
//!
//! Facts (read from lm-eval's `api/task.py` and `models/api_models.py`): the
//! target delimiter after each few-shot question is unconditional; the query
//! gets no trailing delimiter and nothing is stripped; chat turns carry
//! `doc_to_text` / `doc_to_target` exactly (no delimiter, no leading space),
//! with no system message unless one is configured; the prefill is a final
//! assistant message and nothing else (no `continue_final_message`), so
//! whether it is continued depends on the server.

use crate::client::{ApiKind, Message, Prompt};

/// The task settings that shape the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextFormat {
    /// Between a question and its answer (`target_delimiter`, default `" "`).
    pub target_delimiter: &'static str,
    /// After each few-shot example (`fewshot_delimiter`, default `"\n\n"`).
    pub fewshot_delimiter: &'static str,
    /// Text the answer starts with (`gen_prefix`).
    pub gen_prefix: Option<&'static str>,
}

/// lm-eval's defaults.
pub const DEFAULT_FORMAT: ContextFormat = ContextFormat {
    target_delimiter: " ",
    fewshot_delimiter: "\n\n",
    gen_prefix: None,
};

/// Build the request from rendered `(doc_to_text, doc_to_target)` pairs for
/// the shots and `doc_to_text` of the item.
pub fn assemble(
    fmt: &ContextFormat,
    shots: &[(String, String)],
    query: &str,
    api: ApiKind,
) -> Prompt {
    match api {
        ApiKind::Completions => {
            let mut text = String::new();
            for (q, a) in shots {
                text.push_str(q);
                text.push_str(fmt.target_delimiter);
                text.push_str(a);
                text.push_str(fmt.fewshot_delimiter);
            }
            text.push_str(query);
            if let Some(prefix) = fmt.gen_prefix {
                // lm-eval's `maybe_delimit`: the delimiter only when neither
                // side already has whitespace at the join.
                let joined_by_space =
                    query.ends_with(char::is_whitespace) || prefix.starts_with(char::is_whitespace);
                if !joined_by_space {
                    text.push_str(fmt.target_delimiter);
                }
                text.push_str(prefix);
            }
            Prompt::Text(text)
        }
        ApiKind::Chat => {
            let mut messages = Vec::with_capacity(shots.len() * 2 + 2);
            for (q, a) in shots {
                messages.push(Message {
                    role: "user".into(),
                    content: q.clone(),
                });
                messages.push(Message {
                    role: "assistant".into(),
                    content: a.clone(),
                });
            }
            messages.push(Message {
                role: "user".into(),
                content: query.to_string(),
            });
            if let Some(prefix) = fmt.gen_prefix {
                messages.push(Message {
                    role: "assistant".into(),
                    content: prefix.to_string(),
                });
            }
            Prompt::Messages(messages)
        }
    }
}
