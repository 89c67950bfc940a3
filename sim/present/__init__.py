"""Layer 5, presentation: figures, the HTML report, the comparison tables and the dashboard."""
