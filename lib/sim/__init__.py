"""Synthetic LiveKit traffic for the demo and the tests."""
