"""``python -m proofs_checks``: run every check, print the table; exit 1 if a check FAILED or a negative control
was not rejected."""

import sys
from collections import Counter

from proofs_checks import markdown_table, run_all


def main() -> int:
    results = run_all()
    print(markdown_table(results))
    verdicts = Counter(r.verdict for r in results)
    bad = [r.name for r in results if not r.ok]
    print(
        f"{len(results)} checks: "
        + ", ".join(f"{n} {v}" for v, n in verdicts.items())
        + f"; negative controls rejected: {sum(r.control.rejected for r in results)}/{len(results)}"
    )
    if bad:
        print(f"FAILED or control not rejected: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
