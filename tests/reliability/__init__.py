"""Reliability suite: load, lifecycle races, injected faults, bad input and security (issue 5)."""
