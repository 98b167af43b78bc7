"""Glue between sparse and other toolkits (their packages are optional extras and are imported
only inside the functions that need them)."""
