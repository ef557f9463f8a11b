"""Recording coverage: what the app's own tests create and record (``capture``, in the test
process), the recording file (``recording``), its names along the configured export path
(``replay``), and what that says about the dashboards (``coverage``)."""
