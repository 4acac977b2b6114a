"""Run copairs 0.5.5's own test suite against ``pairmap.compat``.

The script downloads the copairs 0.5.5 source distribution from the package
index (``pip download``) into a temporary folder, extracts its ``tests/``,
and runs them twice with pytest: against copairs itself (the baseline, when
copairs is installed) and against ``pairmap.compat`` (a generated
``conftest.py`` maps the ``copairs`` modules to the layer's). Nothing of
copairs is vendored into pairmap.

The sdist omits ``tests/helpers.py`` (the data simulators its tests import);
the script writes stand-in helpers of its own. A test counts only if it also
passes against copairs with those helpers; otherwise it is "not applicable".

Every test ends in one of: ``passed``; ``difference`` (fails by a documented
design difference, reason given); ``not applicable`` (tests internal helpers,
a name pairmap.compat does not provide yet, or fails against copairs itself);
``failed`` (unexplained: a bug to fix). Exit code 0 when nothing is
unexplained, 1 otherwise, 3 when the package index cannot be reached.

Usage::

    python scripts/copairs_test_suite.py [--quick] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "0.5.5"
UNREACHABLE = 3

#: Why a test cannot pass against pairmap.compat, by test id prefix (most specific first).
KNOWN = {
    "tests/test_compute.py": (
        "not applicable",
        "tests copairs.compute, copairs' internal "
        "similarity/null helpers (not public API; pairmap has its own "
        "engine)",
    ),
    "tests/test_build_rank_multilabel.py": (
        "not applicable",
        "tests copairs.compute.concat_ranges, an internal helper",
    ),
    "tests/test_matching.py::test_validate_string_inputs": (
        "not applicable",
        "tests the private function copairs.matching._validate",
    ),
    "tests/test_matching_multilabel.py": (
        "not applicable",
        "find_pairs_multilabel is not "
        "provided by the layer (pairmap.find_pairs with "
        "multilabel_col returns another shape)",
    ),
    **{
        f"tests/test_pandas_compatibility.py::{name}": (
            "not applicable",
            "uses find_pairs_multilabel (not provided by the layer)",
        )
        for name in (
            "test_groupby_unique_string_labels",
            "test_numpy_label_arrays",
            "test_nullable_label_arrays",
            "test_missing_or_empty_label_cells",
        )
    },
    "tests/test_map.py::test_compute_ap": ("not applicable", "tests copairs.compute internals"),
    "tests/test_map.py::test_compute_ap_contiguous": (
        "not applicable",
        "tests copairs.compute internals",
    ),
    "tests/test_map.py::test_random_binary_matrix": (
        "not applicable",
        "tests copairs.compute internals",
    ),
    "tests/test_replicating.py": (
        "not applicable",
        "copairs.replicating is not provided by the "
        "layer (pairmap.percent_replicating is pairmap's own API)",
    ),
    "tests/test_normalization.py::test_normalize_ap_edge_cases": (
        "difference",
        "asserts a finite normalized AP for a list without negatives (M=100, "
        "N=0); it has no random baseline, so pairmap returns NaN (copairs: 0)",
    ),
}

HELPERS = '''"""Stand-in test data simulators (written for pairmap's run of the copairs suite)."""

import itertools

import numpy as np
import pandas as pd

SEED = 0


def simulate_plates(n_compounds, n_replicates, plate_size):
    """Compounds c*, assigned round robin to wells w* of consecutive plates p*."""
    i = np.arange(n_compounds * n_replicates)
    return pd.DataFrame({"c": [f"c{k}" for k in i % n_compounds],
                         "p": [f"p{k}" for k in i // plate_size],
                         "w": [f"w{k}" for k in i % plate_size]})


def simulate_random_plates(n_compounds, n_replicates, plate_size, sameby=(), diffby=()):
    """simulate_plates with each column shuffled independently, sorted by diffby + sameby."""
    rng = np.random.default_rng(SEED)
    frame = simulate_plates(n_compounds, n_replicates, plate_size)
    for col in frame.columns:
        frame[col] = rng.permutation(frame[col].to_numpy())
    return frame.sort_values([*diffby, *sameby]).reset_index(drop=True)


def simulate_random_dframe(length, vocab_size, sameby, diffby, rng):
    """Random labels col1..colN per column, sorted by diffby + sameby, duplicates dropped."""
    frame = pd.DataFrame({col: [f"{col}{v}" for v in rng.integers(1, size + 1, size=length)]
                          for col, size in vocab_size.items()})
    frame = frame.sort_values([*diffby, *sameby])
    return frame.drop_duplicates().reset_index(drop=True)


def create_dframe(n_options, n_rows):
    """n_rows distinct (c, p, w) label combinations drawn from all combinations."""
    sizes = [n_options] * 3 if isinstance(n_options, int) else list(n_options)
    combos = list(itertools.product(*[[f"{k}{i}" for i in range(n)]
                                      for k, n in zip("cpw", sizes)]))
    frame = pd.DataFrame(combos, columns=list("cpw"))
    return frame.sample(n_rows, random_state=SEED).reset_index(drop=True)
'''

CONFTEST = '''"""Generated by pairmap's scripts/copairs_test_suite.py: choose the implementation under test.

With COPAIRS_SUITE_TARGET=pairmap, every ``copairs`` module is the matching
``pairmap.compat`` module. Names the layer does not provide (copairs.compute,
copairs.replicating, the multi-label functions) are placeholders that raise
NotImplementedError when used, so that a test module importing one of them
still runs its other tests; the tests using them fail and are reported.
"""

import importlib
import os
import sys
import types


class _Missing:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"{self._name} is not provided by pairmap.compat")


class _Proxy(types.ModuleType):
    def __init__(self, name, real):
        super().__init__(name)
        self._real = real

    def __getattr__(self, attr):
        if self._real is not None and hasattr(self._real, attr):
            return getattr(self._real, attr)
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self.__name__}.{attr}")


if os.environ.get("COPAIRS_SUITE_TARGET") == "pairmap":
    NAMES = ["", ".map", ".map.average_precision", ".map.map", ".map.filter",
             ".map.normalization", ".map.hierarchical_fdr", ".map.multilabel", ".matching",
             ".replicating", ".compute"]
    for suffix in NAMES:
        try:
            real = importlib.import_module("pairmap.compat" + suffix)
        except ImportError:
            real = None
        sys.modules["copairs" + suffix] = _Proxy("copairs" + suffix, real)
'''


def download(dest: Path) -> Path:
    """The copairs sdist from the package index (raises RuntimeError when unreachable)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"copairs=={VERSION}",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--quiet",
        "--disable-pip-version-check",
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError("pip download timed out (package index unreachable?)") from None
    found = sorted(dest.glob(f"copairs-{VERSION}.tar.gz"))
    if proc.returncode != 0 or not found:
        tail = " ".join(proc.stderr.split()[-30:])
        raise RuntimeError(f"cannot download copairs {VERSION} from the package index: {tail}")
    return found[0]


def prepare(sdist: Path, work: Path) -> Path:
    """Extract the sdist's tests into ``work`` and add the helpers and the conftest."""
    prefix = f"copairs-{VERSION}/tests/"
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                target = work / "tests" / member.name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    (work / "tests" / "__init__.py").touch()
    (work / "tests" / "helpers.py").write_text(HELPERS)
    (work / "conftest.py").write_text(CONFTEST)
    return work


def run_suite(work: Path, target: str, extra: list[str]) -> dict[str, tuple[str, str]]:
    """Run pytest on the suite; ``{test id: (passed|failed|skipped, message)}``."""
    report = work / f"junit-{target}.xml"
    env = {**os.environ, "COPAIRS_SUITE_TARGET": target}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--continue-on-collection-errors",
        "--rootdir",
        str(work),
        f"--junitxml={report}",
        "tests",
        *extra,
    ]
    subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = " ".join((problem.get("message") or "").split())[:200]
            outcomes[test_id] = ("failed", message)
        elif skipped is not None:
            outcomes[test_id] = ("skipped", skipped.get("message") or "")
        else:
            outcomes[test_id] = ("passed", "")
    return outcomes


def _known(test_id: str):
    for prefix in sorted(KNOWN, key=len, reverse=True):
        if (
            test_id == prefix
            or test_id.startswith(prefix + "::")
            or test_id.startswith(prefix + "[")
        ):
            return KNOWN[prefix]
    return None


def classify(ours: dict, baseline: dict | None) -> dict[str, tuple[str, str]]:
    """Final category and reason of every test."""
    result = {}
    for test_id in sorted(set(ours) | set(baseline or {})):
        outcome, message = ours.get(test_id, ("failed", "not collected against pairmap"))
        base = None if baseline is None else baseline.get(test_id, ("failed", "not collected"))
        known = _known(test_id)
        if outcome == "passed":
            result[test_id] = ("passed", "")
        elif base is not None and base[0] != "passed":
            result[test_id] = (
                "not applicable",
                f"fails against copairs {VERSION} itself: {base[1]}",
            )
        elif known is not None:
            result[test_id] = known
        else:
            result[test_id] = ("failed", message)
    return result


def summarize(result: dict) -> str:
    counts = {}
    for category, _ in result.values():
        counts[category] = counts.get(category, 0) + 1
    lines = [
        f"copairs {VERSION} test suite against pairmap.compat: "
        + ", ".join(
            f"{counts.get(k, 0)} {k}" for k in ("passed", "difference", "not applicable", "failed")
        )
    ]
    for category in ("failed", "difference", "not applicable"):
        for test_id, (cat, reason) in result.items():
            if cat == category:
                lines.append(f"  {category:>14}  {test_id}: {reason}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the large stress tests (for CI)")
    parser.add_argument(
        "--ci",
        action="store_true",
        help="--quick, without the copairs baseline run and without the test "
        "modules listed as not applicable as a whole (small CI cost)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--sdist", metavar="FILE", help="use this sdist instead of downloading")
    args = parser.parse_args(argv)
    # the stress tests compare with a naive cross join written in the tests (minutes each)
    extra = ["-k", "not large and not stress"] if args.quick or args.ci else []
    if args.ci:
        extra += [f"--ignore={m}" for m in KNOWN if "::" not in m]
    with tempfile.TemporaryDirectory(prefix="copairs-suite-") as tmp:
        tmp = Path(tmp)
        try:
            sdist = Path(args.sdist) if args.sdist else download(tmp)
        except RuntimeError as exc:
            print(f"copairs test suite: skipped: {exc}", file=sys.stderr)
            return UNREACHABLE
        work = prepare(sdist, tmp / "suite")
        try:
            import copairs  # noqa: F401
        except ImportError:
            baseline = None
        else:
            baseline = None if args.ci else run_suite(work, "copairs", extra)
        result = classify(run_suite(work, "pairmap", extra), baseline)
    print(summarize(result))
    if args.json:
        Path(args.json).write_text(
            json.dumps({k: {"category": c, "reason": r} for k, (c, r) in result.items()}, indent=1)
        )
    return 1 if any(c == "failed" for c, _ in result.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
