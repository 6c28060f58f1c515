"""A 2 GiB PutObject and GetObject keep the server's peak RSS under 200 MiB.

Runs bench/streaming_memory.py (which also prints throughput) and relies on its verdict:
it exits non-zero when the content does not come back byte-exact or the server's peak
resident memory (VmHWM) exceeds the limit. Peak memory does not depend on machine load,
so this is a fair thing to assert in a test; the throughput figures are only printed.
"""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "streaming_memory.py"


def test_two_gib_put_and_get_stay_under_200_mib_rss():
    run = subprocess.run(
        [sys.executable, str(BENCH), "--size-mib", "2048", "--disks", "4", "--max-rss-mib", "200"],
        capture_output=True, text=True, timeout=280,
    )
    print(run.stdout)
    assert run.returncode == 0, f"bench failed:\n{run.stdout}\n{run.stderr[-4000:]}"
    assert "byte-exact" in run.stdout
