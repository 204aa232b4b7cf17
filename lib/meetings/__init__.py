"""Meetings: scheduling, series, invitees, join tokens and the scheduler's lifecycle."""
