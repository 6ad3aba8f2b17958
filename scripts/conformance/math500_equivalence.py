"""Check the MATH-500 equivalence case table against the real libraries.

    python math500_equivalence.py evalscope   # in a venv with math-verify[antlr4_13_2]==0.9.0
    python math500_equivalence.py lm-eval --minerva-utils PATH/TO/lm_eval/tasks/minerva_math/utils.py
                                              # in a venv with sympy and antlr4-python3-runtime==4.11

Reads fixtures/math500/equivalence_cases.tsv (gold, answer, evalscope, native, lm-eval, note) and prints
every row where the real library's verdict differs from the table's column. Exit 0 when none differ.

`evalscope` follows EvalScope 1.14.1's metrics/math/parser.py as src/extract/math_verify.rs describes it:
the response "The answer is $\\boxed{ANSWER}$." goes through `_parse(text, fragment=False)` (Math-Verify
parse with LaTeX extraction (boxed first) and expression extraction, first_match), its display string is
then compared with the gold by `compare_answers` (both parsed as fragments, verify strict=True,
float_rounding=6, numeric_precision=15).

`lm-eval` imports lm-eval's own minerva_math utils.py (with `datasets` and `math_verify` stubbed, which
its exact_match path does not use) and runs process_results' exact_match path: get_unnormalized_answer,
normalize_final_answer, is_equiv against normalize_final_answer(remove_boxed(last_boxed_only_string(
"\\boxed{GOLD}"))). lm-eval 0.4.13's is_equiv (and bench's) accepts equal non-empty normalised
strings before parsing; with an older utils.py lacking that line, rows where only that rule makes
bench's verdict 1 are reported apart as "string-equal rescue".
"""

import argparse
import importlib.util
import re
import sys
import types
from pathlib import Path

TABLE = Path(__file__).resolve().parents[2] / "fixtures/math500/equivalence_cases.tsv"


def rows():
    for line in TABLE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        gold, answer, es, native, lm, note = line.split("\t")
        yield gold, answer, int(es), int(native), int(lm), note


def evalscope():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    sci = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+$")

    def _parse(text, fragment):
        text = text.strip()
        if not text:
            return [], ""
        scientific = bool(sci.match(text))
        inp = f"${text.replace('e', 'E')}$" if scientific else text
        if fragment and not inp.startswith(("$", "\\(", "\\[", "\\boxed", "\\fbox")):
            inp = f"${inp}$"
        parsed = parse(inp, extraction_config=config, extraction_mode="first_match", fallback_mode="first_match")
        display = text if scientific else (str(parsed[-1]) if parsed else "")
        return parsed, display

    def compare(pred, gold):
        g, _ = _parse(gold, True)
        p, _ = _parse(pred, True)
        if not g or not p:
            return False
        return verify(g, p, strict=True, float_rounding=6, numeric_precision=15)

    bad = 0
    for gold, answer, want, *_ in rows():
        _, display = _parse(f"The answer is $\\boxed{{{answer}}}$.", False)
        got = int(bool(display) and compare(display, gold))
        if got != want:
            bad += 1
            print(f"DIFF evalscope gold={gold!r} answer={answer!r} display={display!r}: table {want}, math-verify {got}")
    return bad


def lm_eval(utils_path):
    ds = types.ModuleType("datasets")
    ds.Dataset = object
    sys.modules.setdefault("datasets", ds)
    mv = types.ModuleType("math_verify")
    mv.parse = mv.verify = lambda *a, **k: None
    sys.modules["math_verify"] = mv
    spec = importlib.util.spec_from_file_location("minerva_utils", utils_path)
    u = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(u)
    bad = 0
    for gold, answer, _, _, want, note in rows():
        g = u.normalize_final_answer(u.remove_boxed(u.last_boxed_only_string(f"\\boxed{{{gold}}}")))
        text = f"So.\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
        p = u.normalize_final_answer(u.get_unnormalized_answer(text))
        real = int(u.is_equiv(p, g))
        ours = int(real or p == g)
        if ours != want:
            bad += 1
            print(f"DIFF lm-eval gold={gold!r} answer={answer!r} -> {p!r} vs {g!r}: table {want}, minerva {real}")
        elif real != ours:
            print(f"string-equal rescue: gold={gold!r} answer={answer!r} ({p!r}): lm-eval 0, bench 1")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["evalscope", "lm-eval"])
    ap.add_argument("--minerva-utils")
    a = ap.parse_args()
    bad = evalscope() if a.tool == "evalscope" else lm_eval(a.minerva_utils)
    n = sum(1 for _ in rows())
    print(f"{a.tool}: {n - bad}/{n} rows agree")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
