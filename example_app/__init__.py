"""The bundled example's application: it records through the declarations in
``dashboards_src/``, the same objects ``dashgen build`` generates the dashboards from.

Its tests (``example_app/tests``) are ordinary application tests. Run under
``pytest --dashgen-record`` they show which declared metrics the code really records, and
``dashgen verify --recorded`` turns a metric no test records into a dead-panel finding.
"""
