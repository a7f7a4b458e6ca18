"""Widgets shared by the dashboard's screens, one per module."""
