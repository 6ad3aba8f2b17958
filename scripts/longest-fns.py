#!/usr/bin/env python3
"""The longest functions in src/: name, file:line and length in lines (from
the `fn` line to its closing brace, found by brace depth with strings, chars
and comments skipped). Usage: scripts/longest-fns.py [N] (default 10)."""
import os, re, sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)')


def strip(line, state):
    """`line` without string/char/comment contents; `state` carries an open
    block comment or raw/plain string across lines."""
    out, i = [], 0
    while i < len(line):
        if state['block']:
            j = line.find('*/', i)
            if j < 0:
                return ''.join(out)
            state['block'] = False
            i = j + 2
            continue
        if state['str'] is not None:
            end = state['str']
            if end == '"':
                if line[i] == '\\':
                    i += 2
                    continue
                if line[i] == '"':
                    state['str'] = None
                i += 1
                continue
            j = line.find(end, i)
            if j < 0:
                return ''.join(out)
            state['str'] = None
            i = j + len(end)
            continue
        c = line[i]
        if line.startswith('//', i):
            break
        if line.startswith('/*', i):
            state['block'] = True
            i += 2
            continue
        m = re.match(r'b?r(#*)"', line[i:])
        if m and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == '_')):
            state['str'] = '"' + m.group(1)
            i += len(m.group(0))
            continue
        if c == '"':
            state['str'] = '"'
            i += 1
            continue
        m = re.match(r"'(\\.|[^\\'])'", line[i:]) or re.match(r"'\\u\{[0-9a-fA-F]+\}'", line[i:])
        if m:
            i += len(m.group(0))
            continue
        out.append(c)
        i += 1
    return ''.join(out)


def functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    state = {'block': False, 'str': None}
    code = [strip(l, state) for l in lines]
    found = []
    for n, l in enumerate(code):
        m = FN.match(l)
        if not m:
            continue
        depth, started = 0, False
        for k in range(n, len(code)):
            for c in code[k]:
                if c == '{':
                    depth += 1
                    started = True
                elif c == '}':
                    depth -= 1
                elif c == ';' and not started and depth == 0:
                    break  # a declaration without a body
            else:
                if started and depth == 0:
                    found.append((k - n + 1, m.group(6), f'{path}:{n + 1}'))
                    break
                continue
            break
    return found


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    os.chdir(root)
    allf = []
    for d, _, files in os.walk('src'):
        for f in files:
            if f.endswith('.rs'):
                allf += functions(os.path.join(d, f))
    for length, name, where in sorted(allf, reverse=True)[:top]:
        print(f'{length:5}  {name:32} {where}')


main()
