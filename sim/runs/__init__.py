"""Layer 3, runs: one run as a pure function, the results store, batches and executors, sweeps.

Imports only from :mod:`sim.scenario` and :mod:`sim.model`.
"""
