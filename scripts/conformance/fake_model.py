"""A fake OpenAI-compatible server for the conformance check.

Every tool gets its own URL prefix (`/evalscope/v1`, `/lm-eval/v1`, `/bench/v1`),
so the requests each one sends are recorded apart. The reply is a pure
function of the evaluated item (found by its question text in the last user
turn or the prompt) and never of the tool, so all tools grade the same
responses. Styles vary by item: boxed, "the answer is", markdown, units,
percent, commas, several boxes, distracting numbers, no answer at all.
"""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"

GSM8K_STYLES = [
    "Let me think. The total is {x}.\nThe answer is \\boxed{{{x}}}.",
    "Therefore, the answer is {x}. (We checked 5 times.)",
    "The answer is {x} apples.",
    "{n} people think that horse #{x} will win the big race.",
    "$\\boxed{{{x}.0\\%}}$",
    "$\\boxed{{{x}\\%}}$",
    "\\boxed{{7}} no wait \\boxed{{{x}}}",
    "Step by step: {n} + 1 = {m}.\n#### {x}",
    "So she has **{x}** left.",
    "The final answer is ${x}$. I hope it is correct.",
    "ANSWER: {xc}",
    "It costs ${xc}.00 in total.",
    "We get $x = {x}$.",
    "\\[\n\\boxed{{{x}}}\n\\]",
    "The answer is {x}",
    "I am not sure how to solve this.",
    "First {n}, then {m}; finally {x}.",
    "Final Answer: The final answer is {x}. I hope it is correct.",
    "The answer is $\\frac{{{x2}}}{{2}}$.",
    "The answer is {x}.\n\nThe answer is {x}.",
    "<think>\nmaybe {n}\n</think>\nTherefore the final answer is \\boxed{{{x}}}.",
    "The final answer is ${x}\\,000$. I hope it is correct.",
    "Answer: \\sqrt{{{xx}}}.",
    "The answer is ({x})\n\nDone.",
    "Total: {x}\\% .",
    "So the total is \\boxed{{{x} \\text{{ dollars}}}}.",
    "{n} + {m} = {x} cm^2",
    "answer {x}.0 (rounded)",
    "$\\boxed{{{x}}}$ and $\\boxed{{{x}}}$",
]

ARC_STYLES = [
    "ANSWER: {l}",
    "The answer is ({l}).",
    " {l}",
    " {l}.",
    "I think it is {l}.",
    "ANSWER: [LETTER]\nANSWER: {l}",
    "**Answer:** {l}",
    "answer: {low}",
    "None of these.",
]


def _roll(text, salt=""):
    return int(hashlib.sha256((salt + text).encode()).hexdigest()[:12], 16)


class Items:
    """The evaluated items, looked up by question text."""

    def __init__(self):
        self.items = []  # (question, kind, gold)

    def add(self, question, kind, gold):
        self.items.append((question, kind, gold))

    def find(self, text):
        # The longest question contained in the text: the query is always
        # the last one, and shots are train rows, not test rows.
        best = None
        for q, kind, gold in self.items:
            if q and q in text and (best is None or len(q) > len(best[0])):
                best = (q, kind, gold)
        return best


def reply_for(items, text):
    found = items.find(text)
    if found is None:
        return "I cannot tell."
    question, kind, gold = found
    r = _roll(question)
    if kind == "gsm8k":
        x = int(gold.replace(",", "")) if gold.lstrip("-").replace(",", "").isdigit() else 0
        if r % 5 == 0:
            x += 1  # a wrong answer now and then
        style = GSM8K_STYLES[(r // 5) % len(GSM8K_STYLES)]
        n = r % 97 + 2
        return style.format(x=x, xc=f"{x:,}", n=n, m=n + 1, x2=2 * x, xx=x * x)
    letters, gold_letter = gold
    letter = gold_letter if r % 4 else letters[(r // 4) % len(letters)]
    style = ARC_STYLES[(r // 16) % len(ARC_STYLES)]
    return style.format(l=letter, low=letter.lower())


def last_text(body):
    if "messages" in body:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        content = users[-1]["content"] if users else ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content)
        return content
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else "".join(prompt)


def serve(items, log_path):
    """Start the server on 127.0.0.1 (port chosen by the OS); returns it."""
    lock = threading.Lock()
    log = open(log_path, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, obj):
            data = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.endswith("/v1/models"):
                self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]})
            else:
                self.send_error(404)

        def do_POST(self):
            tool = self.path.strip("/").split("/")[0]
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            text = reply_for(items, last_text(body))
            with lock:
                log.write(json.dumps({"tool": tool, "path": self.path, "body": body}, ensure_ascii=False) + "\n")
                log.flush()
            usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
            if self.path.endswith("/chat/completions"):
                self._send({
                    "id": "x", "object": "chat.completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": usage,
                })
            elif self.path.endswith("/completions"):
                self._send({
                    "id": "x", "object": "text_completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}],
                    "usage": usage,
                })
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
