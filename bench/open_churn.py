#!/usr/bin/env python3
"""An fd-churning workload: open and close a file N times (like a build reading headers), with a
byte through a pipe every 100 opens so the capture also has some IPC.

    python3 bench/open_churn.py 200000
"""

import os
import sys


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    r, w = os.pipe()
    for i in range(n):
        os.close(os.open("/dev/null", os.O_RDONLY))
        if i % 100 == 0:
            os.write(w, b"x")
            os.read(r, 1)


if __name__ == "__main__":
    main()
