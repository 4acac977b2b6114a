"""The two Floyd implementations (insertion and marker array) draw identical subsets."""

from __future__ import annotations

import numpy as np
import pytest

from pairmap._kernels import nulls as K


@pytest.mark.parametrize(("n", "k"), [(40, 30), (1000, 60), (5000, 25), (64, 64)])
def test_insertion_and_marker_paths_agree(n, k):
    a = np.empty(k, dtype=np.int64)
    b = np.empty(k, dtype=np.int64)
    marker = np.zeros(n + 1, dtype=np.uint8)
    for d in range(300):
        state = np.uint64(K._mix64(np.uint64((12345 + d * int(K._STREAM_GAMMA)) % 2**64)))
        s1 = K._draw_small(state, n, k, a)
        s2 = K._draw_large(state, n, k, b, marker)
        assert s1 == s2  # same random numbers consumed
        np.testing.assert_array_equal(a, b)
        assert len(set(a.tolist())) == k and a.min() >= 1 and a.max() <= n
        assert not marker.any()  # marker cleared for the next draw


def test_long_lists_use_bounded_memory_path():
    """k > SMALL_K with n far above MARKER_MAX_N: no n-sized marker per work block.

    Measured as the growth of the child's peak virtual memory (an n-byte marker is
    calloc'ed, so it would show there even before pages are touched).
    """
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from pairmap.nulls import null_distribution\n"
        "def vm(field):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field): return int(line.split()[1]) * 1024\n"
        "null_distribution(30, 100, null_size=200, seed=1, cache=False)  # compile\n"
        "before = vm('VmPeak')\n"
        "x = null_distribution(30, 2**30, null_size=200, seed=1, cache=False, n_jobs=1)\n"
        "assert np.isfinite(x).all() and (x > 0).all()\n"
        "print(vm('VmPeak') - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown = int(out.stdout.strip().splitlines()[-1])
    assert grown < 2**28, f"peak virtual memory grew by {grown / 2**20:.0f} MiB for n = 2**30"
