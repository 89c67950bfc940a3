"""Layer 2, the model: pure market and policy math, the calendar, the choice kernels, agents,
observers and ``MarketModel``.

Imports only from :mod:`sim.scenario`.
"""
