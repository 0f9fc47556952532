"""MLflow: what every run records (config, code and data versions), and sweep parent runs."""
