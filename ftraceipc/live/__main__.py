"""``python -m ftraceipc.live analyzer ...``: live mode's analysis process, started again by itself
(``engine.Analyzer._reexec``). Not a command for users."""

import sys

from ftraceipc.live.engine import Analyzer

if __name__ == "__main__":
    if sys.argv[1:2] != ["analyzer"]:
        sys.exit("ftraceipc.live: internal entry point of 'ftraceipc live' (run 'ftraceipc live --help')")
    sys.exit(Analyzer.main(sys.argv[2:]))
