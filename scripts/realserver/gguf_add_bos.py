#!/usr/bin/env python3
"""Copy a GGUF with `tokenizer.ggml.add_bos_token` set to true.

The real-server loglikelihood test (tests/it/realserver.rs) needs the tiny
random model of ../shared/realserver in a variant that adds BOS:
llama-cpp-python 0.3 echoes prompt log-probabilities one token late for a
model that adds none (see README, "Loglikelihood scoring"), so only the BOS
variant can be compared with bench's in-process engine. Everything else in
the file is unchanged (the flag is one byte, set in place through gguf's
GGUFReader in r+ mode, as gguf's own gguf_set_metadata.py does).

usage: gguf_add_bos.py IN.gguf OUT.gguf   (run with a Python that has `gguf`)
"""
import os
import shutil
import sys

import gguf


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    reader = gguf.GGUFReader(tmp, "r+")
    field = reader.fields.get("tokenizer.ggml.add_bos_token")
    if field is None or field.types != [gguf.GGUFValueType.BOOL]:
        print(f"{src}: no boolean tokenizer.ggml.add_bos_token to set", file=sys.stderr)
        os.remove(tmp)
        return 1
    field.parts[field.data[0]][0] = 1
    del reader
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
