//! IFEval: the case table per instruction kind (expectations written from
//! the official `instructions.py` rules), loading the fixture and the real
//! data, and a run end to end (strict and loose verdicts in the journal,
//! the four metrics and the per-kind table in the reports, rescore).

use bench::benchmarks::ifeval::{self, Mode, follows_instruction, instructions::KINDS};
use serde_json::{Value, json};

/// (instruction id, kwargs, response, followed under the strict rule).
fn cases() -> Vec<(&'static str, Value, String, bool)> {
    let mut c: Vec<(&str, Value, String, bool)> = Vec::new();
    let mut add =
        |id: &'static str, k: Value, r: &str, ok: bool| c.push((id, k, r.to_string(), ok));

    // change_case:capital_word_frequency: nltk.word_tokenize words that
    // are isupper(); `less than` is <, `at least` is >=.
    let id = "change_case:capital_word_frequency";
    let lt2 = json!({"capital_frequency": 2, "capital_relation": "less than"});
    let al2 = json!({"capital_frequency": 2, "capital_relation": "at least"});
    add(id, al2.clone(), "The USA and the UK agree.", true);
    add(id, al2.clone(), "I DON'T know.", true); // I, DO, N'T
    add(id, al2.clone(), "NASA (ESA) too", true);
    add(id, lt2.clone(), "Only ONE here.", true);
    add(id, lt2.clone(), "nothing loud at all", true);
    add(id, al2.clone(), "Only ONE here.", false);
    add(id, al2.clone(), "no capitals whatsoever", false);
    add(id, lt2.clone(), "THE END IS NEAR", false);
    add(id, lt2.clone(), "WE CAN'T", false);
    add(id, al2.clone(), "Mixed Case Words Only", false);

    // change_case:english_capital: isupper() and langdetect says en.
    let id = "change_case:english_capital";
    add(
        id,
        json!({}),
        "THIS IS A COMPLETE ANSWER WRITTEN IN ENGLISH CAPITAL LETTERS.",
        true,
    );
    add(
        id,
        json!({}),
        "THE WEATHER TODAY IS SUNNY AND WARM, SO WE WILL GO TO THE PARK.",
        true,
    );
    add(
        id,
        json!({}),
        "MY FAVOURITE BOOK IS ABOUT A YOUNG WIZARD WHO GOES TO SCHOOL.",
        true,
    );
    add(
        id,
        json!({}),
        "PLEASE READ THE INSTRUCTIONS CAREFULLY BEFORE YOU START THE TEST.",
        true,
    );
    add(
        id,
        json!({}),
        "123 THE NUMBERS DO NOT MATTER, ONLY THE LETTERS DO IN THIS SENTENCE.",
        true,
    );
    add(
        id,
        json!({}),
        "THIS IS ALMOST ALL CAPITALS but not quite.",
        false,
    );
    add(
        id,
        json!({}),
        "ceci est une phrase en français écrite en minuscules.",
        false,
    );
    add(id, json!({}), "12345 67890", false); // no cased character
    add(id, json!({}), "", false); // an empty response follows nothing
    add(
        id,
        json!({}),
        "DIES IST EIN SATZ AUF DEUTSCH, GANZ IN GROSSBUCHSTABEN GESCHRIEBEN UND ZIEMLICH LANG.",
        false,
    );

    // change_case:english_lowercase.
    let id = "change_case:english_lowercase";
    add(
        id,
        json!({}),
        "this is a complete answer written in english lowercase letters.",
        true,
    );
    add(
        id,
        json!({}),
        "the weather today is sunny and warm, so we will go to the park.",
        true,
    );
    add(
        id,
        json!({}),
        "my favourite book is about a young wizard who goes to school.",
        true,
    );
    add(
        id,
        json!({}),
        "please read the instructions carefully before you start the test.",
        true,
    );
    add(
        id,
        json!({}),
        "numbers like 42 do not matter, only the letters in this sentence do.",
        true,
    );
    add(
        id,
        json!({}),
        "this is almost all lowercase But not quite.",
        false,
    );
    add(
        id,
        json!({}),
        "I am writing in lowercase except for this first word.",
        false,
    );
    add(id, json!({}), "12345 67890", false);
    add(id, json!({}), "   ", false);
    add(
        id,
        json!({}),
        "dies ist ein satz auf deutsch, ganz klein geschrieben und ziemlich lang.",
        false,
    );

    // combination:repeat_prompt: stripped, lowercased response starts
    // with the stripped, lowercased prompt.
    let id = "combination:repeat_prompt";
    let k = json!({"prompt_to_repeat": "Write a poem about cats."});
    add(
        id,
        k.clone(),
        "Write a poem about cats.\nCats are soft.",
        true,
    );
    add(
        id,
        k.clone(),
        "  write a POEM about cats. Here it is.",
        true,
    );
    add(id, k.clone(), "Write a poem about cats.", true);
    add(id, k.clone(), "\nWRITE A POEM ABOUT CATS.!", true);
    add(id, k.clone(), "Write a poem about cats.Write", true);
    add(id, k.clone(), "Sure! Write a poem about cats.", false);
    add(id, k.clone(), "Write a poem about cats", false);
    add(id, k.clone(), "Write a poem about dogs.", false);
    add(id, k.clone(), "Write  a poem about cats.", false);
    add(id, k.clone(), "", false);

    // combination:two_responses: split on ******, empty parts only at the
    // ends, exactly two different (stripped) responses.
    let id = "combination:two_responses";
    add(id, json!({}), "First answer.\n******\nSecond answer.", true);
    add(id, json!({}), "******\nA\n******\nB\n******", true);
    add(id, json!({}), "A******B", true);
    add(id, json!({}), "one ****** two", true);
    add(id, json!({}), "x\n******\n y ", true);
    add(id, json!({}), "Same.\n******\nSame.", false);
    add(id, json!({}), "Only one answer.", false);
    add(id, json!({}), "A\n******\n\n******\nB", false);
    add(id, json!({}), "A\n******\nB\n******\nC", false);
    add(id, json!({}), "A\n*****\nB", false);

    // detectable_content:number_placeholders: `\[.*?\]` at least n.
    let id = "detectable_content:number_placeholders";
    let k = json!({"num_placeholders": 2});
    add(id, k.clone(), "Dear [name], at [address].", true);
    add(id, k.clone(), "[a][b]", true);
    add(id, k.clone(), "[] and []", true);
    add(id, k.clone(), "[x] [y] [z]", true);
    add(id, k.clone(), "[[nested]] [two]", true);
    add(id, k.clone(), "Dear [name].", false);
    add(id, k.clone(), "[open\nclose] [x]", false); // `.` stops at a newline
    add(id, k.clone(), "(name) {address}", false);
    add(id, k.clone(), "no placeholders", false);
    add(id, k.clone(), "[unclosed [ones", false);

    // detectable_content:postscript: lowercased; P.S. -> \s*p\.\s?s\..*$,
    // P.P.S -> \s*p\.\s?p\.\s?s.*$ (multiline, anywhere).
    let id = "detectable_content:postscript";
    let ps = json!({"postscript_marker": "P.S."});
    let pps = json!({"postscript_marker": "P.P.S"});
    add(id, ps.clone(), "Body.\n\nP.S. Call me.", true);
    add(id, ps.clone(), "Body. p. s. lower and spaced", true);
    add(id, ps.clone(), "Body.\nPS. no wait P.S. here", true);
    add(id, pps.clone(), "Body.\n\nP.P.S. more", true);
    add(id, pps.clone(), "Body.\np.p.s", true);
    add(id, ps.clone(), "Body.\n\nPS Call me.", false);
    add(id, ps.clone(), "Body.\n\nP.S Call me.", false); // needs the final period
    add(id, pps.clone(), "Body.\n\nP.S. Call me.", false);
    add(id, pps.clone(), "Body.\n\nPPS more", false);
    add(id, ps.clone(), "Body without a postscript.", false);

    // detectable_format:constrained_response: stripped response contains
    // one of the three options.
    let id = "detectable_format:constrained_response";
    add(id, json!({}), "My answer is yes.", true);
    add(id, json!({}), "My answer is no.", true);
    add(id, json!({}), "My answer is maybe.", true);
    add(id, json!({}), "Thinking... My answer is no. Because.", true);
    add(id, json!({}), "  My answer is yes.  ", true);
    add(id, json!({}), "My answer is yes", false);
    add(id, json!({}), "my answer is yes.", false);
    add(id, json!({}), "My answer is Yes.", false);
    add(id, json!({}), "Yes.", false);
    add(id, json!({}), "My answer is perhaps.", false);

    // detectable_format:json_format: strip, drop ```json/```Json/```JSON/```
    // prefixes in turn and a ``` suffix, strip, json.loads.
    let id = "detectable_format:json_format";
    add(id, json!({}), "{\"a\": 1}", true);
    add(id, json!({}), "```json\n{\"a\": [1, 2]}\n```", true);
    add(id, json!({}), "```JSON\n[1, 2, 3]\n```", true);
    add(id, json!({}), "```\n\"just a string\"\n```", true);
    add(id, json!({}), "  42  ", true);
    add(id, json!({}), "Here is the JSON: {\"a\": 1}", false);
    add(id, json!({}), "```json\n{\"a\": 1}\n``` trailing", false);
    add(id, json!({}), "{'a': 1}", false);
    add(id, json!({}), "{\"a\": 1,}", false);
    add(id, json!({}), "```python\n{\"a\": 1}\n```", false);

    // detectable_format:multiple_sections: re.split(\s?SPLITTER\s?\d+\s?)
    // gives at least n + 1 pieces.
    let id = "detectable_format:multiple_sections";
    let k = json!({"section_spliter": "SECTION", "num_sections": 2});
    add(id, k.clone(), "SECTION 1\nIntro\nSECTION 2\nBody", true);
    add(id, k.clone(), "SECTION1 a SECTION2 b SECTION3 c", true);
    add(id, k.clone(), "text SECTION 7 more SECTION 9", true);
    add(
        id,
        json!({"section_spliter": " Section ", "num_sections": 2}),
        "Section 1 a Section 2 b",
        true,
    );
    add(
        id,
        json!({"section_spliter": "Day", "num_sections": 1}),
        "Day 1: rest",
        true,
    );
    add(id, k.clone(), "SECTION 1\nOnly one", false);
    add(id, k.clone(), "Section 1 a Section 2 b", false); // case matters
    add(id, k.clone(), "SECTION one SECTION two", false);
    add(id, k.clone(), "SECTION  1 a SECTION  2 b", false); // at most one space
    add(
        id,
        json!({"section_spliter": "Day", "num_sections": 3}),
        "Day 1 and Day 2",
        false,
    );

    // detectable_format:number_bullet_lists: lines ^\s*\*[^*].*$ plus
    // ^\s*-.*$, exactly n.
    let id = "detectable_format:number_bullet_lists";
    let k = json!({"num_bullets": 2});
    add(id, k.clone(), "* one\n* two", true);
    add(id, k.clone(), "- one\n- two", true);
    add(id, k.clone(), "Intro\n  * one\n- two\nOutro", true);
    add(id, k.clone(), "* one\n* two\n**bold** line", true);
    add(id, json!({"num_bullets": 3}), "* a\n* b\n- c", true);
    add(id, k.clone(), "* one\n* two\n* three", false);
    add(id, k.clone(), "* one", false);
    add(id, k.clone(), "1. one\n2. two", false);
    add(id, k.clone(), "• one\n• two", false);
    add(
        id,
        k.clone(),
        "*one*\n**two**\n- three\n- four\n- five",
        false,
    );

    // detectable_format:number_highlighted_sections: *x* with text, plus
    // **x** with text, at least n.
    let id = "detectable_format:number_highlighted_sections";
    let k = json!({"num_highlights": 2});
    add(id, k.clone(), "*one* and *two*", true);
    add(id, k.clone(), "**bold** and *it*", true); // `**` pairs are empty singles
    add(id, k.clone(), "*a*\n*b*\n*c*", true);
    add(id, k.clone(), "* a * and * b *", true);
    add(id, json!({"num_highlights": 1}), "Only *one* here", true);
    add(id, k.clone(), "Only *one* here", false);
    add(id, k.clone(), "* * and ** **", false);
    add(id, k.clone(), "*across\nlines*", false);
    add(id, k.clone(), "no highlights", false);
    add(id, k.clone(), "_under_ and _score_", false);
    add(id, k.clone(), "**bold**", false); // one double, no single

    // detectable_format:title: <<[^\n]+>> whose inside is not blank.
    let id = "detectable_format:title";
    add(id, json!({}), "<<My Title>>\nText", true);
    add(id, json!({}), "Text first then <<title>>", true);
    add(id, json!({}), "<< spaced >>", true);
    add(id, json!({}), "<<<triple>>>", true);
    add(id, json!({}), "<< >> and <<x>>", true); // one greedy match, `x` inside
    add(id, json!({}), "<< >>", false);
    add(id, json!({}), "<<>>", false);
    add(id, json!({}), "<<broken\ntitle>>", false);
    add(id, json!({}), "<Single Title>", false);
    add(id, json!({}), "# Markdown Title", false);

    // keywords:existence: every keyword found (re.search, ignore case).
    let id = "keywords:existence";
    let k = json!({"keywords": ["river", "stone"]});
    add(id, k.clone(), "A river and a stone.", true);
    add(id, k.clone(), "RIVERS of STONES", true); // substrings count
    add(id, k.clone(), "stone by the river", true);
    add(id, k.clone(), "riverstone", true);
    add(
        id,
        json!({"keywords": ["the end"]}),
        "That is THE END.",
        true,
    );
    add(id, k.clone(), "A river only.", false);
    add(id, k.clone(), "A stone only.", false);
    add(id, k.clone(), "rive ston", false);
    add(id, json!({"keywords": ["the end"]}), "the  end", false);
    add(id, k.clone(), "nothing", false);

    // keywords:forbidden_words: none of \bword\b (ignore case).
    let id = "keywords:forbidden_words";
    let k = json!({"forbidden_words": ["bad", "evil"]});
    add(id, k.clone(), "A good day.", true);
    add(id, k.clone(), "badly done, devilish", true); // not whole words
    add(id, k.clone(), "bad_guy", true); // `_` is a word character
    add(id, k.clone(), "evil2", true);
    add(id, k.clone(), "badevil", true);
    add(id, k.clone(), "This is bad.", false);
    add(id, k.clone(), "EVIL!", false);
    add(id, k.clone(), "not-bad-at-all", false);
    add(id, k.clone(), "(Evil)", false);
    add(id, k.clone(), "bad", false);

    // keywords:frequency: re.findall(keyword, ignore case) count.
    let id = "keywords:frequency";
    let al = json!({"keyword": "cat", "frequency": 2, "relation": "at least"});
    let lt = json!({"keyword": "cat", "frequency": 2, "relation": "less than"});
    add(id, al.clone(), "cat and CAT", true);
    add(id, al.clone(), "concatenate the cats", true); // substrings
    add(id, lt.clone(), "one cat", true);
    add(id, lt.clone(), "no felines", true);
    add(id, al.clone(), "catcatcat", true);
    add(id, al.clone(), "one cat", false);
    add(id, lt.clone(), "cat cat", false);
    add(id, lt.clone(), "Cats and cats", false);
    add(id, al.clone(), "c a t", false);
    add(id, al.clone(), "dog dog", false);

    // keywords:letter_frequency: Counter(response.lower())[letter].
    let id = "keywords:letter_frequency";
    let al = json!({"letter": "q", "let_frequency": 2, "let_relation": "at least"});
    let lt = json!({"letter": "q", "let_frequency": 2, "let_relation": "less than"});
    add(id, al.clone(), "Quiet queen", true);
    add(id, al.clone(), "QQ", true);
    add(id, lt.clone(), "one q", true);
    add(id, lt.clone(), "none", true);
    add(
        id,
        json!({"letter": "E", "let_frequency": 3, "let_relation": "at least"}),
        "eEe",
        true,
    );
    add(id, al.clone(), "one q", false);
    add(id, lt.clone(), "q q", false);
    add(id, lt.clone(), "Quick QUIZ", false);
    add(id, al.clone(), "no such letter", false);
    add(
        id,
        json!({"letter": "E", "let_frequency": 3, "let_relation": "at least"}),
        "ee",
        false,
    );

    // language:response_language: langdetect (seeded) == language; a
    // text with no feature counts as followed.
    let id = "language:response_language";
    add(
        id,
        json!({"language": "fr"}),
        "Ceci est une réponse entièrement écrite en français, avec plusieurs phrases complètes.",
        true,
    );
    add(
        id,
        json!({"language": "de"}),
        "Dies ist eine Antwort, die vollständig auf Deutsch geschrieben wurde und lang genug ist.",
        true,
    );
    add(
        id,
        json!({"language": "ru"}),
        "Это ответ, полностью написанный на русском языке, и он достаточно длинный.",
        true,
    );
    add(
        id,
        json!({"language": "ko"}),
        "이것은 완전히 한국어로 작성된 답변이며 충분히 깁니다.",
        true,
    );
    add(
        id,
        json!({"language": "hi"}),
        "यह उत्तर पूरी तरह से हिंदी में लिखा गया है और काफी लंबा है।",
        true,
    );
    add(
        id,
        json!({"language": "fr"}),
        "This answer is written entirely in English, not in French at all.",
        false,
    );
    add(
        id,
        json!({"language": "de"}),
        "Ceci est une réponse entièrement écrite en français, avec plusieurs phrases.",
        false,
    );
    add(
        id,
        json!({"language": "ru"}),
        "This is English text, not Russian text, with several words in it.",
        false,
    );
    add(
        id,
        json!({"language": "ko"}),
        "これは完全に日本語で書かれた回答で、十分な長さがあります。",
        false,
    );
    add(id, json!({"language": "hi"}), "", false);

    // length_constraints:nth_paragraph_first_word: split on \n\n, count
    // non-blank, nth (1-based, raw list) starts with the word (lowercased,
    // quotes stripped, cut at . , ? ! ' ").
    let id = "length_constraints:nth_paragraph_first_word";
    let k = json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"});
    add(id, k.clone(), "First para.\n\nThen second.", true);
    add(id, k.clone(), "First para.\n\n\"Then,\" she said.", true);
    add(id, k.clone(), "First.\n\nTHEN!", true);
    add(id, k.clone(), "First.\n\n  then's next", true);
    add(id, k.clone(), "First.\n\nThen\n\n", true); // trailing blank part not counted
    add(id, k.clone(), "First para.\n\nNow second.", false);
    add(id, k.clone(), "Only one paragraph. Then more.", false);
    add(id, k.clone(), "A.\n\nThen B.\n\nC.", false); // three paragraphs
    add(id, k.clone(), "\n\nThen first.\n\nSecond.", true); // counts 2, raw index 1
    add(id, k.clone(), "First.\n\n\n\nThen second.", false); // raw index 1 is blank
    add(id, k.clone(), "A.\n\nThenceforth B.", false);

    // length_constraints:number_paragraphs: split on \s?\*\*\*\s?; blank
    // parts allowed only first and last; exactly n.
    let id = "length_constraints:number_paragraphs";
    let k = json!({"num_paragraphs": 3});
    add(id, k.clone(), "One\n***\nTwo\n***\nThree", true);
    add(id, k.clone(), "***\nOne\n***\nTwo\n***\nThree\n***", true);
    add(id, k.clone(), "One***Two***Three", true);
    add(id, k.clone(), "One *** Two *** Three", true);
    add(
        id,
        json!({"num_paragraphs": 1}),
        "Just one paragraph.",
        true,
    );
    add(id, k.clone(), "One\n***\nTwo", false);
    add(id, k.clone(), "One\n***\n\n***\nThree", false); // blank in the middle
    add(id, k.clone(), "One\n\nTwo\n\nThree", false);
    add(id, k.clone(), "One\n* * *\nTwo\n* * *\nThree", false);
    add(id, k.clone(), "A\n***\nB\n***\nC\n***\nD", false);

    // length_constraints:number_sentences: Punkt sentence count.
    let id = "length_constraints:number_sentences";
    let lt = json!({"num_sentences": 3, "relation": "less than"});
    let al = json!({"num_sentences": 3, "relation": "at least"});
    add(id, al.clone(), "One. Two. Three.", true);
    add(id, al.clone(), "Is it? Yes! It is.", true);
    add(id, lt.clone(), "Mr. Smith met Dr. Jones.", true); // abbreviations
    add(id, lt.clone(), "One sentence only.", true);
    add(id, lt.clone(), "It cost 3.50 dollars. Fine.", true);
    add(id, al.clone(), "One. Two.", false);
    add(id, al.clone(), "Mr. Smith met Dr. Jones.", false);
    add(id, lt.clone(), "One. Two. Three.", false);
    add(id, lt.clone(), "A! B? C.", false);
    add(id, al.clone(), "no punctuation at all here", false);

    // length_constraints:number_words: \w+ runs.
    let id = "length_constraints:number_words";
    let lt = json!({"num_words": 5, "relation": "less than"});
    let al = json!({"num_words": 5, "relation": "at least"});
    add(id, al.clone(), "one two three four five", true);
    add(id, al.clone(), "it's a well-known fact", true); // it s a well known fact
    add(id, lt.clone(), "one two three four", true);
    add(id, lt.clone(), "!!! ??? ...", true); // no word at all: 0 < 5
    add(id, lt.clone(), "hello_world is one word", true);
    add(id, lt.clone(), "one two three four five", false);
    add(id, al.clone(), "one two three four", false);
    add(id, al.clone(), "hello_world is one word", false);
    add(id, lt.clone(), "don't won't can't", false); // six runs
    add(id, al.clone(), "1,000,000", false); // three runs

    // punctuation:no_comma.
    let id = "punctuation:no_comma";
    add(id, json!({}), "No commas here.", true);
    add(id, json!({}), "Semicolons; colons: fine.", true);
    add(id, json!({}), "Full-width ，comma only", true);
    add(id, json!({}), "Ideographic 、 is fine", true);
    add(id, json!({}), "1.000.000", true);
    add(id, json!({}), "One, two", false);
    add(id, json!({}), ",", false);
    add(id, json!({}), "1,000", false);
    add(id, json!({}), "end,", false);
    add(id, json!({}), "", false);

    // startend:end_checker: stripped, `"` stripped, lowercased, ends with
    // the phrase (stripped, lowercased).
    let id = "startend:end_checker";
    let k = json!({"end_phrase": "Any other questions?"});
    add(id, k.clone(), "Answer.\nAny other questions?", true);
    add(id, k.clone(), "Answer. any other QUESTIONS?  \n", true);
    add(id, k.clone(), "\"Answer. Any other questions?\"", true);
    add(id, k.clone(), "Any other questions?", true);
    add(id, json!({"end_phrase": " Peace! "}), "Bye. Peace!", true);
    add(id, k.clone(), "Answer. Any other questions? Thanks.", false);
    add(id, k.clone(), "Answer. Any other questions", false);
    add(id, k.clone(), "Answer. Any other questions?*", false);
    add(id, k.clone(), "Answer. 'Any other questions?'", false);
    add(id, k.clone(), "Answer. Any  other questions?", false);

    // startend:quotation: stripped, longer than one character, starts and
    // ends with `"`.
    let id = "startend:quotation";
    add(id, json!({}), "\"Quoted answer.\"", true);
    add(id, json!({}), "  \"x\"  ", true);
    add(id, json!({}), "\"\"", true);
    add(id, json!({}), "\"a\" middle \"b\"", true);
    add(id, json!({}), "\"multi\nline\"", true);
    add(id, json!({}), "\"", false);
    add(id, json!({}), "“Curly quotes”", false);
    add(id, json!({}), "'single'", false);
    add(id, json!({}), "\"unterminated", false);
    add(id, json!({}), "Not quoted", false);
    c
}

/// The case table: every kind has at least 5 passing and 5 failing
/// responses, and each verdict is the one the official rule gives.
#[test]
fn case_table_per_instruction_kind() {
    let cases = cases();
    let mut failures = Vec::new();
    for (id, k, r, want) in &cases {
        let got = follows_instruction(id, k, r).unwrap_or_else(|e| panic!("{id}: {e}"));
        if got != *want {
            failures.push(format!("{id} {k} {r:?}: want {want}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (kind, _) in KINDS {
        let pass = cases.iter().filter(|c| c.0 == *kind && c.3).count();
        let fail = cases.iter().filter(|c| c.0 == *kind && !c.3).count();
        assert!(
            pass >= 5 && fail >= 5,
            "{kind}: {pass} passing, {fail} failing cases"
        );
    }
    assert_eq!(KINDS.len(), 25);
}

/// Bad arguments fail at build, naming the instruction.
#[test]
fn bad_kwargs_are_errors() {
    let e = follows_instruction(
        "keywords:frequency",
        &json!({"keyword": "a", "frequency": 2, "relation": "at most"}),
        "a",
    )
    .unwrap_err();
    assert!(
        e.contains("keywords:frequency") && e.contains("at most"),
        "{e}"
    );
    let e = follows_instruction("no:such", &json!({}), "a").unwrap_err();
    assert!(e.contains("unknown instruction `no:such`"), "{e}");
    let e = follows_instruction(
        "length_constraints:number_words",
        &json!({"relation": "at least"}),
        "a",
    )
    .unwrap_err();
    assert!(e.contains("num_words"), "{e}");
}

/// Loose: a verdict of any of the eight variants (first/last line removed,
/// `*` removed).
#[test]
fn loose_forgives_a_first_line_and_asterisks() {
    let row: bench::dataset::Row = serde_json::from_value(json!({
        "key": 7,
        "prompt": "p",
        "instruction_id_list": ["startend:quotation", "detectable_format:number_bullet_lists"],
        "kwargs": [{"num_bullets": null}, {"num_bullets": 2}],
    }))
    .unwrap();
    let f = ifeval::to_fields(&row).unwrap();
    let s = bench::benchmarks::Sample::from_fields(f, "default", "train", 0);
    // The quotes sit on lines of their own: a line `"* one` is no bullet
    // (the official pattern is `^\s*\*[^\*].*$`).
    let r = "Sure, here it is:\n\"\n* one\n* two\n\"";
    let strict = ifeval::verdicts(&s, r, Mode::Strict);
    let loose = ifeval::verdicts(&s, r, Mode::Loose);
    assert_eq!(
        strict.iter().map(|x| x.1).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(loose.iter().map(|x| x.1).collect::<Vec<_>>(), [true, true]);
}

/// The shared real IFEval parquet, or `None` (the caller skips, loudly).
fn real_file() -> Option<std::path::PathBuf> {
    let shared = std::env::var("BENCH_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let f = shared.join(
        "datasets/hub/datasets/google/IFEval/_refs_convert_parquet/default/train/0000.parquet",
    );
    f.is_file().then_some(f)
}

/// The real data: all 541 rows load (every instruction built from its
/// kwargs), every one of the 25 kinds occurs, grading is deterministic, a
/// blank response follows nothing, and a response written to follow a
/// single-instruction prompt passes strict and loose.
#[test]
fn real_data_loads_and_grades() {
    let test = "real_data_loads_and_grades";
    let Some(path) = real_file() else {
        crate::support::skip(test, "no shared IFEval data", "BENCH_REQUIRE_REAL_DATA");
        return;
    };
    let rows = bench::dataset::read_parquet(&path).unwrap();
    assert_eq!(rows.len(), 541);
    let samples: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let f = ifeval::to_fields(r).unwrap_or_else(|e| panic!("row {i}: {e}"));
            bench::benchmarks::Sample::from_fields(f, "default", "train", i)
        })
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    let mut single_followed = 0;
    for s in &samples {
        let ids: Vec<String> =
            serde_json::from_value(s.metadata["instruction_id_list"].clone()).unwrap();
        kinds.extend(ids.iter().cloned());
        let r = ifeval::follow_all(s);
        let strict = ifeval::verdicts(s, &r, Mode::Strict);
        assert_eq!(strict.len(), ids.len());
        assert_eq!(
            strict,
            ifeval::verdicts(s, &r, Mode::Strict),
            "deterministic"
        );
        let loose = ifeval::verdicts(s, &r, Mode::Loose);
        // Loose is never stricter than strict.
        for (a, b) in strict.iter().zip(&loose) {
            assert!(!a.1 || b.1, "{}: {} strict but not loose", s.index, a.0);
        }
        assert!(
            ifeval::verdicts(s, "  \n", Mode::Loose)
                .iter()
                .all(|v| !v.1)
        );
        let followable = [
            "punctuation:no_comma",
            "detectable_format:title",
            "startend:quotation",
            "startend:end_checker",
            "detectable_content:postscript",
            "change_case:english_lowercase",
        ];
        if ids.len() == 1 && followable.contains(&ids[0].as_str()) {
            assert!(
                strict[0].1,
                "row {}: {r:?} does not follow {}",
                s.index, ids[0]
            );
            single_followed += 1;
        }
    }
    let all: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds.iter().map(String::as_str).collect::<Vec<_>>(), all);
    assert!(single_followed > 50, "{single_followed}");
}

/// End to end on the fixture: a server that follows every instruction of
/// the first items and one that answers blank; the journal keeps both
/// checklists, the report has the four metrics and the per-kind table, and
/// `bench rescore` regrades from the stored responses to the same verdicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_end_to_end_and_rescores() {
    use bench::config::Limit;
    use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
    use tokio_util::sync::CancellationToken;

    let hub = crate::support::start_hub().await;
    let samples: Vec<bench::benchmarks::Sample> = crate::support::fixture_samples()
        .into_iter()
        .filter(|(b, _)| b == "ifeval")
        .map(|(_, s)| s)
        .collect();
    assert_eq!(samples.len(), 24);
    let m = samples.clone();
    // The first item answered in a way that breaks it (a comma), the
    // others followed.
    let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
        let asked = body["messages"]
            .as_array()
            .and_then(|ms| ms.last())
            .and_then(|msg| msg["content"].as_str())
            .unwrap_or_default();
        let s = m.iter().find(|s| s.question == asked);
        match s {
            Some(s) if s.index == 0 => Reply::text("Yes, commas."),
            Some(s) => Reply::text(ifeval::follow_all(s)),
            None => Reply::text("?"),
        }
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let mut cfg = crate::support::config(&server.url(), &hub.url(), &cache, &run, &["ifeval"]);
    cfg.limit = Some(Limit::Count(4));
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let row = |ex: &str| {
        out.report
            .results
            .iter()
            .find(|r| r.benchmark == "ifeval" && r.extractor == ex)
            .unwrap()
            .clone()
    };
    assert!(row("strict").primary);
    assert_eq!((row("strict").stats.correct, row("strict").stats.n), (3, 4));
    assert_eq!(row("loose").stats.n, 4);
    let all = out
        .report
        .instructions
        .iter()
        .find(|r| r.instruction == "all")
        .unwrap();
    assert_eq!(all.n, 4);
    assert_eq!(all.followed[0], ("strict".to_string(), 3));
    let comma = out
        .report
        .instructions
        .iter()
        .find(|r| r.instruction == "punctuation:no_comma")
        .unwrap();
    assert_eq!((comma.n, comma.followed[0].1), (2, 1));
    // The journal holds the checklists.
    let journal = std::fs::read_to_string(run.join("samples/ifeval.jsonl")).unwrap();
    assert!(journal.contains("fail punctuation:no_comma"), "{journal}");
    assert!(journal.contains("pass startend:quotation"), "{journal}");
    // Reports: instruction-level table in markdown and HTML.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("Instruction-level accuracy"), "{md}");
    assert!(md.contains("punctuation:no_comma"), "{md}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Instructions followed"));
    // Rescore from the stored responses: the same verdicts.
    let hubcfg = bench::hub::HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.clone(),
        offline: true,
    };
    let (_, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "native".into(),
        output: None,
        hub: hubcfg,
    })
    .await
    .unwrap();
    assert_eq!(data.instructions, out.report.instructions);
    // Report re-rendered from the record alone: the same rows.
    let again = bench::report::rerender(&run).unwrap();
    assert_eq!(again.instructions, out.report.instructions);
}
