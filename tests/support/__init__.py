"""Shared by the integration, scenario and reliability suites: how to reach a running lab."""
