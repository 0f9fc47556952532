"""The tracking server a run logs to: checked before anything else starts, and a logger that keeps
training (and its local checkpoints) when the server goes away mid-run.

MLflow's HTTP client retries a dead server for minutes by default (7 retries, backoff factor 2);
:func:`check_tracking_uri` sets shorter defaults for this process (a user's own environment
variables win) and fails in seconds, with one line naming the URI, when the server cannot be
reached or is not an MLflow server.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from pytorch_lightning.loggers import MLFlowLogger

from fer_pipeline.errors import PipelineError
from fer_pipeline.io import write_json
from fer_pipeline.tracking.provenance import MLFLOW_PARAM_LIMIT

HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
UNSENT_FILE = "mlflow_unsent.json"


def check_tracking_uri(uri: str) -> None:
    """Fail now, in one line naming ``uri``, if runs cannot be logged there. An HTTP(S) server must
    answer MLflow's REST API, asked through ``MlflowClient``, so MLflow's own settings apply
    (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` or ``_TOKEN``, TLS certificates, retries and
    timeouts: :data:`HTTP_DEFAULTS` unless set); local stores (``sqlite:``, paths) need nothing."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as err:
        text = " ".join(str(err).split())
        code = re.search(r"error code (\d{3})", text)
        if code and code[1] in ("401", "403"):
            raise PipelineError(
                f"tracking URI {uri} refused this client (HTTP {code[1]}): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
            ) from None
        if code:
            raise PipelineError(
                f"tracking URI {uri} is not an MLflow tracking server (HTTP {code[1]}); "
                "check MLFLOW_TRACKING_URI or logger.tracking_uri"
            ) from None
        reason = re.sub(r"^API request to \S+ failed with exception ", "", text)[:300]
        raise PipelineError(
            f"tracking URI {uri} cannot be reached ({reason}); start the server or fix "
            "MLFLOW_TRACKING_URI / logger.tracking_uri"
        ) from None


class ResilientMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` that never stops training because the tracking server went away.

    A failed call prints one warning line and is kept: metrics and params are sent again, in
    order and with their original steps and times, at the next call after ``retry_every_s``
    seconds, and at the end of the run (:meth:`flush`). What could still not be sent is written
    to ``mlflow_unsent.json`` by :meth:`report_unsent` and named in one line. Checkpoints are the
    trainer's business and stay on disk whatever happens here. Under DDP only rank 0 makes one.
    """

    def __init__(self, *args, retry_every_s: float = 30.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_every_s = retry_every_s
        self.unsent_metrics: list[Metric] = []
        self.unsent_params: list[Param] = []
        self.unsent_calls: list[str] = []  # other calls (tags, artifacts) that failed
        self.down_since: float | None = None
        self._last_try = 0.0

    # -- state ---------------------------------------------------------------------------
    def _went_down(self, what: str, err: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.time()
            reason = " ".join(str(err).split())[:200]
            print(
                f"warning: MLflow at {self._tracking_uri} failed ({what}: {type(err).__name__}: "
                f"{reason}); training goes on, logging is kept and retried",
                file=sys.stderr,
            )
        self._last_try = time.time()

    def _may_try(self) -> bool:
        return self.down_since is None or time.time() - self._last_try >= self.retry_every_s

    def flush(self) -> bool:
        """Send what is pending; True when nothing is left."""
        if not (self.unsent_metrics or self.unsent_params):
            return True
        try:
            client, run_id = self.experiment, self.run_id
            for start in range(0, len(self.unsent_params), 100):
                client.log_batch(run_id, params=self.unsent_params[start : start + 100])
            self.unsent_params = []
            while self.unsent_metrics:
                client.log_batch(run_id, metrics=self.unsent_metrics[:1000])
                del self.unsent_metrics[:1000]
        except Exception as err:  # noqa: BLE001 - any failure of the tracking client
            self._went_down("catching up", err)
            return False
        if self.down_since is not None:
            print(f"MLflow at {self._tracking_uri} is back: pending logging sent", file=sys.stderr)
        self.down_since = None
        return True

    # -- logger API ----------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, step or 0)
            for key, value in metrics.items()
            if not isinstance(value, str)
        ]
        self.unsent_metrics += batch  # sent now, in order after whatever is pending, if it may
        if self._may_try():
            self.flush()

    def log_hyperparams(self, params) -> None:
        """Flat ``params`` in batches of 100 (MLflow's limit), each value up to MLflow's
        :data:`MLFLOW_PARAM_LIMIT` characters (Lightning's own logger cuts them at 250)."""
        batch = [Param(k, str(v)[:MLFLOW_PARAM_LIMIT]) for k, v in dict(params).items()]
        try:
            for i in range(0, len(batch), 100):
                self.experiment.log_batch(run_id=self.run_id, params=batch[i : i + 100])
        except Exception as err:  # noqa: BLE001
            self._went_down("params", err)
            self.unsent_params += batch  # values logged again are the same: MLflow accepts them

    def finalize(self, status: str = "success") -> None:
        if not self._initialized:
            return
        if self._may_try():
            self.flush()
        end = lambda: super(ResilientMLFlowLogger, self).finalize(status)  # noqa: E731
        self.safely("end the run", end, force=True)

    def safely(self, what: str, call: Callable[[], Any], force: bool = False) -> Any:
        """``call()``, or None and a recorded failure when the tracking server fails (or failed
        less than ``retry_every_s`` ago: then it is not tried, so a dead server costs no waits,
        unless ``force``: a run's end is always tried)."""
        if not force and not self._may_try():
            self.unsent_calls.append(what)
            return None
        try:
            result = call()
        except Exception as err:  # noqa: BLE001
            self._went_down(what, err)
            self.unsent_calls.append(what)
            return None
        return result

    def report_unsent(self, folder: str | Path) -> Path | None:
        """Write what never reached the server to ``folder/mlflow_unsent.json`` (removing an old
        one when all was sent) and say so in one line; return the file's path, if any."""
        path = Path(folder) / UNSENT_FILE
        self.flush()  # one last try, whenever the last one was
        if not (self.unsent_metrics or self.unsent_params or self.unsent_calls):
            path.unlink(missing_ok=True)
            return None
        write_json(
            path,
            {
                "tracking_uri": self._tracking_uri,
                "run_id": self._run_id,
                "metrics": [
                    {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                    for m in self.unsent_metrics
                ],
                "params": {p.key: p.value for p in self.unsent_params},
                "calls": self.unsent_calls,
            },
        )
        print(
            f"warning: MLflow at {self._tracking_uri} missed {len(self.unsent_metrics)} metric "
            f"values, {len(self.unsent_params)} params and {len(self.unsent_calls)} other calls "
            f"of run {self._run_id}: kept in {path}",
            file=sys.stderr,
        )
        return path
