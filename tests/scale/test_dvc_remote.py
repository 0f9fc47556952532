"""A DVC remote shared by a team: one clone runs the pipeline and pushes its outputs, another
pulls them and has nothing to rerun. (A local folder here; S3, GCS or SSH by `dvc remote add`.)"""

from __future__ import annotations

import pytest

from fer_pipeline.hashing import file_md5
from tests.test_pipeline import dvc, sh, stages_run

pytestmark = pytest.mark.slow


def test_push_from_one_clone_and_pull_into_another_leaves_nothing_to_rerun(project, tmp_path):
    remote, clone = tmp_path / "team-remote", tmp_path / "clone"
    sh("git", "init", "-q", cwd=project)
    dvc("init", "-q", cwd=project)
    dvc("remote", "add", "-d", "team", str(remote), cwd=project)
    dvc("repro", cwd=project)
    dvc("push", cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-qm", "pipeline run", cwd=project)

    sh("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)
    assert not (clone / "models").exists() and not (clone / "data/split").exists()
    dvc("pull", cwd=clone)
    for rel in ("models/best.ckpt", "data/split/manifest.csv", "reports/metrics.json"):
        assert file_md5(clone / rel) == file_md5(project / rel), rel
    again = dvc("repro", cwd=clone).stdout
    assert stages_run(again) == set(), again
    assert "Data and pipelines are up to date." in dvc("status", cwd=clone).stdout
