"""The code that does the work: one package per concern; pages and app.py only call into it."""
