#!/usr/bin/env python3
"""Fails when a module of a crate imports from a sibling that imports it back.

For each crate's `src/`, every `crate::a::b` and `super::x` path in a file is an edge from the
file's module to the module it names, at depth 1 (`a`) and depth 2 (`a::b`); parent/child
edges are not circles (a `mod.rs` declares its children). A strongly connected component of
more than one module is a circle. Test modules (`#[cfg(test)] mod tests { … }`) and binaries
are left out. Usage: scripts/check-import-circles.py shared workers ingress
"""
import os
import re
import sys


def module_path(root, path):
    parts = os.path.relpath(path, root)[:-3].split(os.sep)
    return parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts


def edges_of(root, depth):
    edges = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(".rs") or f"{os.sep}bin{os.sep}" in path:
                continue
            module = module_path(root, path)
            source = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", open(path).read(), flags=re.S)
            me = tuple(module[:depth])
            targets = [tuple(x for x in m.groups() if x)[:depth]
                       for m in re.finditer(r"\bcrate::([a-z_]+)(?:::([a-z_]+))?", source)]
            parent = module[:-1]
            targets += [tuple(parent + [m.group(1)])[:depth] for m in re.finditer(r"\bsuper::([a-z_]+)", source)]
            for target in targets:
                related = target[:len(me)] == me or me[:len(target)] == target
                if target and not related:
                    edges.setdefault(me, set()).add(target)
    return edges


def circles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10_000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return found


failed = False
for crate in sys.argv[1:]:
    for depth in (1, 2):
        for component in circles(edges_of(os.path.join(crate, "src"), depth)):
            failed = True
            print(f"{crate}: import circle: " + " <-> ".join("::".join(m) for m in component))
if failed:
    sys.exit(1)
print(f"no import circles in {', '.join(sys.argv[1:])}")
