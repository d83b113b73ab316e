"""``python -m symlstm``: the command line, as the ``symlstm`` command."""
from symlstm.tools.cli import main

raise SystemExit(main())
