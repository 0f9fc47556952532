"""The names of the files the stages write, in one place (their folders are ``paths.*`` in conf/)."""

from __future__ import annotations

MANIFEST = "manifest.csv"  # in paths.split: one row per face (path, label, class, split)
BEST = "best.ckpt"  # in paths.models: the weights of the best val/acc epoch (what is used)
LAST = "last.ckpt"  # in paths.models: the whole training state after the newest epoch (resumes)
RUN_FILE = "run.json"  # beside an unfinished run's checkpoints: its MLflow run and fingerprint
TRAIN_RECORD = "train.json"  # in paths.reports: which MLflow run trained paths.models
CURVES = "train_curves.csv"  # in paths.reports: per-epoch losses, accuracies and lr (a DVC plot)
PACKAGE_RECORD = "package.json"  # in paths.reports: the logged MLflow model, registered version
