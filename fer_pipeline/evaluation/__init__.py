"""Test-set metrics, confusion matrices and (later) occlusion sensitivity."""
