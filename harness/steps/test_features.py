"""Binds every Gherkin scenario under harness/features/ to a test."""

from pytest_bdd import scenarios

from harness.core.places import FEATURES_DIR

for area in ("identity", "chat", "calling", "notifications", "policies"):
    scenarios(str(FEATURES_DIR / area))
