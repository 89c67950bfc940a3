"""``python -m sim``: the command line."""

from sim.cli.app import main

raise SystemExit(main())
