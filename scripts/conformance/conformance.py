"""Run EvalScope, lm-evaluation-harness and bench on the same items against
the same fake model, then diff what each sent and how each graded.

Called by run.sh (which builds the venv and bench); see its header for the
versions and the environment. Exit status: 0 when every paired request and
every paired verdict agree, 1 otherwise, 2 when a tool failed to run.

Pairs checked:
  EvalScope `gsm8k`, `arc` (ARC-Challenge)   vs bench mode `evalscope`
  lm-eval `gsm8k`, `gsm8k_cot_zeroshot`,
          `arc_challenge_chat` (chat turns)  vs bench modes `lm-eval`,
                                                `lm-eval-cot-zeroshot`, `lm-eval`
Requests are compared decoded (messages or prompt, and every generation
parameter except `model`), verdicts per item (and per lm-eval filter).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_model import MODEL, Items, serve  # noqa: E402

GSM8K = "datasets/openai/gsm8k"
ARC = "datasets/allenai/ai2_arc"


def log(msg):
    print(f"[conformance {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_items(hub, limit):
    items = Items()
    gsm = pq.read_table(hub / GSM8K / "main/test-00000-of-00001.parquet").to_pylist()[:limit]
    for r in gsm:
        items.add(r["question"], "gsm8k", r["answer"].split("####")[-1].strip())
    arc = pq.read_table(hub / ARC / "ARC-Challenge/test-00000-of-00001.parquet").to_pylist()[:limit]
    for r in arc:
        labels = r["choices"]["label"]
        letters = "ABCDE"[: len(labels)]
        items.add(r["question"].strip(), "arc", (letters, letters[labels.index(r["answerKey"])]))
    return items


def run(cmd, env, name, out):
    log(f"{name}: running {Path(str(cmd[0])).name}")
    start = time.time()
    with open(out / f"{name}.log", "w") as f:
        rc = subprocess.run([str(c) for c in cmd], env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    log(f"{name}: exit {rc} in {time.time() - start:.0f}s (log: {out / (name + '.log')})")
    if rc != 0:
        sys.exit(2)


def run_evalscope(py, url, hub, limit, out, env):
    work = out / "evalscope"
    script = f"""
from evalscope import TaskConfig, run_task
run_task(TaskConfig(
    model={MODEL!r}, api_url={url + '/evalscope/v1'!r}, api_key='none', eval_type='openai_api',
    datasets=['gsm8k', 'arc'],
    dataset_args={{'gsm8k': {{'dataset_id': {str(hub / GSM8K)!r}}},
                  'arc': {{'dataset_id': {str(hub / ARC)!r}, 'subset_list': ['ARC-Challenge']}}}},
    limit={limit}, eval_batch_size=8, work_dir={str(work)!r}, no_timestamp=True))
"""
    run([py, "-c", script], env, "evalscope", out)
    verdicts = {}
    for bench_name, path in [("gsm8k", "gsm8k_main.jsonl"), ("arc_challenge", "arc_ARC-Challenge.jsonl")]:
        for line in open(work / "reviews" / MODEL / path):
            r = json.loads(line)
            score = r["sample_score"]["score"]
            verdicts[(bench_name, r["index"], "evalscope")] = (
                score["value"].get("accuracy", score["value"].get("acc")) == 1.0,
                score.get("extracted_prediction"),
            )
    return verdicts


def run_lm_eval(venv, url, hub, limit, out, env):
    tasks = out / "lm_eval_tasks"
    tasks.mkdir(exist_ok=True)
    site = Path(subprocess.check_output(
        [venv / "bin/python", "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"], text=True
    ).strip())
    # The real task YAMLs, included unchanged; only the data source is local.
    for name, yaml, data in [
        ("gsm8k", "gsm8k/gsm8k.yaml", GSM8K),
        ("gsm8k_cot_zeroshot", "gsm8k/gsm8k-cot-zeroshot.yaml", GSM8K),
        ("arc_challenge_chat", "arc/arc_challenge_chat.yaml", ARC),
    ]:
        (tasks / f"{name}_local.yaml").write_text(
            f"include: {site / 'tasks' / yaml}\ntask: {name}_local\ndataset_path: {hub / data}\n"
        )
    work = out / "lm_eval"
    run([venv / "bin/lm_eval", "--model", "local-chat-completions", "--model_args",
         f"model={MODEL},base_url={url}/lm-eval/v1/chat/completions,num_concurrent=8,max_retries=1",
         "--tasks", "gsm8k_local,gsm8k_cot_zeroshot_local,arc_challenge_chat_local",
         "--include_path", tasks, "--apply_chat_template", "--fewshot_as_multiturn",
         "--limit", str(limit), "--log_samples", "--output_path", work], env, "lm_eval", out)
    filters = {"remove_whitespace": "exact-match"}
    verdicts = {}
    for path in work.rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        bench_name = {"gsm8k_local": "gsm8k", "gsm8k_cot_zeroshot_local": "gsm8k-zs",
                      "arc_challenge_chat_local": "arc_challenge"}[task]
        for line in open(path):
            r = json.loads(line)
            extractor = filters.get(r["filter"], r["filter"])
            verdicts[(bench_name, r["doc_id"], extractor)] = (r["exact_match"] == 1.0, r["filtered_resps"][0])
    return verdicts


def run_bench(binary, url, hub_url, limit, out, env, tag, modes):
    work = out / tag
    datasets = list(modes)
    args = {name: {"mode": mode} for name, mode in modes.items()}
    env = dict(env, HF_ENDPOINT=hub_url, HF_HUB_OFFLINE="0", HF_HUB_CACHE=str(out / "bench-hf-cache"))
    run([binary, "eval", "--model", MODEL, "--api-url", f"{url}/{tag}/v1", "--datasets", *datasets,
         "--dataset-args", json.dumps(args), "--limit", str(limit), "--output", work, "--concurrency", "8",
         "--no-progress"], env, tag, out)
    verdicts = {}
    for name in datasets:
        for line in open(work / "samples" / f"{name}.jsonl"):
            r = json.loads(line)
            for extractor, ok in r.get("verdicts", {}).items():
                verdicts[(name, r["index"], extractor)] = (ok, (r.get("extracted") or {}).get(extractor))
    return verdicts


def request_key(items, entry):
    from fake_model import last_text

    found = items.find(last_text(entry["body"]))
    return (found[1], found[0]) if found else ("?", last_text(entry["body"])[-80:])


def decoded(body):
    return {k: v for k, v in body.items() if k != "model"}


def diff_requests(items, requests, tool, bench_tag, kinds, out_lines):
    """Pair each tool request with bench's for the same item; count differences."""
    mine = {}
    for e in requests:
        if e["tool"] == bench_tag:
            mine.setdefault(request_key(items, e), []).append(decoded(e["body"]))
    theirs = [e for e in requests if e["tool"] == tool and request_key(items, e)[0] in kinds]
    same = differ = missing = 0
    for e in theirs:
        key = request_key(items, e)
        ours = mine.get(key, [])
        if not ours:
            missing += 1
            out_lines.append(f"  {tool}: no bench request for {key[0]} item {key[1][:60]!r}")
        elif decoded(e["body"]) in ours:
            same += 1
        else:
            differ += 1
            if differ <= 5:
                out_lines.append(f"  {tool} vs {bench_tag} differ on {key[0]} {key[1][:60]!r}:\n"
                                 f"    theirs {json.dumps(decoded(e['body']), ensure_ascii=False)[:600]}\n"
                                 f"    bench  {json.dumps(ours[0], ensure_ascii=False)[:600]}")
    return len(theirs), same, differ, missing


def diff_verdicts(ref, ours, name, out_lines):
    agree = disagree = missing = 0
    for key, (ok, extracted) in sorted(ref.items(), key=str):
        mine = ours.get(key)
        if mine is None:
            missing += 1
            out_lines.append(f"  {name}: bench has no verdict for {key}")
        elif mine[0] == ok:
            agree += 1
        else:
            disagree += 1
            if disagree <= 20:
                out_lines.append(f"  {name} {key}: reference {ok} (extracted {extracted!r}), "
                                 f"bench {mine[0]} (extracted {mine[1]!r})")
    return len(ref), agree, disagree, missing


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", type=Path, required=True)
    p.add_argument("--bench", type=Path, required=True)
    p.add_argument("--hub-url", required=True, help="a fake hub serving --hub (for bench)")
    p.add_argument("--hub", type=Path, required=True, help="datasets in the hub layout")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    items = load_items(a.hub, a.limit)
    requests_log = a.out / "requests.jsonl"
    requests_log.unlink(missing_ok=True)
    server = serve(items, requests_log)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    log(f"fake model at {url}, {a.limit} items per benchmark")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(a.out / "hf-home"),
               OPENAI_API_KEY="none", TOKENIZERS_PARALLELISM="false")

    es = run_evalscope(a.venv / "bin/python", url, a.hub, a.limit, a.out, env)
    lm = run_lm_eval(a.venv, url, a.hub, a.limit, a.out, env)
    b_es = run_bench(a.bench, url, a.hub_url, a.limit, a.out, env, "bench-evalscope",
                     {"gsm8k": "evalscope", "arc_challenge": "evalscope"})
    b_lm = run_bench(a.bench, url, a.hub_url, a.limit, a.out, env, "bench-lm-eval",
                     {"gsm8k": "lm-eval", "arc_challenge": "lm-eval"})
    b_zs = run_bench(a.bench, url, a.hub_url, a.limit, a.out, env, "bench-lm-eval-zs",
                     {"gsm8k": "lm-eval-cot-zeroshot"})
    b_lm.update({("gsm8k-zs", i, e): v for (n, i, e), v in b_zs.items()})

    requests = [json.loads(line) for line in open(requests_log)]
    lines = []
    bad = 0
    report = []
    for tool, tag, kinds in [("evalscope", "bench-evalscope", {"gsm8k", "arc"})]:
        n, same, differ, missing = diff_requests(items, requests, tool, tag, kinds, lines)
        report.append(f"requests {tool} vs {tag}: {n} paired, {same} identical, {differ} differ, {missing} unpaired")
        bad += differ + missing
    # lm-eval's gsm8k and gsm8k_cot_zeroshot ask about the same items: pair
    # each with the bench run of the same task by its prompt shape.
    lm_reqs = [e for e in requests if e["tool"] == "lm-eval"]
    for label, tag, pick in [
        ("gsm8k", "bench-lm-eval",
         lambda e: "Question:" in json.dumps(e["body"]) and "The best answer is" not in json.dumps(e["body"])),
        ("gsm8k_cot_zeroshot", "bench-lm-eval-zs", lambda e: "Let's think step by step." in json.dumps(e["body"])),
        ("arc_challenge_chat", "bench-lm-eval", lambda e: "The best answer is" in json.dumps(e["body"])),
    ]:
        subset = [e for e in lm_reqs if pick(e)] + [e for e in requests if e["tool"] == tag and pick(e)]
        n, same, differ, missing = diff_requests(items, subset, "lm-eval", tag, {"gsm8k", "arc"}, lines)
        report.append(f"requests lm-eval {label} vs {tag}: {n} paired, {same} identical, {differ} differ, "
                      f"{missing} unpaired")
        bad += differ + missing
    for name, ref, ours in [("evalscope", es, b_es), ("lm-eval", lm, b_lm)]:
        n, agree, disagree, missing = diff_verdicts(ref, ours, name, lines)
        right = sum(ok for ok, _ in ref.values())
        report.append(f"verdicts {name} vs bench: {n} paired ({right} right, {n - right} wrong in {name}), "
                      f"{agree} agree, {disagree} differ, {missing} unpaired")
        bad += disagree + missing
    summary = "\n".join(report + lines)
    (a.out / "summary.txt").write_text(summary + "\n")
    print(summary)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
