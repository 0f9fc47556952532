"""Which process this is when several train one model (DDP), read from the environment its
launcher set (Lightning's DDP launcher, torchrun, SLURM), as Lightning itself reads it, but without
importing Lightning (the command line's ``--help`` must stay fast)."""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's order


def is_leader() -> bool:
    """Whether this process is global rank 0 (or the only one), before any Trainer exists. Only
    the leader writes outputs and talks to MLflow; the other ranks train and return."""
    rank = next((int(os.environ[k]) for k in RANK_VARIABLES if k in os.environ), 0)
    return rank == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def relaunches_itself(trainer) -> bool:
    """Whether Lightning would start the DDP ranks of the ``trainer`` config itself, by running
    the command line again in new processes (not when torchrun or SLURM started one process per
    rank already)."""
    strategy, devices = str(trainer.get("strategy", "auto")), trainer.get("devices", 1)
    external = any(key in os.environ for key in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS"))
    return strategy.startswith("ddp") and str(devices) not in ("1", "[0]") and not external
