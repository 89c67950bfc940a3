"""``python -m sim``: the command line."""

from sim.cli.commands import main

raise SystemExit(main())
