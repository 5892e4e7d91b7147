"""How the deploy checks end: the problems found, one a line on stderr, and exit status 1; or
the success line and 0. Shared by validate_manifests.py and mutants.py."""

from __future__ import annotations

import sys


def finish(problems: list[str], heading: str, ok: str) -> int:
    """Prints `N heading:` and each problem, returning 1; with none, prints `ok`, returning 0."""
    if problems:
        print(f"{len(problems)} {heading}:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(ok)
    return 0
