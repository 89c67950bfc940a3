"""Layer 4, analysis: reported figures, targets, metrics, comparison, fitting and calibration,
sensitivity and validation. Reads stored results; runs the model only through :mod:`sim.runs`.
"""
