"""Layer 1, the scenario: YAML with locations, months, the frozen schema, ``extends``, paths and errors.

In the order a file travels: :mod:`~sim.scenario.yamlio` (safe YAML, the line of every value,
:class:`~sim.scenario.yamlio.InputError`), :mod:`~sim.scenario.compose` (``extends``),
:mod:`~sim.scenario.paths` (the one grammar of parameter paths: ``--set``, sweeps, calibration),
:mod:`~sim.scenario.errors` (the one translator of validation errors), the schema
(:mod:`~sim.scenario.fields`, :mod:`~sim.scenario.products`, :mod:`~sim.scenario.policies`,
:mod:`~sim.scenario.events`, :mod:`~sim.scenario.schema`) and :mod:`~sim.scenario.load` (``load_scenario``).

Imports nothing else from ``sim``.
"""
