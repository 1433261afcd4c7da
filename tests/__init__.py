"""Tests, a package so that shared helpers import by their full name."""
