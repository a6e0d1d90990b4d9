"""Symptom checks of the scenario catalogue (nginx/scenarios/), shared by pytest and scripts/lab."""
