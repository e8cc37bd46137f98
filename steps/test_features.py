"""Binds every Gherkin scenario under features/ to a test."""

from pytest_bdd import scenarios

scenarios("identity")
scenarios("chat")
scenarios("calling")
scenarios("notifications")
scenarios("policies")
