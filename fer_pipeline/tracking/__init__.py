"""MLflow: what every run records (config, code and data versions), and sweep parent runs."""

# Set while a sweep runs: its parent run's id, read by every job (light: the command line reads it).
PARENT_RUN_ENV = "FER_PIPELINE_PARENT_RUN_ID"
