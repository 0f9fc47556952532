"""fer-pipeline: an experiment-tracked pipeline for facial expression recognition."""

import os

# albumentations looks for a newer release online at import; these machines may have no network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
