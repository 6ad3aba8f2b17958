//! Prompt templates: minijinja templates from `prompts/`, embedded in the
//! binary at build time and overridable from a directory (`--prompts DIR`).
//!
//! Owns template lookup and rendering. Whitespace matters (compatibility modes
//! must reproduce reference prompts byte for byte), so the environment keeps
//! a template's trailing newline exactly as written and adds no filters that
//! change spacing. Benchmarks decide *what* goes into the context.

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

/// Templates compiled into the binary: (name, source).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "lm_eval_arc.jinja",
        include_str!("../prompts/lm_eval_arc.jinja"),
    ),
    (
        "lm_eval_mmlu.jinja",
        include_str!("../prompts/lm_eval_mmlu.jinja"),
    ),
    (
        "lm_eval_mmlu_description.jinja",
        include_str!("../prompts/lm_eval_mmlu_description.jinja"),
    ),
    (
        "lm_eval_query.jinja",
        include_str!("../prompts/lm_eval_query.jinja"),
    ),
    (
        "lm_eval_truthfulqa.jinja",
        include_str!("../prompts/lm_eval_truthfulqa.jinja"),
    ),
    (
        "aime_boxed.jinja",
        include_str!("../prompts/aime_boxed.jinja"),
    ),
    (
        "aime_evalscope.jinja",
        include_str!("../prompts/aime_evalscope.jinja"),
    ),
    (
        "gsm8k_boxed.jinja",
        include_str!("../prompts/gsm8k_boxed.jinja"),
    ),
    (
        "mcq_answer_line.jinja",
        include_str!("../prompts/mcq_answer_line.jinja"),
    ),
    (
        "lm_eval_gsm8k.jinja",
        include_str!("../prompts/lm_eval_gsm8k.jinja"),
    ),
    (
        "lm_eval_gsm8k_cot.jinja",
        include_str!("../prompts/lm_eval_gsm8k_cot.jinja"),
    ),
    (
        "lm_eval_gsm8k_cot_zeroshot.jinja",
        include_str!("../prompts/lm_eval_gsm8k_cot_zeroshot.jinja"),
    ),
    (
        "lm_eval_minerva_math.jinja",
        include_str!("../prompts/lm_eval_minerva_math.jinja"),
    ),
    (
        "mcq_evalscope.jinja",
        include_str!("../prompts/mcq_evalscope.jinja"),
    ),
    (
        "mcq_evalscope_cot.jinja",
        include_str!("../prompts/mcq_evalscope_cot.jinja"),
    ),
    (
        "mmlu_pro_tiger.jinja",
        include_str!("../prompts/mmlu_pro_tiger.jinja"),
    ),
    (
        "mmlu_pro_evalscope.jinja",
        include_str!("../prompts/mmlu_pro_evalscope.jinja"),
    ),
    ("ifeval.jinja", include_str!("../prompts/ifeval.jinja")),
    (
        "truthfulqa_evalscope.jinja",
        include_str!("../prompts/truthfulqa_evalscope.jinja"),
    ),
    (
        "lm_eval_arc_chat.jinja",
        include_str!("../prompts/lm_eval_arc_chat.jinja"),
    ),
    (
        "answer_line.jinja",
        include_str!("../prompts/answer_line.jinja"),
    ),
];

/// Errors loading or rendering a template; each names the template.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// An override directory could not be read.
    #[error("--prompts {dir}: {source}")]
    Dir {
        /// Directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A template failed to parse or render.
    #[error("prompt template `{name}`: {message}")]
    Template {
        /// Template name.
        name: String,
        /// minijinja's message (with line number).
        message: String,
    },
}

/// The set of templates available to benchmarks.
pub struct Prompts {
    env: Environment<'static>,
    /// sha256 of each template source actually in use, for the run record.
    sources: Vec<(String, String)>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompts")
            .field("templates", &self.sources.len())
            .finish()
    }
}

impl Prompts {
    /// Embedded templates, with files of the same name in `override_dir`
    /// (if given) taking their place. Extra `*.jinja` files there are added.
    pub fn load(override_dir: Option<&Path>) -> Result<Self, PromptError> {
        let mut sources: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        if let Some(dir) = override_dir {
            let rd = std::fs::read_dir(dir).map_err(|source| PromptError::Dir {
                dir: dir.into(),
                source,
            })?;
            for entry in rd {
                let entry = entry.map_err(|source| PromptError::Dir {
                    dir: dir.into(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !name.ends_with(".jinja") {
                    continue;
                }
                let text =
                    std::fs::read_to_string(entry.path()).map_err(|source| PromptError::Dir {
                        dir: entry.path(),
                        source,
                    })?;
                match sources.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = text,
                    None => sources.push((name, text)),
                }
            }
        }
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| PromptError::Template {
                name: "(syntax)".into(),
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, text) in &sources {
            env.add_template_owned(name.clone(), text.clone())
                .map_err(|e| PromptError::Template {
                    name: name.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        Ok(Self { env, sources })
    }

    /// Add (or replace) template `name` from its source: the template file
    /// a benchmark file names.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), PromptError> {
        self.env
            .add_template_owned(name.to_string(), text.to_string())
            .map_err(|e| PromptError::Template {
                name: name.into(),
                message: format!("{e:#}"),
            })?;
        match self.sources.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = text.to_string(),
            None => self.sources.push((name.to_string(), text.to_string())),
        }
        Ok(())
    }

    /// Render template `name` with `ctx`.
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, PromptError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| PromptError::Template {
                name: name.into(),
                message: format!("{e:#}"),
            })?;
        tmpl.render(minijinja::value::Serde(ctx))
            .map_err(|e| PromptError::Template {
                name: name.into(),
                message: format!("{e:#}"),
            })
    }

    /// Whether a template of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.sources.iter().any(|(n, _)| n == name)
    }

    /// sha256 (hex) of template `name`'s source, recorded so that a changed
    /// template is visible in the run record.
    pub fn hash(&self, name: &str) -> Option<String> {
        use sha2::Digest;
        let (_, src) = self.sources.iter().find(|(n, _)| n == name)?;
        Some(hex::encode(sha2::Sha256::digest(src.as_bytes())))
    }
}
