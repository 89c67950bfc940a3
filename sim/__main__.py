"""``python -m sim``: the command line."""

from .cli import main

raise SystemExit(main())
