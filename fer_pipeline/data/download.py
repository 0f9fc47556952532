"""Fetching dataset files: a direct URL (a Hugging Face ``resolve/main/...`` file, the FERPlus CSV on
GitHub), with a progress bar, resume of an interrupted download and an optional MD5 check; or Kaggle
(a dataset or a competition) through ``kagglehub``, with the user's API token of either kind; into
a cache outside git.

Used only when the configured local path holds no data; offline or without credentials it stops
with one line saying what it tried and which file to put where instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from tqdm import tqdm

from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5, tree_md5

CHUNK = 1 << 20


class DownloadError(PipelineError):
    """A download that could not complete; the message says what was tried and why."""


def cache_dir(configured: str | None = None) -> Path:
    """Where downloads go: ``configured``, else ``$FER_PIPELINE_CACHE``, else
    ``~/.cache/fer-pipeline``."""
    path = configured or os.environ.get("FER_PIPELINE_CACHE") or "~/.cache/fer-pipeline"
    return Path(path).expanduser()


def fetch_url(
    url: str,
    dest: Path,
    md5: str | None = None,
    timeout: float = 30,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if an earlier attempt left one. A
    complete ``dest`` is reused."""
    if dest.is_file() and (md5 is None or file_md5(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    request = Request(url, headers={"User-Agent": "fer-pipeline"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urlopen(request, timeout=timeout)
    except HTTPError as err:
        if err.code == 416 and start:  # the part file is already complete
            return _finish(part, dest, url, md5)
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: {reason}") from None
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        try:
            with (
                part.open("ab" if start else "wb") as f,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    desc=f"download {dest.name}",
                    disable=not sys.stderr.isatty(),
                ) as bar,
            ):
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (URLError, OSError) as err:
            raise DownloadError(
                f"{url}: interrupted after {part.stat().st_size} bytes ({err}); run again to resume"
            ) from None
    if total is not None and part.stat().st_size != total:
        raise DownloadError(
            f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume"
        )
    return _finish(part, dest, url, md5)


def _finish(part: Path, dest: Path, url: str, md5: str | None) -> Path:
    if md5:
        digest = file_md5(part)
        if digest != md5:
            part.unlink()
            raise DownloadError(f"{url}: MD5 {digest} is not the expected {md5}; removed it")
    os.replace(part, dest)
    return dest


KAGGLE_TOKENS = (
    "KAGGLE_API_TOKEN or ~/.kaggle/access_token (a current Kaggle API token), or "
    "KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json in $KAGGLE_CONFIG_DIR or ~/.kaggle (a legacy one); "
    "create one under kaggle.com > Settings > API"
)


def kaggle_handle(ref: str) -> tuple[str, bool]:
    """``(handle, is_competition)`` of a Kaggle ``owner/dataset`` or ``competition:<name>``."""
    if ref.startswith("competition:"):
        name = ref.split(":", 1)[1]
        if not name or "/" in name:
            raise PipelineError(
                f"Kaggle reference '{ref}' is not owner/dataset or competition:<name>"
            )
        return name, True
    owner, _, name = ref.partition("/")
    if not owner or not name or "/" in name:
        raise PipelineError(f"Kaggle reference '{ref}' is not owner/dataset or competition:<name>")
    return ref, False


def fetch_kaggle(ref: str, folder: Path, md5: str | None = None) -> Path:
    """The files of a Kaggle dataset or competition, extracted into ``folder/kaggle/<name>``, through
    ``kagglehub`` (its credentials: a current API token or a legacy username/key, see
    :data:`KAGGLE_TOKENS`). ``md5``: of the folder's files, as :func:`tree_md5` computes it."""
    handle, competition = kaggle_handle(ref)
    import kagglehub
    from kagglehub.config import get_kaggle_credentials

    if get_kaggle_credentials() is None:
        raise DownloadError(f"no Kaggle API token ({KAGGLE_TOKENS})")
    out = folder / "kaggle" / handle.replace("/", "_")
    fetch = kagglehub.competition_download if competition else kagglehub.dataset_download
    try:
        path = Path(fetch(handle, output_dir=str(out)))
    except Exception as err:  # noqa: BLE001 - requests', kagglehub's and kagglesdk's errors alike
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        status = getattr(getattr(err, "response", None), "status_code", None)
        hint = ""
        if status in (401, 403) or "401" in reason or "Unauthenticated" in type(err).__name__:
            hint = f"; check the token ({KAGGLE_TOKENS})"
        if competition and (status == 403 or "403" in reason):
            hint = f"; accept the rules at https://www.kaggle.com/c/{handle}/rules"
        raise DownloadError(f"Kaggle {ref}: {type(err).__name__}: {reason}{hint}") from None
    if md5 and (found := tree_md5(path)) != md5:
        raise DownloadError(f"Kaggle {ref} in {path}: MD5 {found}, expected {md5}")
    return path


def holds_data(path: Path) -> bool:
    """Whether ``path`` is a file, or a folder with anything but READMEs and dotfiles."""
    if path.is_file():
        return True
    return path.is_dir() and any(
        not p.name.startswith(".") and not p.name.lower().startswith("readme")
        for p in path.iterdir()
    )


def ensure_local(path: str | Path, download, what_data: str, what: str) -> Path:
    """``path`` when it holds data; else the file ``download`` (``url`` or ``kaggle``, ``md5``,
    ``cache``) fetches. ``what`` says which files to put at ``path`` to skip downloading."""
    path = Path(path)
    if holds_data(path) or download is None or not (download.get("url") or download.get("kaggle")):
        return path
    folder = cache_dir(download.get("cache"))
    md5 = download.get("md5")
    try:
        if download.get("url"):
            url = download["url"]
            name = Path(urlparse(url).path).name or "download"
            return fetch_url(url, folder / name, md5)
        return fetch_kaggle(download["kaggle"], folder, md5)
    except DownloadError as err:
        raise DownloadError(
            f"{path} holds no {what_data} and the download failed ({err}); to skip the download, "
            f"{what} {'as' if path.suffix else 'in'} {path}"
        ) from None
