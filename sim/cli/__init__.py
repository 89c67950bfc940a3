"""Layer 6, the ``sim`` command line: the only place that parses arguments.

- :mod:`~sim.cli.app`: the program (the parser built from the command table, exit statuses).
- :mod:`~sim.cli.registry`: the command table and :func:`~sim.cli.registry.command`, which declares a command.
- :mod:`~sim.cli.options`: argument types, the batch and output options, the output folder, the kernel.
- the commands, by layer: :mod:`~sim.cli.run_commands` (run, sweep, rerun, export, bench),
  :mod:`~sim.cli.scenario_commands` (validate, schema), :mod:`~sim.cli.analysis_commands`
  (fit-appeals, calibrate, sensitivity, validate-model), :mod:`~sim.cli.present_commands`
  (compare, report, plot, dashboard), :mod:`~sim.cli.library_commands` (warmup).
"""

from sim.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
