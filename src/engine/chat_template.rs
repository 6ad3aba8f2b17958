//! Chat templates, rendered as Hugging Face transformers' `apply_chat_template`
//! renders them.
//!
//! A model ships its chat template as Jinja source: `chat_template` in
//! `tokenizer_config.json` (a string, or a list of `{name, template}` of which
//! `default` is used), `chat_template.jinja` next to it in newer repositories,
//! or the `tokenizer.chat_template` string of a GGUF file. The engine turns a
//! conversation into the prompt text with it, so the model sees exactly what
//! it would see behind vLLM or transformers.
//!
//! The environment follows transformers' `_compile_jinja_template`
//! (`utils/chat_template_utils.py`, read in transformers 5.24):
//! `trim_blocks` and `lstrip_blocks` on, a single trailing newline of the
//! template dropped, no auto-escaping, loop controls (`{% break %}`,
//! `{% continue %}`), and the globals `raise_exception(message)`,
//! `strftime_now(format)` (local time, Python's `datetime.now().strftime`),
//! `namespace(...)`, `dict(...)`, plus the `tojson` filter with Python's
//! `json.dumps` semantics (`ensure_ascii=False`, `indent`, `separators`,
//! `sort_keys`; keys keep their order). Python string and dict methods that
//! real templates call (`.strip()`, `.startswith()`, `.split()`, `.items()`,
//! ...) come from `minijinja-contrib`'s `pycompat`. Values printed with
//! `{{ }}` look as Python prints them (`True`, `None`, `1.0`, `['a']`).
//!
//! The template sees `messages` (dicts with `role` and `content`), `tools`
//! and `documents` (`None` unless given), `add_generation_prompt`, the
//! special tokens that are set (`bos_token`, `eos_token`, ...; an unset token
//! stays undefined, as transformers leaves it out), and any extra variables
//! the caller passes (`date_string`, `enable_thinking`, ...).
//!
//! An assistant prefill is rendered as transformers' `continue_final_message`
//! does: the final message's content is tagged, the conversation rendered
//! without a generation prompt, and the text cut right after that content
//! (trailing whitespace the template trimmed stays trimmed).

use std::ffi::CString;
use std::fmt::Write as _;
use std::path::Path;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs, from_args};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::client::Message;

/// The name errors refer to the template by.
const TEMPLATE_NAME: &str = "chat_template";

/// What transformers appends to the final message to find where it ends
/// (`continue_final_message_tag` in `render_jinja_template`).
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

/// Why a chat template could not be loaded or rendered; each one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template source does not parse.
    #[error("chat template syntax error{}: {message}", at_line(*line))]
    Syntax {
        /// 1-based line of the template, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The template called `raise_exception(message)`.
    #[error("chat template raised an exception{}: {message}", at_line(*line))]
    Raised {
        /// 1-based line of the template, when known.
        line: Option<usize>,
        /// The message the template raised.
        message: String,
    },
    /// Rendering failed otherwise (unknown filter, wrong type, ...).
    #[error("chat template failed to render{}: {message}", at_line(*line))]
    Render {
        /// 1-based line of the template, when known.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// The conversation or options cannot be rendered (empty conversation,
    /// prefill that the template drops, ...).
    #[error("{0}")]
    Input(String),
    /// A `tokenizer_config.json` (or model directory) problem, naming the
    /// file and the field.
    #[error("{0}")]
    Config(String),
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// Options for [`ChatTemplate::render_with`].
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Append the header that starts a new assistant turn.
    pub add_generation_prompt: bool,
    /// Continue the final message (transformers' `continue_final_message`);
    /// excludes `add_generation_prompt`.
    pub continue_final_message: bool,
    /// The `tools` variable (a list of JSON schemas); `None` renders as
    /// transformers' `tools=None`.
    pub tools: Option<Value>,
    /// Further variables (`date_string`, `enable_thinking`, ...); they
    /// override special tokens of the same name.
    pub extra: Vec<(String, Value)>,
}

/// A compiled chat template with the special tokens it may read.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    special_tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

/// Carries a `raise_exception` message through minijinja's error chain.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// Compiles `template_source` with the BOS and EOS tokens the template
    /// may read (`None` leaves the variable undefined, as transformers does
    /// for an unset token).
    pub fn new(
        template_source: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut special = Vec::new();
        if let Some(bos) = bos_token {
            special.push(("bos_token".to_string(), bos));
        }
        if let Some(eos) = eos_token {
            special.push(("eos_token".to_string(), eos));
        }
        Self::with_special_tokens(template_source, special)
    }

    /// Compiles `template_source` with any special tokens (`bos_token`,
    /// `eos_token`, `unk_token`, `pad_token`, ...) as template variables.
    pub fn with_special_tokens(
        template_source: &str,
        special_tokens: Vec<(String, String)>,
    ) -> Result<ChatTemplate, TemplateError> {
        let env = environment(template_source)?;
        Ok(ChatTemplate {
            env,
            source: template_source.to_string(),
            special_tokens,
        })
    }

    /// The template of a GGUF file: its `tokenizer.chat_template` string and
    /// the texts of its BOS and EOS tokens (read by the GGUF loader).
    pub fn from_gguf(
        chat_template: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<ChatTemplate, TemplateError> {
        Self::new(chat_template, bos_token, eos_token)
    }

    /// The template of a `tokenizer_config.json` text; `origin` names the
    /// file in errors.
    pub fn from_tokenizer_config(json: &str, origin: &str) -> Result<ChatTemplate, TemplateError> {
        let config = parse_tokenizer_config(json, origin)?;
        let source = chat_template_field(&config, origin)?;
        Self::with_special_tokens(&source, special_tokens_of(&config, origin)?)
    }

    /// [`from_tokenizer_config`](Self::from_tokenizer_config) on a file.
    pub fn from_tokenizer_config_file(path: &Path) -> Result<ChatTemplate, TemplateError> {
        let text = read(path)?;
        Self::from_tokenizer_config(&text, &path.display().to_string())
    }

    /// The template of a Hugging Face model directory: `chat_template.jinja`
    /// when present (newer repositories; transformers prefers it), else
    /// `chat_template` of `tokenizer_config.json`; special tokens from
    /// `tokenizer_config.json`.
    pub fn from_model_dir(dir: &Path) -> Result<ChatTemplate, TemplateError> {
        let config_path = dir.join("tokenizer_config.json");
        let jinja_path = dir.join("chat_template.jinja");
        let config = if config_path.is_file() {
            let origin = config_path.display().to_string();
            Some((
                parse_tokenizer_config(&read(&config_path)?, &origin)?,
                origin,
            ))
        } else {
            None
        };
        let source = if jinja_path.is_file() {
            read(&jinja_path)?
        } else {
            match &config {
                Some((config, origin)) => chat_template_field(config, origin)?,
                None => {
                    return Err(TemplateError::Config(format!(
                        "{}: no chat template (neither tokenizer_config.json nor chat_template.jinja)",
                        dir.display()
                    )));
                }
            }
        };
        let special = match &config {
            Some((config, origin)) => special_tokens_of(config, origin)?,
            None => Vec::new(),
        };
        Self::with_special_tokens(&source, special)
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The special tokens the template sees, as `(variable, text)`.
    pub fn special_tokens(&self) -> &[(String, String)] {
        &self.special_tokens
    }

    /// Renders `messages`, with the assistant header appended when
    /// `add_generation_prompt` is set.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_with(
            messages,
            &RenderOptions {
                add_generation_prompt,
                ..RenderOptions::default()
            },
        )
    }

    /// Renders `messages` so that the model continues the final message (an
    /// assistant prefill): transformers' `continue_final_message=True`.
    pub fn render_continue_final_message(
        &self,
        messages: &[Message],
    ) -> Result<String, TemplateError> {
        self.render_with(
            messages,
            &RenderOptions {
                continue_final_message: true,
                ..RenderOptions::default()
            },
        )
    }

    /// The prompt the engine generates from: a final assistant message is a
    /// prefill to continue, anything else gets the generation prompt.
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String, TemplateError> {
        match messages.last() {
            Some(last) if last.role == "assistant" => self.render_continue_final_message(messages),
            _ => self.render(messages, true),
        }
    }

    /// Renders `messages` with all options.
    pub fn render_with(
        &self,
        messages: &[Message],
        options: &RenderOptions,
    ) -> Result<String, TemplateError> {
        let list: Vec<Value> = messages
            .iter()
            .map(|m| {
                ordered_map(&[
                    (Value::from("role"), Value::from(m.role.as_str())),
                    (Value::from("content"), Value::from(m.content.as_str())),
                ])
            })
            .collect();
        self.render_values(Value::from(list), options)
    }

    /// Renders messages given as template values (e.g. parsed with
    /// [`json_value`], for messages with tool calls or content blocks).
    pub fn render_values(
        &self,
        messages: Value,
        options: &RenderOptions,
    ) -> Result<String, TemplateError> {
        let items: Vec<Value> = match messages.try_iter() {
            Ok(iter) if messages.kind() == ValueKind::Seq => iter.collect(),
            _ => {
                return Err(TemplateError::Input(format!(
                    "chat messages must be a list, not {}",
                    messages.kind()
                )));
            }
        };
        if items.is_empty() {
            return Err(TemplateError::Input(
                "cannot apply a chat template to an empty conversation: give at least one message"
                    .into(),
            ));
        }
        if !options.continue_final_message {
            return self.render_raw(Value::from(items), options.add_generation_prompt, options);
        }
        if options.add_generation_prompt {
            return Err(TemplateError::Input(
                "continue_final_message and add_generation_prompt are not compatible: the first continues the \
                 final message, the second starts a new assistant turn"
                    .into(),
            ));
        }
        self.render_continued(items, options)
    }

    /// transformers' `continue_final_message` (5.x): tag the final content,
    /// render, cut at the tag.
    fn render_continued(
        &self,
        mut items: Vec<Value>,
        options: &RenderOptions,
    ) -> Result<String, TemplateError> {
        if !self.source.contains("content") {
            return Err(TemplateError::Input(
                "continue_final_message: the chat template never reads a message's \"content\""
                    .into(),
            ));
        }
        let Some(last) = items.pop() else {
            return Err(TemplateError::Input(
                "continue_final_message: the conversation is empty".into(),
            ));
        };
        let content = last.get_attr("content").unwrap_or(Value::UNDEFINED);
        let Some(final_text) = content.as_str().map(str::to_string) else {
            return Err(TemplateError::Input(format!(
                "continue_final_message: the final message's content must be text, not {}",
                content.kind()
            )));
        };
        let mut fields: Vec<(Value, Value)> = Vec::new();
        if let Ok(keys) = last.try_iter() {
            for key in keys {
                let value = last.get_item(&key).unwrap_or(Value::UNDEFINED);
                let value = if key.as_str() == Some("content") {
                    Value::from(format!("{final_text}{CONTINUE_TAG}"))
                } else {
                    value
                };
                fields.push((key, value));
            }
        }
        items.push(ordered_map(&fields));
        let rendered = self.render_raw(Value::from(items), false, options)?;
        let tag = CONTINUE_TAG.trim_end();
        let stripped = py_strip(&final_text);
        let Some(tag_at) = rendered.rfind(tag).filter(|_| rendered.contains(stripped)) else {
            return Err(TemplateError::Input(format!(
                "continue_final_message: the final message does not appear in the rendered chat (the template drops \
                 or rewrites it): {:?}",
                one_line(stripped)
            )));
        };
        if rendered[tag_at..].starts_with(CONTINUE_TAG) {
            // The template kept the content as it was.
            Ok(rendered[..tag_at].to_string())
        } else {
            // The template trimmed the content, so its trailing space goes too.
            Ok(py_rstrip(&rendered[..tag_at]).to_string())
        }
    }

    fn render_raw(
        &self,
        messages: Value,
        add_generation_prompt: bool,
        options: &RenderOptions,
    ) -> Result<String, TemplateError> {
        let mut context: Vec<(String, Value)> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        for (key, value) in &options.extra {
            if matches!(
                key.as_str(),
                "messages" | "tools" | "documents" | "add_generation_prompt"
            ) {
                return Err(TemplateError::Input(format!(
                    "chat template variable {key:?} is set by the renderer and cannot be passed as an extra variable"
                )));
            }
            context.retain(|(k, _)| k != key);
            context.push((key.clone(), value.clone()));
        }
        context.push(("messages".into(), messages));
        context.push((
            "tools".into(),
            options.tools.clone().unwrap_or(Value::from(())),
        ));
        context.push(("documents".into(), Value::from(())));
        context.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        let template = self.env.get_template(TEMPLATE_NAME).map_err(render_error)?;
        let context: Vec<(Value, Value)> = context
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect();
        template.render(ordered_map(&context)).map_err(render_error)
    }
}

/// A template map with its keys in the given order (a Python dict keeps
/// insertion order, and `tojson` and `|items` show it).
fn ordered_map(pairs: &[(Value, Value)]) -> Value {
    // minijinja builds maps from serde maps in entry order (its
    // `preserve_order` feature), and passes values through unchanged.
    struct Pairs<'a>(&'a [(Value, Value)]);
    impl serde::Serialize for Pairs<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (key, value) in self.0 {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
    Value::from(minijinja::value::Serde(Pairs(pairs)))
}

/// Parses JSON into template values, keeping the order of object keys (so
/// `tojson` writes them back in the same order, as Python does).
pub fn json_value(json: &str) -> Result<Value, TemplateError> {
    serde_json::from_str::<Value>(json)
        .map_err(|e| TemplateError::Input(format!("invalid JSON: {e}")))
}

fn read(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path)
        .map_err(|e| TemplateError::Config(format!("{}: {e}", path.display())))
}

fn parse_tokenizer_config(json: &str, origin: &str) -> Result<serde_json::Value, TemplateError> {
    let config: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| TemplateError::Config(format!("{origin}: not valid JSON: {e}")))?;
    if !config.is_object() {
        return Err(TemplateError::Config(format!(
            "{origin}: not a JSON object"
        )));
    }
    Ok(config)
}

/// `chat_template` as transformers reads it: a string, or a list of named
/// templates of which `default` is the chat template.
fn chat_template_field(config: &serde_json::Value, origin: &str) -> Result<String, TemplateError> {
    match config.get("chat_template") {
        None | Some(serde_json::Value::Null) => Err(TemplateError::Config(format!(
            "{origin}: no \"chat_template\" (the model has no chat template; send plain text with --api completions)"
        ))),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Array(list)) => {
            let mut names = Vec::new();
            for (i, entry) in list.iter().enumerate() {
                let name = entry.get("name").and_then(|n| n.as_str());
                let template = entry.get("template").and_then(|t| t.as_str());
                match (name, template) {
                    (Some("default"), Some(t)) => return Ok(t.to_string()),
                    (Some(n), Some(_)) => names.push(n.to_string()),
                    _ => {
                        return Err(TemplateError::Config(format!(
                            "{origin}: \"chat_template\"[{i}] is not an object with string \"name\" and \"template\""
                        )));
                    }
                }
            }
            Err(TemplateError::Config(format!(
                "{origin}: \"chat_template\" lists named templates ({}) but none is named \"default\"",
                names.join(", ")
            )))
        }
        Some(other) => Err(TemplateError::Config(format!(
            "{origin}: \"chat_template\" must be a string or a list of {{name, template}}, not {}",
            json_kind(other)
        ))),
    }
}

/// The special tokens of a tokenizer config that are set, each a string or
/// an `AddedToken` object (`{"content": ...}`).
fn special_tokens_of(
    config: &serde_json::Value,
    origin: &str,
) -> Result<Vec<(String, String)>, TemplateError> {
    let mut out = Vec::new();
    for key in [
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
    ] {
        let text = match config.get(key) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(obj @ serde_json::Value::Object(_)) => {
                match obj.get("content").and_then(|c| c.as_str()) {
                    Some(s) => s.to_string(),
                    None => {
                        return Err(TemplateError::Config(format!(
                            "{origin}: \"{key}\" is an object without a string \"content\""
                        )));
                    }
                }
            }
            Some(other) => {
                return Err(TemplateError::Config(format!(
                    "{origin}: \"{key}\" must be a string or {{\"content\": ...}}, not {}",
                    json_kind(other)
                )));
            }
        };
        out.push((key.to_string(), text));
    }
    Ok(out)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The environment of transformers' `_compile_jinja_template`.
fn environment(source: &str) -> Result<Environment<'static>, TemplateError> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build()
        .map_err(|e| syntax_error(&e))?;
    env.set_syntax(syntax);
    // jinja2's default `Undefined`: prints as "", iterates as empty, is
    // false; reading an attribute of it is an error.
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(python_formatter);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_filter("tojson", tojson);
    env.add_template_owned(TEMPLATE_NAME, source.to_string())
        .map_err(|e| syntax_error(&e))?;
    Ok(env)
}

fn syntax_error(e: &Error) -> TemplateError {
    TemplateError::Syntax {
        line: e.line(),
        message: one_line(&detail_of(e)),
    }
}

fn render_error(e: Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(raised) = err.downcast_ref::<Raised>() {
            return TemplateError::Raised {
                line: e.line(),
                message: one_line(&raised.0),
            };
        }
        source = err.source();
    }
    if e.kind() == ErrorKind::SyntaxError {
        return syntax_error(&e);
    }
    TemplateError::Render {
        line: e.line(),
        message: one_line(&detail_of(&e)),
    }
}

fn detail_of(e: &Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Keeps an error on one line: newlines in a message are shown escaped.
fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

/// `raise_exception(message)`: fails the render with the message.
fn raise_exception(message: Value) -> Result<Value, Error> {
    let text = match message.as_str() {
        Some(s) => s.to_string(),
        None => python_str(&message),
    };
    Err(Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(Raised(text)))
}

/// `strftime_now(format)`: Python's `datetime.now().strftime(format)` on
/// Linux: local time through the C library's `strftime` (C locale, so
/// English names); `%f` is the microseconds, and `%z`, `%:z` and `%Z` are
/// empty because `datetime.now()` is naive.
fn strftime_now(format: String) -> Result<String, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("strftime_now: clock before 1970: {e}"),
            )
        })?;
    strftime_at(&format, now.as_secs() as libc::time_t, now.subsec_micros())
}

fn strftime_at(format: &str, secs: libc::time_t, micros: u32) -> Result<String, Error> {
    // CPython's `wrap_strftime` rewrites these before calling the C library.
    let mut fmt = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            fmt.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('f') => {
                chars.next();
                let _ = write!(fmt, "{micros:06}");
            }
            Some('z') | Some('Z') => {
                chars.next();
            }
            Some(':') => {
                chars.next();
                if chars.peek() == Some(&'z') {
                    chars.next();
                } else {
                    fmt.push_str("%:");
                }
            }
            Some(other) => {
                chars.next();
                fmt.push('%');
                fmt.push(other);
            }
            None => fmt.push('%'),
        }
    }
    if fmt.is_empty() {
        return Ok(String::new());
    }
    let c_format = CString::new(fmt.as_str()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "strftime_now: the format contains a NUL character",
        )
    })?;
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { libc::localtime_r(&secs, &mut tm) };
    if filled.is_null() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "strftime_now: the local time is not available",
        ));
    }
    // strftime returns 0 when the buffer is too small (or the result is
    // empty); grow it as CPython does, up to 1024 bytes per format byte.
    let limit = 1024 * fmt.len();
    let mut capacity = 256.max(fmt.len() * 4);
    loop {
        let mut buf = vec![0u8; capacity];
        // SAFETY: `buf` has `capacity` writable bytes; the format is NUL-terminated.
        let n =
            unsafe { libc::strftime(buf.as_mut_ptr().cast(), capacity, c_format.as_ptr(), &tm) };
        if n > 0 || capacity >= limit {
            buf.truncate(n);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        capacity = (capacity * 4).min(limit);
    }
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, positional or keyword arguments.
fn tojson(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args
        .0
        .into_iter()
        .map(ValueOrKwargs::into_value)
        .collect::<Vec<_>>();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if positional.len() > NAMES.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments (ensure_ascii, indent, separators, sort_keys)",
        ));
    }
    let mut slots: [Option<Value>; 4] = Default::default();
    for (i, v) in positional.iter().enumerate() {
        slots[i] = Some(v.clone());
    }
    for (i, name) in NAMES.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            if slots[i].is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson got multiple values for argument {name:?}"),
                ));
            }
            slots[i] = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = slots;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => {
            Some(v.as_str().unwrap_or_default().to_string())
        }
        Some(v) if v.is_integer() => Some(" ".repeat(v.as_i64().unwrap_or(0).max(0) as usize)),
        Some(v) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "tojson: indent must be an integer or a string, not {}",
                    v.kind()
                ),
            ));
        }
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let parts: Vec<Value> = v.try_iter().map(|i| i.collect()).unwrap_or_default();
            match parts.as_slice() {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                    a.as_str().unwrap_or_default().to_string(),
                    b.as_str().unwrap_or_default().to_string(),
                ),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be a pair of strings (item, key)",
                    ));
                }
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let options = JsonOptions {
        ensure_ascii: ensure_ascii.is_some_and(|v| v.is_true()),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.is_some_and(|v| v.is_true()),
    };
    let mut out = String::new();
    write_json(&mut out, value, &options, 0)?;
    Ok(Value::from(out))
}

struct JsonOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// Nesting deeper than this is refused (Python would hit its recursion
/// limit); it keeps a self-referencing value from overflowing the stack.
const MAX_JSON_DEPTH: usize = 512;

fn write_json(out: &mut String, value: &Value, o: &JsonOptions, depth: usize) -> Result<(), Error> {
    if depth > MAX_JSON_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&json_number(value)),
        ValueKind::String => json_string(out, value.as_str().unwrap_or_default(), o.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, '[', ']', &items, o, depth, |out, item, o, depth| {
                write_json(out, item, o, depth)
            })?;
        }
        ValueKind::Map => {
            let mut pairs: Vec<(String, Value)> = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                pairs.push((json_key(&key)?, item));
            }
            if o.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(
                out,
                '{',
                '}',
                &pairs,
                o,
                depth,
                |out, (key, item), o, depth| {
                    json_string(out, key, o.ensure_ascii);
                    out.push_str(&o.key_sep);
                    write_json(out, item, o, depth)
                },
            )?;
        }
        kind => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: object of type {kind} is not JSON serializable"),
            ));
        }
    }
    Ok(())
}

fn write_container<T>(
    out: &mut String,
    open: char,
    close: char,
    items: &[T],
    o: &JsonOptions,
    depth: usize,
    mut write_item: impl FnMut(&mut String, &T, &JsonOptions, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(indent) = &o.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(indent);
            }
        }
    };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&o.item_sep);
        }
        newline(out, depth + 1);
        write_item(out, item, o, depth + 1)?;
    }
    newline(out, depth);
    out.push(close);
    Ok(())
}

/// Python's `json` turns these key types into strings; others are errors.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => Ok(json_number(key)),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_string()),
        ValueKind::None => Ok("null".to_string()),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

fn json_number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".to_string(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string(),
        Ok(f) => float_repr(f),
        Err(_) => value.to_string(),
    }
}

/// A JSON string as Python's `json` encoder writes it.
fn json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)` of a finite float: the shortest digits that round
/// trip, positional when the exponent is in -4..16, else `1e+16` style.
fn float_repr(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` prints the shortest round-trip digits, as Python's repr does.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let decpt = exponent + 1;
    let sign = if v < 0.0 { "-" } else { "" };
    let n = digits.len() as i64;
    let body = if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..decpt as usize],
                &digits[decpt as usize..]
            )
        }
    } else {
        let mantissa = if n > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let e = decpt - 1;
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

/// Prints `{{ value }}` as Python's `str(value)` would.
fn python_formatter(
    out: &mut minijinja::Output,
    _state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    let text = match value.kind() {
        ValueKind::Undefined => return Ok(()),
        ValueKind::String => {
            return out
                .write_str(value.as_str().unwrap_or_default())
                .map_err(Error::from);
        }
        _ => python_str(value),
    };
    out.write_str(&text).map_err(Error::from)
}

/// Python's `str()` of a template value.
fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => python_repr(value, 0),
    }
}

/// Python's `repr()` of a template value (strings quoted, containers as
/// Python literals).
fn python_repr(value: &Value, depth: usize) -> String {
    if depth > MAX_JSON_DEPTH {
        return "...".to_string();
    }
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".to_string(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.to_string(),
        ValueKind::Number => {
            if value.is_integer() {
                value.to_string()
            } else {
                match f64::try_from(value.clone()) {
                    Ok(f) if f.is_nan() => "nan".to_string(),
                    Ok(f) if f.is_infinite() => if f > 0.0 { "inf" } else { "-inf" }.to_string(),
                    Ok(f) => float_repr(f),
                    Err(_) => value.to_string(),
                }
            }
        }
        ValueKind::String => python_string_repr(value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| python_repr(&v, depth + 1)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let mut items = Vec::new();
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or(Value::UNDEFINED);
                    items.push(format!(
                        "{}: {}",
                        python_repr(&key, depth + 1),
                        python_repr(&item, depth + 1)
                    ));
                }
            }
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`.
fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let code = c as u32;
                let _ = if code <= 0xff {
                    write!(out, "\\x{code:02x}")
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isspace()`: Unicode whitespace plus the ASCII separators
/// 0x1c..0x1f that Rust does not count.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_str(source: &str) -> Result<String, TemplateError> {
        let t = ChatTemplate::new(source, None, None)?;
        t.render(
            &[Message {
                role: "user".into(),
                content: "hi".into(),
            }],
            false,
        )
    }

    #[test]
    fn float_repr_matches_python() {
        // Values and their Python 3 repr().
        for (v, want) in [
            (1.0, "1.0"),
            (26.1, "26.1"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
        ] {
            assert_eq!(float_repr(v), want, "repr({v})");
        }
    }

    #[test]
    fn tojson_follows_python_json_dumps() {
        // json.dumps(..., ensure_ascii=False) with transformers' defaults.
        let t = |src: &str| render_str(src).unwrap();
        assert_eq!(
            t(r#"{{ {"b": 1, "a": [1.0, "é\n", none, true]} | tojson }}"#),
            r#"{"b": 1, "a": [1.0, "é\n", null, true]}"#
        );
        assert_eq!(
            t(r#"{{ {"b": 1, "a": [2, {}]} | tojson(indent=2) }}"#),
            "{\n  \"b\": 1,\n  \"a\": [\n    2,\n    {}\n  ]\n}"
        );
        assert_eq!(
            t(r#"{{ {"b": 1, "a": 2} | tojson(sort_keys=true) }}"#),
            r#"{"a": 2, "b": 1}"#
        );
        assert_eq!(
            t(r#"{{ "é<>&'" | tojson(ensure_ascii=true) }}"#),
            r#""\u00e9<>&'""#
        );
        assert_eq!(
            t(r#"{{ [1, 2] | tojson(separators=(",", ":")) }}"#),
            "[1,2]"
        );
        assert_eq!(t(r#"{{ "😀" | tojson(true) }}"#), r#""\ud83d\ude00""#);
    }

    #[test]
    fn tojson_of_undefined_is_an_error_naming_it() {
        let err = render_str("{{ nothing | tojson }}").unwrap_err();
        assert!(err.to_string().contains("not JSON serializable"), "{err}");
    }

    #[test]
    fn chat_template_can_be_shared_across_threads() {
        // The engine renders from its request threads.
        fn shared<T: Send + Sync>() {}
        shared::<ChatTemplate>();
    }

    #[test]
    fn messages_keep_role_then_content_order() {
        // A Python dict built as {"role": ..., "content": ...} keeps that order.
        let t = ChatTemplate::new(
            "{{ messages[0] | tojson }} {% for k, v in messages[0] | items %}{{ k }};{% endfor %}",
            None,
            None,
        )
        .unwrap();
        let out = t
            .render(
                &[Message {
                    role: "user".into(),
                    content: "hi".into(),
                }],
                false,
            )
            .unwrap();
        assert_eq!(out, r#"{"role": "user", "content": "hi"} role;content;"#);
    }

    #[test]
    fn printed_values_look_like_python() {
        let out = render_str("{{ true }} {{ none }} {{ 1.0 }} {{ [1, 'a', \"it's\"] }} {{ {'k': false} }} {{ nope }}.")
            .unwrap();
        assert_eq!(out, "True None 1.0 [1, 'a', \"it's\"] {'k': False} .");
    }

    #[test]
    fn raise_exception_names_the_message_and_line() {
        let err =
            render_str("line one\n{{ raise_exception('Roles must alternate') }}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::Raised {
                line: Some(2),
                message: "Roles must alternate".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "chat template raised an exception at line 2: Roles must alternate"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = ChatTemplate::new("ok\n{% if x %}\nno end", None, None).unwrap_err();
        match &err {
            TemplateError::Syntax {
                line: Some(_),
                message,
            } => assert!(message.contains("syntax error"), "{err}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn loop_controls_and_python_methods_work() {
        let out = render_str(
            "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}\
             |{{ '  a b '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'x</think>y'.split('</think>')[-1] }}|{{ 'hi'.upper() }}|{{ 'ab'.title() }}",
        )
        .unwrap();
        assert_eq!(out, "13|a b|True|y|HI|Ab");
    }

    #[test]
    fn trim_blocks_and_lstrip_blocks_are_on() {
        let out = render_str("{% if true %}\n    x\n    {% endif %}\ny\n").unwrap();
        // trim_blocks eats the newline after a block tag, lstrip_blocks the
        // indentation before one; the final newline is dropped.
        assert_eq!(out, "    x\ny");
    }

    #[test]
    fn strftime_rewrites_what_python_rewrites() {
        // 2024-07-26 12:34:56 UTC; the C library formats the date.
        let secs: libc::time_t = 1_721_997_296;
        let out = strftime_at("%Y|%f|%z|%Z|%:z|%%", secs, 42).unwrap();
        assert!(out.starts_with("2024|000042||||%"), "{out}");
    }
}
