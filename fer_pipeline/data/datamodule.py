"""``FERDataModule``: the split manifest as train/val/test loaders.

Faces are small (48 px gray is 2.3 kB), so each split is held in memory: read from the packed arrays
the split stage writes (``loader.source=packed``, no image file opened) or from the image files
(``files``). Training augmentation runs per image with albumentations on the CPU
(``loader.augmentation=albumentations``) or on whole uint8 batches on the training device after the
transfer (``batched``, :mod:`fer_pipeline.data.batch_augment`); ``auto`` picks ``batched`` (about
twice as fast per face as albumentations on a CPU core, and the only one that runs on a GPU), or
albumentations when the faces differ in size.
"""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from fer_pipeline.data.batch_augment import BatchAugment
from fer_pipeline.data.decode import read_image
from fer_pipeline.data.layout import read_info
from fer_pipeline.data.loader_settings import loader_choice_problems
from fer_pipeline.data.packed import load_packed
from fer_pipeline.data.split import SPLITS, read_manifest
from fer_pipeline.data.transforms import build_transform
from fer_pipeline.devices import resolve_device
from fer_pipeline.errors import PipelineError
from fer_pipeline.outputs import MANIFEST


def _random_parts(compose: A.Compose) -> list:
    """The pipeline and every transform in it: albumentations gives each its own generators."""
    parts = [compose]
    for transform in compose.transforms:
        parts += _random_parts(transform) if isinstance(transform, A.BaseCompose) else [transform]
    return parts


def reseed_worker_augmentation(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own augmentation stream, derived from
    torch's per-worker seed (itself derived from the experiment seed), so workers do not repeat
    each other's augmentations and runs stay reproducible."""
    info = get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


class FaceDataset(Dataset):
    """In-memory faces: ``images`` uint8 ``(N, H, W)`` or ``(N, H, W, 3)``, ``labels`` ``(N,)``;
    each item through ``transform`` (albumentations)."""

    def __init__(
        self, images: list[np.ndarray] | np.ndarray, labels: list[int], paths: list[str], transform
    ):
        self.images, self.labels, self.paths, self.transform = images, labels, paths, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.transform(image=self.images[i])["image"]
        return image, self.labels[i]


class BatchedFaces(FaceDataset):
    """Faces fetched a batch at a time (``DataLoader`` calls ``__getitems__`` with a batch's indices):
    ``(uint8 (B, H, W[, 3]), labels (B,))``, left for :class:`BatchAugment` on the device."""

    def __init__(self, images: np.ndarray, labels: list[int], paths: list[str]):
        super().__init__(images, labels, paths, transform=None)
        self.label_tensor = torch.as_tensor(labels, dtype=torch.long)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.asarray(indices)
        return torch.from_numpy(np.ascontiguousarray(self.images[order])), self.label_tensor[order]


def keep_batch(batch):
    """``collate_fn`` for :class:`BatchedFaces`: its ``__getitems__`` already made the batch."""
    return batch


STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


class FERDataModule(pl.LightningDataModule):
    """Loaders over ``faces_dir`` for the rows of ``manifest``.

    Batches are ``(x, y)`` with ``x`` float ``(B, C, input_size, input_size)`` (C = 1 for gray
    faces, 3 for RGB) and ``y`` long ``(B,)``.
    """

    def __init__(
        self,
        faces_dir: str,
        manifest: str,
        input_size: int = 48,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        mean: float = 0.449,
        std: float = 0.226,
        augment: dict | None = None,
        seed: int = 0,
        source: str = "packed",
        augmentation: str = "albumentations",
        pin_memory: bool = False,
    ):
        super().__init__()
        if problems := loader_choice_problems(source, augmentation):
            raise PipelineError("; ".join(problems))
        self.auto_augmentation = augmentation == "auto"
        augmentation = "batched" if self.auto_augmentation else augmentation
        self.source, self.augmentation, self.pin_memory = source, augmentation, pin_memory
        self.seed = seed
        self.faces_dir = Path(faces_dir)
        self.manifest = Path(manifest)
        self.input_size = input_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.mean, self.std = mean, std
        self.augment = dict(augment) if augment else None
        info = read_info(self.faces_dir)
        self.classes: list[str] = list(info["classes"])
        self.dataset_name: str = info.get("name", self.faces_dir.name)
        self.grayscale: bool = info.get("grayscale", True)
        self.splits: dict[str, FaceDataset] = {}
        self.batch_augment = BatchAugment(input_size, mean, std, self.augment, seed)
        self._restored: dict = {}  # augmentation RNG states from a checkpoint, until setup

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` needs (fit: train and val; test/predict: test; None: all)."""
        needed = [s for s in STAGE_SPLITS.get(stage, SPLITS) if s not in self.splits]
        if not needed:
            return
        rows = read_manifest(self.manifest, self.classes)
        plain = build_transform(self.input_size, self.mean, self.std)
        augmented = build_transform(self.input_size, self.mean, self.std, self.augment, self.seed)
        for split in needed:
            chosen = [row for row in rows if row["split"] == split]
            labels, paths = [r["label"] for r in chosen], [r["path"] for r in chosen]
            images = self._images(split, chosen)
            if split == "train" and self.augmentation == "batched" and self.auto_augmentation:
                if len({image.shape for image in images}) > 1:  # faces of several sizes
                    self.augmentation = "albumentations"
            if split == "train" and self.augmentation == "batched":
                self.splits[split] = BatchedFaces(self._stacked(images), labels, paths)
            else:
                transform = augmented if split == "train" else plain
                self.splits[split] = FaceDataset(images, labels, paths, transform)
        self._apply_restored()

    def state_dict(self) -> dict:
        """The training augmentation's RNG states (saved in full checkpoints, so a resumed run
        augments as the unbroken run would have)."""
        state: dict = {
            "batch_augment": {k: g.get_state() for k, g in self.batch_augment._generators.items()}
        }
        train = self.splits.get("train")
        if train is not None and train.transform is not None:
            state["albumentations"] = [
                {"numpy": t.random_generator.bit_generator.state, "python": t.py_random.getstate()}
                for t in _random_parts(train.transform)
            ]
        return state

    def load_state_dict(self, state: dict) -> None:
        self._restored = dict(state)
        self._apply_restored()

    def _apply_restored(self) -> None:
        for key, value in self._restored.pop("batch_augment", {}).items():
            generator = self.batch_augment.generator(torch.device(key))
            generator.set_state(value)
        train = self.splits.get("train")
        if "albumentations" in self._restored and train is not None and train.transform:
            saved = self._restored.pop("albumentations")
            for part, state in zip(_random_parts(train.transform), saved, strict=True):
                part.random_generator.bit_generator.state = state["numpy"]
                version, internal, gauss = state["python"]
                part.py_random.setstate((version, tuple(internal), gauss))

    def _images(self, split: str, rows: list[dict]) -> np.ndarray | list[np.ndarray]:
        if self.source == "packed":
            return load_packed(self.manifest.parent, split, self.manifest)
        return [read_image(self.faces_dir / r["path"], self.grayscale) for r in rows]

    def _stacked(self, images: np.ndarray | list[np.ndarray]) -> np.ndarray:
        if isinstance(images, np.ndarray):
            return images
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise PipelineError(
                f"faces in {self.faces_dir} differ in size ({sorted(shapes)[:3]}): "
                f"loader.augmentation=batched needs one size; use albumentations"
            )
        return np.stack(images)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Batched path: uint8 faces on the device -> augmented (training) and normalised floats."""
        x, y = batch
        if x.dtype == torch.uint8:
            x = self.batch_augment(x, train=self.trainer is None or self.trainer.training)
        return x, y

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.splits[split]
        batched = isinstance(dataset, BatchedFaces)
        return DataLoader(
            dataset,
            collate_fn=keep_batch if batched else None,
            pin_memory=self.pin_memory,
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=reseed_worker_augmentation if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def on_gpu(accelerator: str) -> bool:
    """Whether a trainer with ``accelerator`` trains on a GPU (one that is there)."""
    return resolve_device(accelerator, fallback=True).type == "cuda"


def build_datamodule(cfg) -> FERDataModule:
    """The DataModule of a composed config: ``paths.faces``, the split manifest, ``loader``."""
    loader = dict(cfg.loader)
    gpu = on_gpu(cfg.trainer.accelerator)
    return FERDataModule(
        faces_dir=cfg.paths.faces,
        manifest=str(Path(cfg.paths.split) / MANIFEST),
        seed=cfg.seed,
        pin_memory=gpu,
        **loader,
    )
