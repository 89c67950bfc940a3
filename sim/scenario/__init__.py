"""Layer 1, the scenario: YAML with locations, months, the frozen schema, ``extends``, paths and errors.

Imports nothing else from ``sim``.
"""
