"""A/B a change to a training loop with the benchmark's turn-taking runs (`hfmodels.benchmarks.loop_repeat`: each
variant in a fresh process, all taking turns of 10 steps on a quiet machine, the order rotated every repeat).

    python scripts/loop_ab.py engine engine+cached hand-written --prelude cached=patch.py --repeats 6

A variant is a loop of `hfmodels.benchmarks.LOOPS`, or `loop+label`: the same loop with the Python file given by
`--prelude label=FILE` run first in its process (a monkeypatch of a change, to measure it before making it). Prints
every repeat, and the ratio of each variant's mean step to the first variant's, per repeat.
"""

import argparse
import statistics
from pathlib import Path

from hfmodels.benchmarks import LOOP_STEPS, loop_repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="loop names, or loop+label (the first is the reference)")
    parser.add_argument("--prelude", action="append", default=[], metavar="LABEL=FILE")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--steps", type=int, default=LOOP_STEPS)
    args = parser.parse_args()
    preludes = {label: Path(file).read_text() for label, file in (item.split("=", 1) for item in args.prelude)}
    names, means = args.variants, {name: [] for name in args.variants}
    for repeat in range(args.repeats):
        result = loop_repeat(names[repeat % len(names):] + names[:repeat % len(names)], repeat, args.steps, preludes)
        for name in names:
            means[name].append(result[name]["mean"])
        print(f"repeat {repeat} (others {result[names[0]]['others_cpu'] or 0:.3f}): "
              + ", ".join(f"{name} {result[name]['mean'] * 1e3:.3f} ms" for name in names), flush=True)
    for name in names[1:]:
        ratios = [ours / reference for ours, reference in zip(means[name], means[names[0]])]
        print(f"{name} / {names[0]}: median {statistics.median(ratios):.4f} [{min(ratios):.4f}-{max(ratios):.4f}]")


if __name__ == "__main__":
    main()
