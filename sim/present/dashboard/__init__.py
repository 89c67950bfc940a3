"""``sim dashboard``: explore scenarios in a browser (the optional ``dashboard`` extra).

The package reads like the page's data flow. Only the session, the pages and the app import
Solara (and Mesa's visualization), so the rest imports and tests without the extra:

- :mod:`~sim.present.dashboard.config`: what the command line hands to the page (files, sampling).
- :mod:`~sim.present.dashboard.levers`: a scenario's levers and their ``sim run --set`` overrides.
- :mod:`~sim.present.dashboard.runner`: a scenario and its baseline on the same seeds, in memory, with
  progress and a cache.
- :mod:`~sim.present.dashboard.summary`: the page's numbers (target probability, paired differences,
  fan, monthly deliveries per brand, segment shares), from :mod:`sim.analysis.compare`.
- :mod:`~sim.present.dashboard.charts`: matplotlib figures of a summary.
- :mod:`~sim.present.dashboard.state`: a single run's month-by-month state, for the step-by-step view.
- :mod:`~sim.present.dashboard.session`: the page's shared state (Solara reactive variables per session).
- :mod:`~sim.present.dashboard.forecast_view`: a forecast folder's numbers, figures and table (``--forecast``).
- :mod:`~sim.present.dashboard.scenario_page`, :mod:`~sim.present.dashboard.single_page`,
  :mod:`~sim.present.dashboard.forecast_page`: the pages (the last with ``--forecast DIR`` only).
- :mod:`~sim.present.dashboard.app`: the Solara app (layout and routes) the server loads.
- :mod:`~sim.present.dashboard.server`: the server ``sim dashboard`` starts (after checking the extra).
"""
