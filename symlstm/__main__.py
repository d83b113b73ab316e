"""``python -m symlstm``: the command line, as the ``symlstm`` command."""

from symlstm.tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
