"""CPU, memory, disk, network and GPU use of a training run as MLflow ``system/*`` metrics."""

from __future__ import annotations

import pytorch_lightning as pl
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from pytorch_lightning.loggers import MLFlowLogger


class SystemMetrics(pl.Callback):
    """Samples the machine every ``interval_s`` seconds while ``fit`` runs and logs it to the
    trainer's MLflow run at ``tracking_uri`` (MLflow's own monitor; a resumed run goes on from its
    last step)."""

    def __init__(self, tracking_uri: str, interval_s: float = 10.0, resumed: bool = False):
        self.tracking_uri = tracking_uri
        self.interval_s = interval_s
        self.resumed = resumed
        self.monitor: SystemMetricsMonitor | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = trainer.logger
        if not isinstance(logger, MLFlowLogger):  # DDP's other ranks have none
            return
        self.monitor = SystemMetricsMonitor(
            logger.run_id,
            sampling_interval=self.interval_s,
            resume_logging=self.resumed,
            tracking_uri=self.tracking_uri,
        )
        self.monitor.start()

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.finish()
            self.monitor = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stop()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.stop()
