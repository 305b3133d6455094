"""Rebuild the table of the Fromage authors' runs (``trust/experiments/shared/authors_runs.json``) from a local
clone of their repository at commit 4a6593b (docs/theory.md §5.1, §5.2; licence CC BY-NC-SA 4.0: the table holds
numbers computed from their logs, not their files).

    git clone https://github.com/jxbz/fromage && git -C fromage checkout 4a6593b
    python scripts/authors_table.py --repo fromage      # or set TRUST_AUTHORS_DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trust.base import store
from trust.base.errors import TrustError
from trust.experiments.shared import authors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default="", help=f"the clone (default: ${authors.ENVIRONMENT})")
    parser.add_argument("--out", default=str(authors.TABLE), help="where the table goes")
    args = parser.parse_args(argv)
    try:
        built = authors.build(authors.locate(args.repo or None))
    except TrustError as err:
        print(f"authors_table: error: {err}", file=sys.stderr)
        return 2
    store.write_text(Path(args.out), authors.dumps(built))
    print(
        f"{len(built['figure3']['rows'])} Figure-3 logs and {len(built['figure1']['rows'])} Figure-1 runs → {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
