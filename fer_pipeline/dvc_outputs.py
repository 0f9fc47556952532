"""Previous outputs survive a stage that fails or is interrupted under ``dvc repro``.

DVC deletes a stage's outputs before it runs the stage's command (unless they are ``persist``,
which would switch its run-cache off). Run on their own, the stages already keep the previous
outputs: they write into temporary siblings and rename them into place only when done
(:mod:`fer_pipeline.io`). Under ``dvc repro`` each stage first puts back, from DVC's cache, the
outputs ``dvc.lock`` records for it, so the same holds there: a stage that fails, is stopped with
Ctrl-C, or is killed after this point leaves the outputs as they were, and ``dvc.lock`` still
describes them. (Killed in the second before it, the outputs are still in DVC's cache:
``dvc checkout`` puts them back, and so does the next ``dvc repro``.)
"""

from __future__ import annotations

import os
import sys


def restore_outputs() -> list[str]:
    """Under ``dvc repro`` (``DVC_STAGE`` set): check out each missing output of this stage that
    ``dvc.lock`` records and DVC's cache holds; return their paths. Outside DVC: nothing."""
    stage_name = os.environ.get("DVC_STAGE")
    if not stage_name:
        return []
    from dvc.repo import Repo  # only under DVC: importing it costs most of a second

    restored = []
    with Repo(os.environ.get("DVC_ROOT")) as repo:
        for stage in repo.stage.collect(stage_name):
            for out in stage.outs:
                if out.exists or not (out.hash_info and out.hash_info.value) or not out.use_cache:
                    continue
                try:
                    out.checkout()
                except Exception as err:  # noqa: BLE001 - e.g. the cache was garbage-collected
                    print(f"note: previous {out} not restored ({err})", file=sys.stderr)
                    continue
                restored.append(str(out))
    return restored
