"""The bundled example: metric declarations and the dashboards that show them.

Applications import the declarations from here and record through them at run time;
``dashgen build`` imports the same modules and generates ``generated/``.
"""
