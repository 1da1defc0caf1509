#!/usr/bin/env python3
"""The structure rules that `make test` holds (docs/architecture.md):

1. no import cycles between the files of shared/src;
2. each layer of shared/src imports only its own layer and those below it;
3. nothing outside shared/src/aws names an AWS SDK type (the functions' `main`s
   call `aws::wiring`, the CLI `aws::wiring` and `aws::provision`);
4. no source file over 800 lines (tests excepted).

It reads the code's own `use` lines and paths; test modules (`#[cfg(test)]`, tests.rs,
test_support.rs) are left out. Exit status 1 names every breach."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, 'shared', 'src')
MAX_LINES = 800

# Lowest first: a file may import its own layer and every layer before it.
LAYERS = [
    ('error', 'clock', 'stack', 'telemetry', 'metrics'),
    ('codec',),
    ('model',),
    ('rows',),
    ('ports',),
    ('notify',),
    ('discover', 'process'),
    ('operate',),
    ('aws',),
]
SDK = re.compile(r'\b(aws_sdk_\w+|aws_smithy_\w+|aws_config|aws_types|aws_credential_types)::')
# Where a front end may name the SDK: nowhere; it builds its clients through aws::wiring.
SDK_ALLOWED = ('shared/src/aws/',)


def is_test_file(rel):
    base = os.path.basename(rel)
    return base in ('tests.rs', 'test_support.rs') or '/tests/' in rel or rel.startswith('tests/')


def strip_tests(text):
    """The text without comments and `#[cfg(test)]` items."""
    text = re.sub(r'//[^\n]*', '', text)
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{', text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {'{': 1, '}': -1}.get(text[j], 0)
            j += 1
        out.append(text[i:m.start()])
        i = j
    out.append(text[i:])
    text = ''.join(out)
    return re.sub(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;', '', text)


def module_of(rel):
    parts = rel[:-3].split('/')
    if parts[-1] in ('mod', 'lib'):
        parts = parts[:-1]
    return tuple(parts)


def files():
    out = {}
    for d, _, fs in os.walk(SRC):
        for f in fs:
            if f.endswith('.rs'):
                rel = os.path.relpath(os.path.join(d, f), SRC)
                if not is_test_file(rel):
                    out[module_of(rel)] = rel
    return out


def use_paths(tree, prefix=()):
    """Expand a use tree ("a::{b, c::d as e}") into full paths."""
    tree = tree.strip()
    if not tree:
        return []
    depth, parts, cur = 0, [], ''
    m = re.match(r'^(.*?)\{(.*)\}$', tree, re.S)
    if m:
        head = tuple(s for s in m.group(1).split('::') if s.strip())
        inner, items = m.group(2), []
        for ch in inner:
            if ch == ',' and depth == 0:
                items.append(cur)
                cur = ''
                continue
            depth += {'{': 1, '}': -1}.get(ch, 0)
            cur += ch
        items.append(cur)
        out = []
        for it in items:
            out += use_paths(it, prefix + tuple(h.strip() for h in head))
        return out
    path = re.sub(r'\s+as\s+\w+$', '', tree)
    segs = tuple(s.strip() for s in path.split('::') if s.strip())
    return [prefix + segs]


def resolve(mods, here, path):
    """The module a path names, from the file of module `here`; None if outside."""
    if not path:
        return None
    if path[0] == 'crate':
        base, rest = (), path[1:]
    elif path[0] == 'super':
        base, rest = here, path
        while rest and rest[0] == 'super':
            base, rest = base[:-1], rest[1:]
    elif path[0] == 'self':
        base, rest = here, path[1:]
    elif here + (path[0],) in mods:
        base, rest = here, path
    else:
        return None
    best, cur = base, base
    for s in rest:
        cur = cur + (s,)
        if cur in mods:
            best = cur
        else:
            break
    # The first name after the module: the item it names (or the next module down).
    name = rest[len(best) - len(base):]
    return best, (name[0] if name else None)


def main():
    return self_test() if sys.argv[1:] == ['--self-test'] else check()


def check():
    mods = files()
    texts = {m: strip_tests(open(os.path.join(SRC, rel)).read()) for m, rel in mods.items()}
    # Names a face file hands on: `pub use child::X` -> X lives in child.
    reexports = {}
    for m, t in texts.items():
        table = {}
        for u in re.finditer(r'pub\s+use\s+([^;]+);', t):
            for p in use_paths(u.group(1)):
                r = resolve(mods, m, p)
                if r and r[0] != m:
                    table[p[-1]] = r[0]
        reexports[m] = table
    edges = {m: {} for m in mods}
    for m, t in texts.items():
        paths = []
        for u in re.finditer(r'\buse\s+([^;]+);', t):
            paths += use_paths(u.group(1))
        for p in re.finditer(r'\b((?:crate|super|self)(?:::\w+)+)', t):
            paths.append(tuple(p.group(1).split('::')))
        for p in paths:
            r = resolve(mods, m, p)
            if not r:
                continue
            target, name = r
            target = reexports.get(target, {}).get(name, target)
            if target != m and target != ():
                edges[m].setdefault(target, set()).add(name or '*')
    problems = []
    # 1. cycles (Tarjan over the file graph)
    index, low, stack, on, sccs = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(scc)
    for v in mods:
        if v not in index:
            visit(v)
    for scc in sccs:
        ties = [f"{mods[a]} -> {mods[b]} ({', '.join(sorted(edges[a][b]))})"
                for a in scc for b in edges[a] if b in scc]
        problems.append('import cycle: ' + '; '.join(sorted(ties)))
    # 2. layers
    rank = {name: i for i, names in enumerate(LAYERS) for name in names}
    for a, targets in edges.items():
        if not a:
            continue
        for b in targets:
            if b and rank.get(b[0], 0) > rank.get(a[0], 0):
                problems.append(f"layer: {mods[a]} ({a[0]}) imports {mods[b]} ({b[0]}), a layer above it")
    # 3 and 4 over the whole workspace's sources
    for top in ('shared/src', 'cli/src', 'functions', 'bench/src'):
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            for f in fs:
                if not f.endswith('.rs'):
                    continue
                rel = os.path.relpath(os.path.join(d, f), ROOT)
                if is_test_file(rel.split('/', 2)[-1]) or '/tests/' in rel:
                    continue
                raw = open(os.path.join(ROOT, rel)).read()
                n = raw.count('\n')
                if n > MAX_LINES:
                    problems.append(f"size: {rel} has {n} lines (at most {MAX_LINES})")
                if not rel.startswith(SDK_ALLOWED):
                    for m in SDK.finditer(strip_tests(raw)):
                        problems.append(f"sdk: {rel} names {m.group(1)} (only shared/src/aws may)")
                        break
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} structure rule(s) broken (docs/architecture.md)", file=sys.stderr)
        return 1
    print(f"structure: {len(mods)} files, no cycles, layers kept, SDK types only in aws/, none over {MAX_LINES} lines")
    return 0


def self_test():
    """Each rule fails on a small tree that breaks it (so the check can fail)."""
    import io
    import tempfile
    from contextlib import redirect_stdout
    global ROOT, SRC
    with tempfile.TemporaryDirectory() as d:
        files_ = {
            'shared/src/lib.rs': 'pub mod model;\npub mod process;\npub mod codec;\n',
            'shared/src/model/mod.rs': 'pub mod a;\npub mod b;\n',
            'shared/src/model/a.rs': 'use crate::model::b::B;\nuse crate::process::P;\npub struct A;\n',
            'shared/src/model/b.rs': 'use super::a::A;\npub struct B;\n',
            'shared/src/process/mod.rs': 'pub struct P;\n',
            'shared/src/codec/mod.rs': '#[cfg(test)]\nmod tests {\n    use crate::model::a::A;\n}\n',
            'cli/src/main.rs': 'fn main() { let _ = aws_sdk_sqs::Client::new; }\n' + '//\n' * 801,
        }
        for rel, text in files_.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            open(os.path.join(d, rel), 'w').write(text)
        ROOT, SRC = d, os.path.join(d, 'shared', 'src')
        out = io.StringIO()
        with redirect_stdout(out):
            status = check()
        text = out.getvalue()
    expected = [
        'import cycle: model/a.rs -> model/b.rs (B); model/b.rs -> model/a.rs (A)',
        'layer: model/a.rs (model) imports process/mod.rs (process), a layer above it',
        'size: cli/src/main.rs has 802 lines',
        'sdk: cli/src/main.rs names aws_sdk_sqs',
    ]
    missing = [e for e in expected if e not in text]
    # A test module's imports are not the layer's: codec's test may use model.
    wrong = [line for line in text.splitlines() if line.startswith('layer: codec')]
    if status != 1 or missing or wrong:
        print(f"structure self-test failed: status {status}, missing {missing}, wrong {wrong}\n{text}")
        return 1
    print('structure self-test: every rule fails on a tree that breaks it')
    return 0


if __name__ == '__main__':
    sys.exit(main())
