#!/usr/bin/env python3
"""Every public declaration of the verifier modules (Attest, Policy) has a doc comment (house style: say which
TCG structure, command or spec section it maps to). Prints the undocumented ones as file:line and exits 1."""
import os
import re
import sys

DECL = re.compile(r'^(public|open)\s+((static|final|mutating|nonmutating|override|indirect|convenience|private\(set\)|fileprivate\(set\)|internal\(set\))\s+)*'
                  r'(func|var|let|struct|enum|class|init|protocol|typealias|actor|subscript|case)\b')


def undocumented(root):
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith('.swift'):
                continue
            path = os.path.join(folder, name)
            lines = open(path, encoding='utf-8').read().split('\n')
            for i, line in enumerate(lines):
                if not DECL.match(line.strip()):
                    continue
                j = i - 1
                while j >= 0 and lines[j].strip().startswith('@'):
                    j -= 1
                if j >= 0 and (lines[j].strip().startswith('///') or lines[j].strip().endswith('*/')):
                    continue
                yield f"{path}:{i + 1}: {line.strip()[:110]}"


def main():
    roots = sys.argv[1:] or ['Sources/Attest', 'Sources/Policy']
    missing = [m for r in roots for m in undocumented(r)]
    for m in missing:
        print(m)
    if missing:
        print(f"{len(missing)} public declaration(s) without a doc comment", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
