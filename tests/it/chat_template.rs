//! Chat templates rendered as transformers' `apply_chat_template` does, on
//! the real templates of Qwen2.5-Instruct and Llama 3.1/3.2-Instruct
//! (fixtures/chat_templates/, sources in its README) and on the ChatML
//! template `make_tiny_gguf.py` writes.
//!
//! Every expected string below is written from the template's rules. Each was
//! also cross-checked against transformers 5.24's `render_jinja_template`
//! (the function behind `apply_chat_template`, with jinja2 3.1.6) on the same
//! template text and messages: all equal.

use std::path::PathBuf;

use bench::client::Message;
use bench::engine::chat_template::{ChatTemplate, RenderOptions, TemplateError, json_value};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/chat_templates")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn msg(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
    }
}

fn system() -> Message {
    msg("system", "You are a careful grader.")
}

fn user() -> Message {
    msg("user", "What is 2 + 2?")
}

/// lm-eval's arc_challenge_chat prefill.
fn prefill() -> Message {
    msg("assistant", "The best answer is")
}

fn qwen() -> ChatTemplate {
    // Qwen2.5's tokenizer_config.json: bos_token null, eos_token <|im_end|>.
    ChatTemplate::new(
        &fixture("Qwen2.5-Instruct.jinja"),
        None,
        Some("<|im_end|>".into()),
    )
    .unwrap()
}

fn llama(file: &str) -> ChatTemplate {
    ChatTemplate::new(
        &fixture(file),
        Some("<|begin_of_text|>".into()),
        Some("<|eot_id|>".into()),
    )
    .unwrap()
}

fn chatml() -> ChatTemplate {
    ChatTemplate::new(
        &fixture("chatml-make_tiny_gguf.jinja"),
        None,
        Some("<|im_end|>".into()),
    )
    .unwrap()
}

const QWEN_DEFAULT_SYSTEM: &str = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";

#[test]
fn qwen25_system_and_user_with_generation_prompt() {
    // A system message first replaces the default system prompt; each turn
    // is <|im_start|>role\ncontent<|im_end|>\n; the generation prompt opens
    // an assistant turn.
    let out = qwen().render(&[system(), user()], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a careful grader.<|im_end|>\n\
         <|im_start|>user\nWhat is 2 + 2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn qwen25_user_only_gets_the_default_system_prompt() {
    let out = qwen().render(&[user()], true).unwrap();
    assert_eq!(
        out,
        format!(
            "{QWEN_DEFAULT_SYSTEM}<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
        )
    );
    // Without the generation prompt the text ends after the user turn.
    let out = qwen().render(&[user()], false).unwrap();
    assert_eq!(
        out,
        format!("{QWEN_DEFAULT_SYSTEM}<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n")
    );
}

#[test]
fn qwen25_assistant_prefill_is_continued() {
    // The assistant turn is rendered as a full turn and cut right after its
    // content, so the closing <|im_end|>\n is gone.
    let out = qwen()
        .render_continue_final_message(&[system(), user(), prefill()])
        .unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a careful grader.<|im_end|>\n\
         <|im_start|>user\nWhat is 2 + 2?<|im_end|>\n\
         <|im_start|>assistant\nThe best answer is"
    );
}

#[test]
fn qwen25_prefill_keeps_its_trailing_space() {
    // Qwen's template prints the content as is, so "Answer: " keeps its space.
    let out = qwen()
        .render_continue_final_message(&[user(), msg("assistant", "Answer: ")])
        .unwrap();
    assert_eq!(
        out,
        format!(
            "{QWEN_DEFAULT_SYSTEM}<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\nAnswer: "
        )
    );
}

#[test]
fn qwen25_tokenizer_config_with_its_real_fields_renders_the_same() {
    // The shape of Qwen2.5-0.5B-Instruct's tokenizer_config.json: the
    // template as a string, bos_token null, eos/pad as strings.
    let config = serde_json::json!({
        "add_bos_token": false,
        "bos_token": null,
        "chat_template": fixture("Qwen2.5-Instruct.jinja"),
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": null
    });
    let t =
        ChatTemplate::from_tokenizer_config(&config.to_string(), "tokenizer_config.json").unwrap();
    assert_eq!(
        t.special_tokens(),
        &[
            ("eos_token".to_string(), "<|im_end|>".to_string()),
            ("pad_token".to_string(), "<|endoftext|>".to_string())
        ]
    );
    assert_eq!(
        t.render(&[user()], true).unwrap(),
        qwen().render(&[user()], true).unwrap()
    );
}

/// Today's date as Python's `datetime.now().strftime("%d %b %Y")` writes it
/// in the C locale, computed here from the C library's local time with a
/// month table of our own (not through strftime).
fn today_d_b_y() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as libc::time_t;
    // SAFETY: plain-data out parameter for localtime_r.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    assert!(!unsafe { libc::localtime_r(&secs, &mut tm) }.is_null());
    format!(
        "{:02} {} {}",
        tm.tm_mday,
        MONTHS[tm.tm_mon as usize],
        tm.tm_year + 1900
    )
}

/// Renders with today's date, retrying if midnight passed in between.
fn with_today(render: impl Fn() -> String) -> (String, String) {
    loop {
        let before = today_d_b_y();
        let out = render();
        if today_d_b_y() == before {
            return (out, before);
        }
    }
}

fn llama_header(date: &str, system: &str) -> String {
    format!(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n{system}<|eot_id|>"
    )
}

const LLAMA_USER: &str = "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>";
const LLAMA_ASSISTANT: &str = "<|start_header_id|>assistant<|end_header_id|>\n\n";

#[test]
fn llama32_system_and_user_with_generation_prompt() {
    // Llama 3.2 dates the system header with strftime_now("%d %b %Y").
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let (out, today) = with_today(|| t.render(&[system(), user()], true).unwrap());
    assert_eq!(
        out,
        format!(
            "{}{LLAMA_USER}{LLAMA_ASSISTANT}",
            llama_header(&today, "You are a careful grader.")
        )
    );
}

#[test]
fn llama32_user_only_has_an_empty_system_message() {
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let (out, today) = with_today(|| t.render(&[user()], true).unwrap());
    assert_eq!(
        out,
        format!("{}{LLAMA_USER}{LLAMA_ASSISTANT}", llama_header(&today, ""))
    );
}

#[test]
fn llama32_assistant_prefill_is_continued() {
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let (out, today) = with_today(|| {
        t.render_continue_final_message(&[system(), user(), prefill()])
            .unwrap()
    });
    assert_eq!(
        out,
        format!(
            "{}{LLAMA_USER}{LLAMA_ASSISTANT}The best answer is",
            llama_header(&today, "You are a careful grader.")
        )
    );
}

#[test]
fn llama32_prefill_loses_the_trailing_space_its_template_trims() {
    // The template prints `content | trim`, so transformers cuts before the
    // trimmed space: "Answer:" not "Answer: ".
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let (out, today) = with_today(|| {
        t.render_continue_final_message(&[user(), msg("assistant", "Answer: ")])
            .unwrap()
    });
    assert_eq!(
        out,
        format!(
            "{}{LLAMA_USER}{LLAMA_ASSISTANT}Answer:",
            llama_header(&today, "")
        )
    );
}

#[test]
fn llama32_date_string_variable_overrides_strftime_now() {
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let options = RenderOptions {
        add_generation_prompt: true,
        extra: vec![("date_string".into(), "26 Jul 2024".into())],
        ..RenderOptions::default()
    };
    let out = t.render_with(&[user()], &options).unwrap();
    assert_eq!(
        out,
        format!(
            "{}{LLAMA_USER}{LLAMA_ASSISTANT}",
            llama_header("26 Jul 2024", "")
        )
    );
}

#[test]
fn llama31_system_user_and_prefill() {
    // Llama 3.1's template has a fixed default date, 26 Jul 2024.
    let t = llama("Llama-3.1-8B-Instruct.jinja");
    let header = llama_header("26 Jul 2024", "You are a careful grader.");
    assert_eq!(
        t.render(&[system(), user()], true).unwrap(),
        format!("{header}{LLAMA_USER}{LLAMA_ASSISTANT}")
    );
    assert_eq!(
        t.render(&[user()], true).unwrap(),
        format!(
            "{}{LLAMA_USER}{LLAMA_ASSISTANT}",
            llama_header("26 Jul 2024", "")
        )
    );
    assert_eq!(
        t.render_continue_final_message(&[system(), user(), prefill()])
            .unwrap(),
        format!("{header}{LLAMA_USER}{LLAMA_ASSISTANT}The best answer is")
    );
}

#[test]
fn chatml_of_make_tiny_gguf_renders_turns_and_prefill() {
    let t = chatml();
    assert_eq!(
        t.render(&[system(), user()], true).unwrap(),
        "<|im_start|>system\nYou are a careful grader.<|im_end|>\n\
         <|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
    );
    // No default system prompt in this template.
    assert_eq!(
        t.render(&[user()], true).unwrap(),
        "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        t.render_continue_final_message(&[system(), user(), prefill()])
            .unwrap(),
        "<|im_start|>system\nYou are a careful grader.<|im_end|>\n\
         <|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\nThe best answer is"
    );
}

#[test]
fn render_prompt_continues_a_final_assistant_message_and_prompts_otherwise() {
    let t = chatml();
    assert_eq!(
        t.render_prompt(&[user(), prefill()]).unwrap(),
        t.render_continue_final_message(&[user(), prefill()])
            .unwrap()
    );
    assert_eq!(
        t.render_prompt(&[user()]).unwrap(),
        t.render(&[user()], true).unwrap()
    );
}

#[test]
fn huggingface_js_tool_call_cases_match_their_targets() {
    // huggingface.js's jinja e2e cases for these two templates: tool schemas
    // through `tojson` (key order kept; Llama's indent=4) and tool calls.
    // Their targets also equal transformers 5.24's output.
    let cases = json_value(&fixture("huggingface-js-cases.json")).unwrap();
    let mut seen = 0;
    for name in cases.try_iter().unwrap() {
        let case = cases.get_item(&name).unwrap();
        let template_file = case.get_attr("template").unwrap();
        let data = case.get_attr("data").unwrap();
        let target = case.get_attr("target").unwrap();
        let token = |key: &str| {
            data.get_attr(key)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        };
        let t = ChatTemplate::new(
            &fixture(template_file.as_str().unwrap()),
            token("bos_token"),
            token("eos_token"),
        )
        .unwrap();
        let options = RenderOptions {
            add_generation_prompt: data.get_attr("add_generation_prompt").unwrap().is_true(),
            tools: Some(data.get_attr("tools").unwrap()),
            ..RenderOptions::default()
        };
        let out = t
            .render_values(data.get_attr("messages").unwrap(), &options)
            .unwrap();
        assert_eq!(out, target.as_str().unwrap(), "case {name}");
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn tokenizer_config_named_templates_use_default_and_added_token_objects() {
    let config = serde_json::json!({
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS"},
            {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}
        ],
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
        "eos_token": "</s>"
    });
    let t =
        ChatTemplate::from_tokenizer_config(&config.to_string(), "tokenizer_config.json").unwrap();
    assert_eq!(t.render(&[user()], false).unwrap(), "<s>What is 2 + 2?</s>");
}

#[test]
fn tokenizer_config_problems_name_the_file_and_field() {
    let err = |config: serde_json::Value| {
        ChatTemplate::from_tokenizer_config(&config.to_string(), "m/tokenizer_config.json")
            .unwrap_err()
            .to_string()
    };
    let e = err(serde_json::json!({"eos_token": "</s>"}));
    assert!(
        e.starts_with("m/tokenizer_config.json: no \"chat_template\""),
        "{e}"
    );
    let e = err(serde_json::json!({"chat_template": [{"name": "rag", "template": "x"}]}));
    assert!(
        e.contains("none is named \"default\"") && e.contains("rag"),
        "{e}"
    );
    let e = err(serde_json::json!({"chat_template": 3}));
    assert!(e.contains("\"chat_template\" must be a string"), "{e}");
    let e = err(serde_json::json!({"chat_template": "x", "eos_token": 7}));
    assert!(e.contains("\"eos_token\" must be a string"), "{e}");
    let e =
        ChatTemplate::from_tokenizer_config("{not json", "m/tokenizer_config.json").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("m/tokenizer_config.json: not valid JSON"),
        "{e}"
    );
}

#[test]
fn model_dir_prefers_chat_template_jinja_and_reads_tokens_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        serde_json::json!({"chat_template": "OLD", "eos_token": {"content": "<|im_end|>"}});
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
    let t = ChatTemplate::from_model_dir(dir.path()).unwrap();
    assert_eq!(t.render(&[user()], false).unwrap(), "OLD");
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "NEW {{ eos_token }}\n",
    )
    .unwrap();
    let t = ChatTemplate::from_model_dir(dir.path()).unwrap();
    assert_eq!(t.render(&[user()], false).unwrap(), "NEW <|im_end|>");
    let empty = tempfile::tempdir().unwrap();
    let e = ChatTemplate::from_model_dir(empty.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no chat template"), "{e}");
}

#[test]
fn empty_conversation_is_an_error() {
    let e = qwen().render(&[], true).unwrap_err();
    assert!(matches!(e, TemplateError::Input(_)), "{e}");
    assert!(e.to_string().contains("empty conversation"), "{e}");
}

#[test]
fn continue_final_message_with_generation_prompt_is_an_error() {
    let options = RenderOptions {
        add_generation_prompt: true,
        continue_final_message: true,
        ..RenderOptions::default()
    };
    let e = qwen()
        .render_with(&[user(), prefill()], &options)
        .unwrap_err();
    assert!(e.to_string().contains("not compatible"), "{e}");
}

#[test]
fn prefill_that_the_template_drops_is_an_error() {
    // This template prints only user turns, so a prefill cannot be continued.
    let t = ChatTemplate::new(
        "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}",
        None,
        None,
    )
    .unwrap();
    let e = t
        .render_continue_final_message(&[user(), prefill()])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("does not appear in the rendered chat"),
        "{e}"
    );
}

#[test]
fn raise_exception_in_a_real_template_is_reported_with_its_message() {
    // Llama 3.2 refuses tools without a user message to put them in.
    let t = llama("Llama-3.2-3B-Instruct.jinja");
    let options = RenderOptions {
        tools: Some(json_value(r#"[{"type": "function", "function": {"name": "f"}}]"#).unwrap()),
        extra: vec![("date_string".into(), "26 Jul 2024".into())],
        ..RenderOptions::default()
    };
    let e = t.render_with(&[system()], &options).unwrap_err();
    match &e {
        TemplateError::Raised { message, .. } => assert_eq!(
            message,
            "Cannot put tools in the first user message when there's no first user message!"
        ),
        other => panic!("expected raise_exception, got {other:?}"),
    }
    assert!(!e.to_string().contains('\n'));
}
