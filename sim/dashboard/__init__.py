"""``sim dashboard``: explore scenarios in a browser (the optional ``dashboard`` extra).

The package reads like the page's data flow. Only the session, the two pages and the app import
Solara (and Mesa's visualization), so the rest imports and tests without the extra:

- :mod:`~sim.dashboard.config`: what the command line hands to the page (files, sampling).
- :mod:`~sim.dashboard.levers`: a scenario's levers and their ``sim run --set`` overrides.
- :mod:`~sim.dashboard.runner`: a scenario and its baseline on the same seeds, in memory, with
  progress and a cache.
- :mod:`~sim.dashboard.summary`: the page's numbers (target probability, paired differences,
  fan, monthly deliveries per brand, segment shares), from :mod:`sim.compare`.
- :mod:`~sim.dashboard.charts`: matplotlib figures of a summary.
- :mod:`~sim.dashboard.state`: a single run's month-by-month state, for the step-by-step view.
- :mod:`~sim.dashboard.session`: the page's shared state (Solara reactive variables per session).
- :mod:`~sim.dashboard.scenario_page`, :mod:`~sim.dashboard.single_page`: the two pages.
- :mod:`~sim.dashboard.app`: the Solara app (layout and routes) the server loads.
- :mod:`~sim.dashboard.command`: the ``sim dashboard`` command (starts the server).
"""
