"""pytest plugin: the dashboard contract inside the user's own test suite."""
