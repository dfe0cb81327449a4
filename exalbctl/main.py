"""Entry point reserved for the operator CLI, which a later issue builds."""

import sys


def main() -> None:
    print("exalbctl is not built yet; see docs/ for kubectl equivalents", file=sys.stderr)
    sys.exit(2)
