#!/usr/bin/env python3
"""The longest C++ function definitions under some folders, in lines (signature to closing brace).

    python3 tools/code/function_lengths.py convnextv2            # the ten longest
    python3 tools/code/function_lengths.py --top 20 convnextv2/run convnextv2/train

Counts definitions that start at column 0 in .cc files (free functions and out-of-class member
functions, lambdas included in their function), by brace matching with string literals, character
literals and comments removed. Functions defined inside class bodies are not counted.
"""
import argparse
import os
import re
import sys

_STRINGS = re.compile(r'R"(\w*)\((?:.|\n)*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_COMMENTS = re.compile(r'//[^\n]*|/\*(?:.|\n)*?\*/')
_NAMESPACE_BRACES = re.compile(r'^(?:namespace[\w:\s]*\{[ \t]*|\}[ \t]*//[ \t]*namespace\b[^\n]*)$', re.M)
_NOT_FUNCTIONS = re.compile(r'^(namespace|struct|class|enum|union|extern|typedef|using|template\s*<[^>]*>\s*(struct|class))\b')


def _blank(match):
    # Keep the line count: replace everything but newlines.
    return re.sub(r'[^\n]', ' ', match.group(0))


def functions(path):
    text = open(path, encoding='utf-8', errors='replace').read()
    # Namespace braces (opened on their own line, closed with the usual "}  // namespace") do not
    # nest functions.
    text = _NAMESPACE_BRACES.sub(_blank, text)
    text = _COMMENTS.sub(_blank, _STRINGS.sub(_blank, text))
    lines = text.split('\n')
    found = []
    depth = 0
    start = None  # first line of a candidate signature at column 0
    body_start = None
    for number, line in enumerate(lines):
        if depth == 0 and body_start is None:
            if line and not line[0].isspace() and not line.startswith('#') and line.strip():
                if start is None or lines[number - 1].rstrip().endswith((';', '}')):
                    start = number
            if not line.strip() or line.startswith('#'):
                start = None
        opens, closes = line.count('{'), line.count('}')
        if depth == 0 and opens > closes and start is not None and body_start is None:
            signature = ' '.join(l.strip() for l in lines[start:number + 1])
            if '(' in signature and not _NOT_FUNCTIONS.match(signature) and '=' not in signature.split('(')[0]:
                body_start = start
        depth += opens - closes
        if depth == 0 and body_start is not None:
            signature = ' '.join(l.strip() for l in lines[body_start:number + 1])
            name = re.findall(r'([~\w:]+)\s*\(', signature.split('{')[0])
            found.append((number - body_start + 1, name[0] if name else '?', path, body_start + 1))
            body_start = None
            start = None
        elif depth == 0 and line.strip().endswith((';', '}')):
            start = None
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--top', type=int, default=10)
    parser.add_argument('roots', nargs='+')
    args = parser.parse_args()
    all_functions = []
    for root in args.roots:
        if not os.path.exists(root):
            sys.exit(f'function_lengths: {root}: no such file or folder')
        for folder, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith(('.cc', '.cpp', '.cu')):
                    all_functions.extend(functions(os.path.join(folder, f)))
    all_functions.sort(key=lambda f: (-f[0], f[2], f[3]))
    for lines, name, path, line in all_functions[:args.top]:
        print(f'{lines:5d}  {name}  {path}:{line}')
    print(f'{len(all_functions)} functions; {sum(1 for f in all_functions if f[0] > 80)} longer than 80 lines')


if __name__ == '__main__':
    main()
