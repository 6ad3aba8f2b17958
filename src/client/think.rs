//! Separating `<think>...</think>` reasoning from the visible answer.
//!
//! Reasoning models served without a reasoning parser put their chain of
//! thought in `content`. Scoring must only see the answer, or the last number
//! of the reasoning gets graded.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Splits `text` into the visible answer and the reasoning inside
/// `<think>...</think>` blocks.
///
/// Handles the shapes servers produce:
/// - any number of closed blocks, anywhere;
/// - an unclosed `<think>` (the response was cut by `max_tokens`): the rest
///   is reasoning, so a truncated leading block leaves an empty answer;
/// - a bare `...</think>` with no opening tag, because some chat templates
///   put `<think>` in the prompt and the server only returns what follows.
///
/// When a tag was found the answer is trimmed and the reasoning blocks are
/// trimmed and joined with a blank line (`None` if all were blank). Text
/// without any tag is returned unchanged, so compat modes see the exact bytes.
pub fn split_think(text: &str) -> (String, Option<String>) {
    if !text.contains(OPEN) && !text.contains(CLOSE) {
        return (text.to_owned(), None);
    }
    let mut answer = String::with_capacity(text.len());
    let mut reasoning: Vec<&str> = Vec::new();
    let mut rest = text;

    if let Some(close) = rest.find(CLOSE)
        && !rest[..close].contains(OPEN)
    {
        reasoning.push(&rest[..close]);
        rest = &rest[close + CLOSE.len()..];
    }
    loop {
        let Some(open) = rest.find(OPEN) else {
            answer.push_str(rest);
            break;
        };
        answer.push_str(&rest[..open]);
        let inner = &rest[open + OPEN.len()..];
        match inner.find(CLOSE) {
            Some(close) => {
                reasoning.push(&inner[..close]);
                rest = &inner[close + CLOSE.len()..];
            }
            None => {
                reasoning.push(inner);
                break;
            }
        }
    }

    let reasoning: Vec<&str> = reasoning
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .collect();
    let reasoning = (!reasoning.is_empty()).then(|| reasoning.join("\n\n"));
    (answer.trim().to_owned(), reasoning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, Option<String>) {
        split_think(text)
    }

    #[test]
    fn no_tags_is_unchanged() {
        assert_eq!(
            split(" The answer is 42.\n"),
            (" The answer is 42.\n".into(), None)
        );
        assert_eq!(split(""), (String::new(), None));
    }

    #[test]
    fn closed_block_is_removed() {
        assert_eq!(
            split("<think>\n6*7=42\n</think>\n\nThe answer is 42."),
            ("The answer is 42.".into(), Some("6*7=42".into()))
        );
    }

    #[test]
    fn several_blocks_are_joined() {
        assert_eq!(
            split("<think>a</think>x <think>b</think> y"),
            ("x  y".into(), Some("a\n\nb".into()))
        );
    }

    #[test]
    fn unclosed_leading_block_is_all_reasoning() {
        assert_eq!(
            split("<think>\nlet me see, 6*7 is"),
            (String::new(), Some("let me see, 6*7 is".into()))
        );
    }

    #[test]
    fn bare_closing_tag_ends_reasoning() {
        assert_eq!(
            split("6*7=42\n</think>\n42"),
            ("42".into(), Some("6*7=42".into()))
        );
    }

    #[test]
    fn empty_block_gives_no_reasoning() {
        // Qwen3 with thinking disabled.
        assert_eq!(split("<think>\n\n</think>\n\n42"), ("42".into(), None));
    }

    #[test]
    fn multibyte_text_is_split_on_char_boundaries() {
        assert_eq!(split("<think>é</think>ü"), ("ü".into(), Some("é".into())));
    }
}
