"""Scoring a run and showing it: metrics, plots and the HTML report."""
