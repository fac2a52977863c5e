#!/usr/bin/env python3
"""The longest C++ function definitions under some folders, in lines (signature to closing brace).

    python3 tools/code/function_lengths.py convnextv2 launcher   # the ten longest
    python3 tools/code/function_lengths.py --top 20 convnextv2/run convnextv2/train
    python3 tools/code/function_lengths.py --max 80 convnextv2 launcher   # exit 1 if any is longer

Counts definitions in .cc, .cpp, .cu and .h files at file or namespace scope (free functions and
out-of-class member functions) and inside class, struct and union bodies (methods defined in the
class, named Class::method), by brace matching with string literals, character literals and
comments removed. A lambda counts as part of the function that contains it; one at namespace or
class scope (`auto f = [] {...};`, a member initializer) is not a function definition. Assumes
Google style layout: a definition's signature starts on its own line and namespace braces are
`namespace x {` ... `}  // namespace x`.
"""
import argparse
import os
import re
import sys

_STRINGS = re.compile(r'R"(\w*)\((?:.|\n)*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_COMMENTS = re.compile(r'//[^\n]*|/\*(?:.|\n)*?\*/')
_NAMESPACE_BRACES = re.compile(
    r'^[ \t]*(?:(?:inline[ \t]+)?namespace[\w:\s]*\{[ \t]*|\}[ \t]*//[ \t]*namespace\b[^\n]*)$', re.M)
_TEMPLATE_PREFIX = re.compile(r'^template\s*<[^{]*?>\s*(?=\w)')
_CLASS_HEAD = re.compile(r'^(?:struct|class|union)\b(?:\s+alignas\s*\([^)]*\))?\s*(\w*)')
_NOT_FUNCTIONS = re.compile(r'^(namespace|enum|extern|typedef|using)\b')
_ACCESS = re.compile(r'^\s*(public|private|protected)\s*:\s*$')


def _blank(match):
    # Keep the line count: replace everything but newlines.
    return re.sub(r'[^\n]', ' ', match.group(0))


def _is_function(signature):
    """Whether the text before a scope's '{' declares a function (not a variable or a type)."""
    head = signature.split('{')[0]
    if '(' not in head or _NOT_FUNCTIONS.match(head):
        return False
    # `auto f = [] {`, `std::function<int()> f_ = [] {`: an initializer, not a definition; an
    # `=` inside parentheses is a default argument, and operator= and operator== are definitions.
    outside_parens = head
    while True:
        inner = re.sub(r'\([^()]*\)', '', outside_parens)
        if inner == outside_parens:
            break
        outside_parens = inner
    return '=' not in re.sub(r'operator\s*[^\s(]+', '', outside_parens)


def functions(path):
    """(lines, name, path, first line) of every function definition in one source file."""
    text = open(path, encoding='utf-8', errors='replace').read()
    text = _NAMESPACE_BRACES.sub(_blank, text)
    text = _COMMENTS.sub(_blank, _STRINGS.sub(_blank, text))
    lines = text.split('\n')
    found = []
    depth = 0
    # Depths at which a definition can start: file scope and the bodies of classes, with the
    # class's qualified name ('' at file scope).
    scopes = {0: ''}
    start = None  # first line of the declaration being read at a scope in `scopes`
    body = None  # (first line, depth, name) of the function being read
    for number, line in enumerate(lines):
        stripped = line.strip()
        at_scope = body is None and depth in scopes
        if at_scope:
            if not stripped or stripped.startswith('#') or _ACCESS.match(line):
                start = None
            elif start is None:
                start = number
        opens, closes = line.count('{'), line.count('}')
        if at_scope and opens > closes and start is not None:
            signature = ' '.join(l.strip() for l in lines[start:number + 1])
            signature = _TEMPLATE_PREFIX.sub('', signature)
            owner = scopes[depth]
            class_head = _CLASS_HEAD.match(signature)
            if class_head:
                name = class_head.group(1) or '(anonymous)'
                scopes[depth + 1] = f'{owner}::{name}' if owner else name
            elif _is_function(signature):
                names = re.findall(r'(operator\s*[^\s(]+|[~\w:]+)\s*\(', signature.split('{')[0])
                name = names[0] if names else '?'
                body = (start, depth, f'{owner}::{name}' if owner else name)
            start = None
        depth += opens - closes
        for d in [d for d in scopes if d > depth]:
            del scopes[d]
        if body is not None and depth <= body[1]:
            found.append((number - body[0] + 1, body[2], path, body[0] + 1))
            body = None
            start = None
        elif at_scope and stripped.endswith((';', '}', '{')):
            start = None
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--top', type=int, default=10, help='how many to list (default 10)')
    parser.add_argument('--max', type=int, default=0,
                        help='exit with status 1 when a function is longer than this')
    parser.add_argument('roots', nargs='+', help='folders or files')
    args = parser.parse_args()
    all_functions = []
    for root in args.roots:
        if not os.path.exists(root):
            sys.exit(f'function_lengths: {root}: no such file or folder')
        paths = [root] if os.path.isfile(root) else [
            os.path.join(folder, f) for folder, _, files in sorted(os.walk(root))
            for f in sorted(files)]
        for path in paths:
            if path.endswith(('.cc', '.cpp', '.cu', '.h')):
                all_functions.extend(functions(path))
    all_functions.sort(key=lambda f: (-f[0], f[2], f[3]))
    for lines, name, path, line in all_functions[:args.top]:
        print(f'{lines:5d}  {name}  {path}:{line}')
    limit = args.max or 80
    longer = sum(1 for f in all_functions if f[0] > limit)
    print(f'{len(all_functions)} functions; {longer} longer than {limit} lines')
    if args.max and longer:
        sys.exit(1)


if __name__ == '__main__':
    main()
