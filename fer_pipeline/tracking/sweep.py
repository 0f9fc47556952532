"""A parent MLflow run for each Hydra multirun, so a sweep's runs are grouped in the MLflow UI."""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

PARENT_RUN_ENV = "FER_PIPELINE_PARENT_RUN_ID"


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


class ParentRunCallback(Callback):
    """Opens a parent run when a multirun starts and closes it when it ends.

    Each job's run is tagged ``mlflow.parentRunId`` with it (read from ``FER_PIPELINE_PARENT_RUN_ID``),
    which is how the MLflow UI nests runs.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        client = MlflowClient(config.logger.tracking_uri)
        overrides = list(HydraConfig.get().overrides.task)
        run = client.create_run(
            experiment_id(client, config.logger.experiment_name),
            run_name="sweep " + " ".join(overrides),
            tags={"fer.kind": "sweep", "fer.sweep_dir": HydraConfig.get().sweep.dir},
        )
        client.log_param(run.info.run_id, "sweep.overrides", " ".join(overrides))
        os.environ[PARENT_RUN_ENV] = run.info.run_id

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        run_id = os.environ.pop(PARENT_RUN_ENV, None)
        if run_id:
            MlflowClient(config.logger.tracking_uri).set_terminated(run_id, "FINISHED")
