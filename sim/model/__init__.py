"""Layer 2, the model: pure market and policy math, the calendar, the choice kernels, agents,
observers and ``MarketModel``.

In the order of the data flow: :mod:`~sim.model.market` and :mod:`~sim.model.policy` (pure
functions of arrays), :mod:`~sim.model.agents`, :mod:`~sim.model.events` (dated events, by type) and
:mod:`~sim.model.calendar` (a scenario compiled into arrays by month), :mod:`~sim.model.draws` (a
run's draws of what its forecast does not know), :mod:`~sim.model.kernel` (the compiled kernel) and
:mod:`~sim.model.kernels` (both kernels behind one interface), :mod:`~sim.model.observe`,
:mod:`~sim.model.market_model` (the state and the month's timetable), :mod:`~sim.model.snapshot`
(a model's whole state saved, restored and copied) with :mod:`~sim.model.code_identity` (which code
made it), and :mod:`~sim.model.warmup` (the compiled kernel ahead of the first run).

Imports only from :mod:`sim.scenario`.
"""
