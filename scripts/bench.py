"""Benchmark symlstm against PyTorch; the same as `symlstm bench` (see symlstm/tools/bench.py)."""

import sys

from symlstm.tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
