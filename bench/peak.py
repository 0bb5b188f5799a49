"""Run one command; print its wall time and peak resident memory as JSON.

    python -m bench.peak STDOUT_FILE COMMAND...

A child's peak RSS includes the memory of the process it was forked from, so
benchmarks start commands from this small process rather than from themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    out, cmd = sys.argv[1], sys.argv[2:]
    with open(out, "wb") as f:  # noqa: PTH123
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=f)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - start
    print(
        json.dumps(
            {
                "returncode": os.waitstatus_to_exitcode(status),
                "seconds": elapsed,
                "peak_bytes": usage.ru_maxrss * 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
