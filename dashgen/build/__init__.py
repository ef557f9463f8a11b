"""Building ``generated/``: declarations -> export path -> panel plan -> grafanalib render ->
schema check -> atomic write. ``stages`` is the command, one function per stage."""
