#!/usr/bin/python3
"""Checks that every README example marked `<!-- example from PATH -->` is still in PATH.

Each line of the example's code block must appear in that file, in order, ignoring indentation
(an example may leave out lines, such as error handling, but never say what the file does not).
Usage: check_readme_examples.py README.md
"""

import pathlib
import re
import sys

MARKER = re.compile(r"<!-- example from (\S+) -->\n```\w*\n(.*?)```", re.S)


def main(readme_path):
    readme = pathlib.Path(readme_path)
    root = readme.parent
    examples = MARKER.findall(readme.read_text())
    failed = 0
    for path, block in examples:
        source = [line.strip() for line in (root / path).read_text().splitlines()]
        position = 0
        for line in (l.strip() for l in block.splitlines() if l.strip()):
            try:
                position = source.index(line, position) + 1
            except ValueError:
                print(f"{readme_path}: example from {path}: not there (in order): {line}")
                failed += 1
                break
    print(f"{len(examples) - failed} passed, {failed} failed")
    return 1 if failed or not examples else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
