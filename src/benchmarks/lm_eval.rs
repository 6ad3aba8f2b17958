//! lm-evaluation-harness recipes: its context assembly and the
//! `generate_until` recipe constructor with named regex filter pipelines and
//! `exact_match`, shared by every `lm-eval*` mode.
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

use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use super::Sample;
use super::recipe::{Assembly, DocField, Extractor, Recipe, RequestKind, Scorer, ShotPolicy};
use crate::client::{ApiKind, Message, Prompt};
use crate::extract::lm_eval::{ExactMatch, GroupSelect, py_strip, regex_filter};

/// The task settings that shape the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFormat {
    /// Between a question and its answer (`target_delimiter`, default `" "`).
    pub target_delimiter: String,
    /// After each few-shot example (`fewshot_delimiter`, default `"\n\n"`).
    pub fewshot_delimiter: String,
    /// Text the answer starts with (`gen_prefix`).
    pub gen_prefix: Option<String>,
    /// Template in `prompts/` whose rendering (with the item's context)
    /// starts the prompt, before any few-shot example (`description`);
    /// used by the loglikelihood recipes ([`super::loglikelihood`]).
    pub description: Option<String>,
}

impl Default for ContextFormat {
    /// lm-eval's defaults.
    fn default() -> Self {
        ContextFormat {
            target_delimiter: " ".into(),
            fewshot_delimiter: "\n\n".into(),
            gen_prefix: None,
            description: None,
        }
    }
}

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
                text.push_str(&fmt.target_delimiter);
                text.push_str(a);
                text.push_str(&fmt.fewshot_delimiter);
            }
            text.push_str(query);
            if let Some(prefix) = fmt.gen_prefix.as_deref() {
                // lm-eval's `maybe_delimit`: the delimiter only when neither
                // side already has whitespace at the join.
                let joined_by_space =
                    query.ends_with(char::is_whitespace) || prefix.starts_with(char::is_whitespace);
                if !joined_by_space {
                    text.push_str(&fmt.target_delimiter);
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
            if let Some(prefix) = &fmt.gen_prefix {
                messages.push(Message {
                    role: "assistant".into(),
                    content: prefix.to_string(),
                });
            }
            Prompt::Messages(messages)
        }
    }
}

/// One step of an lm-eval filter pipeline.
#[derive(Debug, Clone)]
pub enum FilterStep {
    /// `regex` with its `group_select` ([`regex_filter`]); nothing found
    /// ends the pipeline with no answer (lm-eval's `[invalid]`).
    Regex(Regex, GroupSelect),
    /// `remove_whitespace` (Python's `strip()`).
    RemoveWhitespace,
}

/// A named filter pipeline (`strict-match`), ending in `take_first`.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The pipeline's name in the task YAML.
    pub name: String,
    /// Its steps, in order.
    pub steps: Vec<FilterStep>,
}

impl Filter {
    /// A pipeline of one regex step.
    pub fn regex(name: &str, pattern: &str, select: GroupSelect) -> Filter {
        Filter {
            name: name.into(),
            // The patterns are the constants of the task YAMLs this crate
            // ships, compiled and checked by the registry tests.
            steps: vec![FilterStep::Regex(
                Regex::new(pattern).expect("lm-eval filter pattern compiles"),
                select,
            )],
        }
    }

    /// Run the pipeline on a response.
    pub fn apply(&self, response: &str) -> Option<String> {
        let mut text = response.to_string();
        for step in &self.steps {
            text = match step {
                FilterStep::Regex(re, select) => regex_filter(re, &text, *select)?,
                FilterStep::RemoveWhitespace => py_strip(&text).to_string(),
            };
        }
        Some(text)
    }

    /// The pipeline as a recipe extractor.
    pub fn extractor(self) -> Extractor {
        let name = self.name.clone();
        Extractor::new(name, move |_, response| self.apply(response))
    }
}

/// An lm-eval `generate_until` task, as a recipe: the parameters of its
/// YAML that bench follows.
#[derive(Debug, Clone)]
pub struct GenerateUntil {
    /// The mode id (`lm-eval`, `lm-eval-cot`).
    pub id: String,
    /// One line for `bench list`.
    pub summary: String,
    /// Task YAML and lm-eval commit.
    pub provenance: String,
    /// `doc_to_text` template in `prompts/`.
    pub template: String,
    /// The few-shot answer (`doc_to_target`).
    pub doc_to_target: DocField,
    /// Delimiters and `gen_prefix`.
    pub format: ContextFormat,
    /// `num_fewshot`.
    pub default_few_shot: usize,
    /// The sampler (normally [`ShotPolicy::LmEvalRandom`]).
    pub shots: ShotPolicy,
    /// The task name, when its YAML pins `num_fewshot: 0`.
    pub pinned_zero_shot: Option<String>,
    /// `generation_kwargs` as sent (`max_tokens`, `stop`, `seed`,
    /// `temperature` with its JSON type).
    pub generation: Map<String, Value>,
    /// `filter_list`, primary first.
    pub filters: Vec<Filter>,
    /// `exact_match` settings.
    pub metric: ExactMatch,
    /// What the metric compares with (`doc_to_target` of the item).
    pub gold: DocField,
}

impl GenerateUntil {
    /// The recipe; `answer_format` writes a right answer as the model
    /// continues the prompt.
    pub fn recipe(
        self,
        answer_format: impl Fn(&Sample) -> String + Send + Sync + 'static,
    ) -> Recipe {
        let GenerateUntil {
            id,
            summary,
            provenance,
            template,
            doc_to_target,
            format,
            default_few_shot,
            shots,
            pinned_zero_shot,
            generation,
            filters,
            metric,
            gold,
        } = self;
        let metric = Arc::new(metric);
        Recipe {
            id,
            summary,
            provenance,
            template,
            default_few_shot,
            shots,
            pinned_zero_shot,
            assembly: Assembly::LmEval {
                format,
                doc_to_target,
            },
            generation,
            request: RequestKind::Generate,
            extractors: filters.into_iter().map(Filter::extractor).collect(),
            scorer: Scorer::new("exact_match", move |s, e| metric.matches(e, &gold.of(s))),
            answer_format: Arc::new(answer_format),
            groups: None,
        }
    }
}
