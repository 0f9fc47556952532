"""Downloads against a local HTTP server (never the network): progress to completion, resume of a
partial file, MD5 check, Kaggle credentials and redirects, and the offline message."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fer_pipeline.data.download import DownloadError, ensure_local, fetch_url
from fer_pipeline.data.sources import get_source
from fer_pipeline.errors import PipelineError
from tests.conftest import closed_port_url
from tests.data.test_fer2013 import write_csv

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves ``files`` with Range support; ``/redirect/<name>`` redirects to ``/<name>``."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append({"path": self.path, **dict(self.headers)})
                if self.path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect"))
                    self.end_headers()
                    return
                name = self.path.lstrip("/").split("?")[0]
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    srv = Server({"data.bin": PAYLOAD})
    yield srv
    srv.httpd.shutdown()


def test_download_with_checksum(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    dest = fetch_url(f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    fetch_url(f"{server.url}/data.bin", dest, md5=md5)  # complete and verified: no new request
    assert len(server.requests) == 1


def test_interrupted_download_resumes_from_the_part_file(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:300_000])
    dest = fetch_url(f"{server.url}/data.bin", tmp_path / "data.bin")
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0]["Range"] == "bytes=300000-"


def test_checksum_mismatch_removes_the_download(server, tmp_path):
    with pytest.raises(DownloadError, match=f"MD5 {hashlib.md5(PAYLOAD).hexdigest()} is not"):
        fetch_url(f"{server.url}/data.bin", tmp_path / "data.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match="nope.csv: HTTP 404"):
        fetch_url(f"{server.url}/nope.csv", tmp_path / "nope.csv")


def test_offline_prepare_says_what_it_tried_and_what_to_put_where(tmp_path, capsys):
    external = tmp_path / "external"
    external.mkdir()
    (external / "README.md").write_text("put data here")
    url = closed_port_url("fer2013.csv")
    cfg = OmegaConf.create(
        {
            "source": "fer2013",
            "name": "fer2013",
            "path": str(external),
            "download": {"url": url, "kaggle": None, "md5": None, "cache": str(tmp_path / "c")},
        }
    )
    out = tmp_path / "raw"
    out.mkdir()
    with pytest.raises(DownloadError) as err:
        get_source("fer2013").materialise(cfg, out)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{external} holds no FER2013 and the download failed ({url}:")
    assert message.endswith(
        f"put fer2013.csv, icml_face_data.csv, the Kaggle train/ and test/ "
        f"folders, or a .zip/.tar.gz of them in {external}"
    )


def test_downloaded_csv_is_prepared(server, tmp_path):
    csv_bytes = write_csv(tmp_path / "fer2013.csv").read_bytes()
    server.files["fer2013.csv"] = csv_bytes
    empty = tmp_path / "external"
    empty.mkdir()
    cache = tmp_path / "cache"
    cfg = OmegaConf.create(
        {
            "source": "fer2013",
            "name": "fer2013",
            "path": str(empty),
            "download": {
                "url": f"{server.url}/fer2013.csv",
                "kaggle": None,
                "md5": hashlib.md5(csv_bytes).hexdigest(),
                "cache": str(cache),
            },
        }
    )
    out = tmp_path / "raw"
    out.mkdir()
    get_source("fer2013").materialise(cfg, out)
    assert (cache / "fer2013.csv").read_bytes() == csv_bytes
    assert len(list(out.rglob("*.png"))) == 8


def test_local_data_wins_over_download(tmp_path):
    csv_path = write_csv(tmp_path / "fer2013.csv")
    cfg = OmegaConf.create(
        {"url": closed_port_url("fer2013.csv"), "md5": None, "cache": str(tmp_path)}
    )
    assert ensure_local(tmp_path, cfg, "FER2013", "put it") == tmp_path
    assert ensure_local(csv_path, cfg, "FER2013", "put it") == csv_path


@pytest.fixture
def no_kaggle_token(tmp_path, monkeypatch):
    """No Kaggle credentials of either kind anywhere kagglehub looks."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.kaggle/access_token
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")  # never kaggle.com from a test
    return tmp_path / "kaggle"


def test_kaggle_without_token(tmp_path, no_kaggle_token):
    cfg = OmegaConf.create({"kaggle": "msambare/fer2013", "md5": None, "cache": str(tmp_path)})
    with pytest.raises(
        DownloadError, match=r"no Kaggle API token \(KAGGLE_API_TOKEN .*kaggle\.json"
    ):
        ensure_local(tmp_path / "external", cfg, "FER2013", "put fer2013.csv")


@pytest.mark.parametrize("kind", ["current", "legacy"])
def test_kaggle_unreachable_with_either_token_kind_is_one_line(
    tmp_path, no_kaggle_token, monkeypatch, kind
):
    if kind == "current":
        monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123456789abcdef")
    else:
        no_kaggle_token.mkdir()
        (no_kaggle_token / "kaggle.json").write_text(json.dumps({"username": "u", "key": "k"}))
    ref = (
        "competition:challenges-in-representation-learning-facial-expression-recognition-challenge"
    )
    cfg = OmegaConf.create({"kaggle": ref, "md5": None, "cache": str(tmp_path / "cache")})
    with pytest.raises(DownloadError) as failed:
        ensure_local(tmp_path / "external", cfg, "FER2013", "put fer2013.csv")
    message = str(failed.value)
    assert "\n" not in message and f"Kaggle {ref}: ConnectionError" in message
    assert message.endswith(f"to skip the download, put fer2013.csv in {tmp_path / 'external'}")


def test_kaggle_files_come_through_kagglehub_into_the_cache(tmp_path, no_kaggle_token, monkeypatch):
    import kagglehub

    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123456789abcdef")
    calls = []

    def dataset_download(handle, output_dir=None):
        calls.append((handle, output_dir))
        (Path(output_dir) / "train" / "happy").mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "train" / "happy" / "0.png").write_bytes(PAYLOAD)
        return output_dir

    monkeypatch.setattr(kagglehub, "dataset_download", dataset_download)
    cfg = OmegaConf.create({"kaggle": "msambare/fer2013", "md5": None, "cache": str(tmp_path)})
    dest = ensure_local(tmp_path / "external", cfg, "FER2013", "put it")
    assert calls == [("msambare/fer2013", str(tmp_path / "kaggle" / "msambare_fer2013"))]
    assert (
        dest == tmp_path / "kaggle" / "msambare_fer2013" and (dest / "train/happy/0.png").is_file()
    )
    cfg.md5 = "0" * 32  # a folder's MD5 (tree_md5) is checked when set
    with pytest.raises(DownloadError, match="MD5 [0-9a-f]{32}, expected 0{32}"):
        ensure_local(tmp_path / "external", cfg, "FER2013", "put it")


def test_bad_kaggle_reference(tmp_path):
    cfg = OmegaConf.create({"kaggle": "fer2013", "md5": None, "cache": str(tmp_path)})
    with pytest.raises(PipelineError, match="'fer2013' is not owner/dataset or competition:<name>"):
        ensure_local(tmp_path / "external", cfg, "FER2013", "put it")


def test_missing_ferplus_labels_are_fetched_or_explained(server, tmp_path):
    labels = tmp_path / "external" / "fer2013new.csv"
    offline = OmegaConf.create(
        {"url": closed_port_url("fer2013.csv"), "cache": str(tmp_path / "c")}
    )
    with pytest.raises(DownloadError) as err:
        ensure_local(labels, offline, "FER+ labels", "put fer2013new.csv")
    assert str(err.value).endswith(f"to skip the download, put fer2013new.csv as {labels}")
    server.files["fer2013new.csv"] = b"Usage,Image name\n"
    online = OmegaConf.create({"url": f"{server.url}/fer2013new.csv", "cache": str(tmp_path / "c")})
    assert ensure_local(labels, online, "FER+ labels", "put it") == tmp_path / "c/fer2013new.csv"
