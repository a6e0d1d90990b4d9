"""Headless Chromium (Debian's, driven by Playwright) through nginx and the lab page."""
