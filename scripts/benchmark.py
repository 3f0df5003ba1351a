"""Benchmarks as ratios against a reference run in the same process: see hfmodels/benchmarks.py.

    python scripts/benchmark.py [--quick] [--only overhead generation ...]   # writes docs/benchmarks.md and .json
"""

import sys

from hfmodels.benchmarks import main

if __name__ == "__main__":
    sys.exit(main(prog="scripts/benchmark.py"))
