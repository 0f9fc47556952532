"""The GUI: the app in headless Chromium shows the Python API's faces and probabilities, fetches
nothing from elsewhere, and says what to do when no model is trained; its HTTP errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.inference import Recognizer
from tests.conftest import (
    CLASSES,
    closed_port_url,
    free_port,
    png_bomb,
    start_in_own_group,
    wait_until,
)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip("no Chromium found (apt install chromium); the GUI test needs a real browser")
    return found


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Start the app for a store on 127.0.0.1 in this process; stop it at the end."""
    import uvicorn

    from fer_pipeline.app.server import create_app

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # auto detector: Haar
    servers = []

    def start(uri: str, **kwargs) -> str:
        port = free_port()
        config = uvicorn.Config(create_app(uri, "cpu", **kwargs), host="127.0.0.1", port=port,
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the app did not start in 30 s"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser():
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    return page, requested


def test_gui_shows_the_apis_faces_and_probabilities(
    serve, browser, registered, inputs, tmp_path, monkeypatch
):
    url = serve(registered["uri"])
    page, requested = open_page(browser, url)
    # Only the trained cell can be chosen; it shows its test accuracy and interval.
    cell = page.locator('td[data-network="resnet34"][data-optimizer="adam"]')
    assert "acc 31.0 %" in cell.inner_text() and "25.0 % \u2013 37.0 %" in cell.inner_text()
    assert "synthetic \u00b7 demo" in cell.inner_text()  # trained on drawn faces: said so
    assert page.locator("td.none input:enabled").count() == 0
    assert page.locator("td.none").count() == 4 * 3 - 1
    cell.locator("input").check()
    page.set_input_files("#file", str(inputs["photo"]))
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    expected = Recognizer.load("models:/fer-pipeline@champion", device="cpu").predict(
        inputs["photo"]
    )
    cards = page.locator(".face")
    assert cards.count() == len(expected) == 2
    for i in range(cards.count()):
        card = cards.nth(i)
        box = [float(v) for v in card.get_attribute("data-box").split(",")]
        assert np.allclose(box, expected.loc[i, ["x", "y", "w", "h"]].to_numpy(float), atol=1e-5)
        shown = {c: float(card.locator(f'[data-class="{c}"]').get_attribute("data-p"))
                 for c in CLASSES}  # fmt: skip
        assert np.allclose([shown[c] for c in CLASSES],
                           expected.loc[i, [f"p_{c}" for c in CLASSES]].to_numpy(float), atol=1e-5)  # fmt: skip
        assert card.get_attribute("data-predicted") == expected.loc[i, "predicted"]
        occlusion = card.locator(".occlusion img")
        assert occlusion.evaluate("img => img.naturalWidth") == 144
    assert page.locator(".box").count() == 2
    assert "2 faces" in page.inner_text("#status")
    # Everything the page loaded came from the app itself (data: and blob: URLs are local).
    elsewhere = [r for r in requested if not r.startswith((url, "data:", "blob:"))]
    assert not elsewhere


def test_gui_without_a_trained_model_says_how_to_make_one(serve, browser, tmp_path):
    store = tmp_path / "none" / "mlflow.db"
    page, _ = open_page(browser, serve(f"sqlite:///{store}"))
    page.wait_for_selector("#no-model:not([hidden])")
    assert "make demo" in page.inner_text("#no-model")
    assert page.locator("td input:enabled").count() == 0
    assert not store.exists()  # looking did not create an empty store


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_api_answers_bad_requests_in_one_line(serve, registered, inputs, tmp_path):
    faces = Path(inputs["crops"])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,split\nhappy/000.png,3,test\nhappy/001.png,3,train\n")
    url = serve(registered["uri"], manifest=manifest, faces_dir=faces)
    with urllib.request.urlopen(f"{url}/api/models") as response:
        offered = json.loads(response.read())
    assert [c["key"] for c in offered["choices"]] == [registered["version"]]
    (choice,) = offered["choices"]  # the registered model trained on the synthetic set: a demo
    assert choice["dataset"] == "synthetic" and choice["demo"]
    assert "never on a real one" in choice["trained_on"]
    assert offered["samples"] == [{"id": 0, "label": "3"}]  # no card: the label's number
    with urllib.request.urlopen(f"{url}/api/samples/0") as response:
        sample = response.read()
    assert sample == (faces / "happy/000.png").read_bytes()
    assert offered["networks"][0] == "fusion" and offered["optimizers"]["sgdm"] == "SGDM"
    with urllib.request.urlopen(f"{url}/static/app.js") as response:
        assert response.headers["content-type"].startswith("text/javascript")
    for outside in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/nothing.js"):
        try:
            urllib.request.urlopen(f"{url}{outside}")
            raise AssertionError(f"{outside} was served")
        except urllib.error.HTTPError as err:
            assert err.code == 404, outside

    key = registered["version"]
    status, answer = post(f"{url}/api/predict?model={key}", sample)
    assert status == 200 and answer["outcome"] == "already_cropped" and len(answer["faces"]) == 1
    assert post(f"{url}/api/predict?model={key}", b"") == (
        400,
        {"detail": "no image in the request"},
    )
    status, answer = post(f"{url}/api/predict?model=99", sample)
    assert status == 404 and answer["detail"].startswith("no trained model '99'")
    status, answer = post(f"{url}/api/predict?model={key}", b"plain text")
    assert status == 200 and answer["error"] and answer["outcome"] == "not_an_image"
    status, answer = post(
        f"{url}/api/predict?model={key}", png_bomb(tmp_path / "bomb.png").read_bytes()
    )
    assert (
        status == 413
        and "is 1600000000 pixels (1600 MP), above the limit of 50 MP" in answer["detail"]
    )


def test_a_phone_photo_is_analysed_upright_as_the_browser_shows_it(serve, registered, tmp_path):
    import io

    from PIL import Image

    from tests.conftest import two_faces

    upright = Image.fromarray(two_faces())  # 500 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers turn it back
    buffer = io.BytesIO()
    upright.rotate(90, expand=True).save(buffer, "JPEG", quality=95, exif=exif)
    url = serve(registered["uri"])
    status, answer = post(f"{url}/api/predict?model={registered['version']}", buffer.getvalue())
    assert status == 200 and answer["image"] == {"width": 500, "height": 300}
    assert len(answer["faces"]) == 2  # boxes in the upright photo's pixels
    assert all(f["box"][0] + f["box"][2] <= 500 for f in answer["faces"])


def test_an_unreachable_tracking_server_stops_the_app_at_start(call_main):
    from fer_pipeline.app.__main__ import main

    uri = closed_port_url("")
    code, out, err = call_main(main, "--tracking-uri", uri, "--port", str(free_port()))
    assert code == 2 and err.count("\n") == 1 and not out
    assert f"tracking URI {uri} cannot be reached" in err


def test_sigterm_stops_the_app(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "fer_pipeline.app", "--port", str(port),
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]  # fmt: skip
    app = start_in_own_group(command, cwd=tmp_path)
    try:
        wait_until(lambda: app_answers(port), app, timeout=120)
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode is not None


def app_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=2):
            return True
    except OSError:
        return False


def test_the_app_reads_models_from_its_store_without_changing_the_environment(
    registered, tmp_path, monkeypatch
):
    """``--tracking-uri`` reaches Recognizer.load as an argument; MLFLOW_TRACKING_URI stays unset."""
    from fer_pipeline.app.server import Models, create_app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # no mlflow.db here: only the given store has the model
    create_app(registered["uri"], preload=False)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    models = Models(registered["uri"], "cpu")
    (choice,) = models.choices()
    _, recognizer = models.recognizer(choice.key)
    assert recognizer.classes and "MLFLOW_TRACKING_URI" not in os.environ
