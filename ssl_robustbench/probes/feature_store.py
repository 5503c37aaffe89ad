"""Frozen features on disk: fp16 rows (float32 for the k-NN head, whose neighbour order must be DINO's) in a fixed
shuffled order, written and read in bounded chunks.

A store is a folder with ``features.f16`` ([N, D] float16, row-major; ``features.f32`` for a float32 store),
``labels.i64`` ([N] int64) and ``meta.json`` (N, D, dtype, the row permutation's seed), written last, so a folder
without it is an unfinished extraction and is rebuilt. Row ``perm[i]`` holds dataset item ``i`` (``perm`` a seeded
permutation): contiguous chunks are then i.i.d. samples, which minibatch SGD needs, and no reader has to gather rows at
random. Files are written with positional writes and read with plain reads — never memory-mapped — so the resident
memory of extraction and of the probe fit stays bounded by one chunk whatever N is (mapped pages would count in RSS).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ssl_robustbench.errors import UserError, warn
from ssl_robustbench.fileio import atomic_write_json, require_free_space
from ssl_robustbench.progress import track

STORE_VERSION = 1
#: element types a store may hold: name → (numpy dtype, file name)
DTYPES = {"float16": (np.float16, "features.f16"), "float32": (np.float32, "features.f32")}
CHUNK_BYTES = 256 << 20  # float32 bytes of one chunk handed to a reader


def row_permutation(n: int, seed: int = 0) -> np.ndarray:
    """The store position of each dataset item: a seeded permutation of ``range(n)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


class ChunkedFeatures:
    """Features [N, D] with labels, read ``rows`` at a time: the one interface the probe fits on."""

    n: int
    d: int

    def read(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` as float32 features [R, D] and int64 labels [R]."""
        raise NotImplementedError

    def rows_per_chunk(self, chunk_bytes: int = CHUNK_BYTES) -> int:
        return max(1, chunk_bytes // (4 * self.d))

    def num_chunks(self, rows: int | None = None) -> int:
        return -(-self.n // (rows or self.rows_per_chunk()))

    def chunks(self, rows: int | None = None, *, order: torch.Tensor | None = None
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every row once, ``rows`` at a time (default: ~256 MB of float32); ``order`` permutes the chunks."""
        rows = rows or self.rows_per_chunk()
        for i in order.tolist() if order is not None else range(self.num_chunks(rows)):
            yield self.read(i * rows, (i + 1) * rows)

    def load(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All rows in memory (for small sets: k-NN, tests)."""
        return self.read(0, self.n)


class FeatureStore(ChunkedFeatures):
    """Read access to a finished store (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            self.n, self.d = int(meta["n"]), int(meta["d"])
            self.dtype, self.file = DTYPES[meta.get("dtype", "float16")]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"feature store {self.folder} is unreadable ({err}); delete it to extract again") from None
        if self.n < 0 or self.d <= 0:
            raise UserError(f"feature store {self.folder} is unreadable (n={self.n}, d={self.d}); delete it")
        self.itemsize = np.dtype(self.dtype).itemsize
        expected = {self.file: self.n * self.d * self.itemsize, "labels.i64": self.n * 8}
        for name, size in expected.items():
            path = self.folder / name
            if not path.is_file() or path.stat().st_size != size:
                raise UserError(f"feature store {self.folder}: {name} is missing or truncated; delete the folder")

    @staticmethod
    def is_complete(folder: Path) -> bool:
        return (Path(folder) / "meta.json").is_file()

    def read(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` as float32 features [R, D] and int64 labels [R]."""
        stop = min(stop, self.n)
        count = max(0, stop - start)
        with open(self.folder / self.file, "rb") as fh:
            feats = np.fromfile(fh, dtype=self.dtype, count=count * self.d, offset=start * self.d * self.itemsize)
        with open(self.folder / "labels.i64", "rb") as fh:
            labels = np.fromfile(fh, dtype=np.int64, count=count, offset=start * 8)
        return torch.from_numpy(feats.astype(np.float32).reshape(count, self.d)), torch.from_numpy(labels)


class TensorFeatures(ChunkedFeatures):
    """Features already in memory, behind the same chunk interface as ``FeatureStore``."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features.float(), torch.as_tensor(labels).long()
        self.n, self.d = self.features.shape

    def read(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[start:stop], self.labels[start:stop]


class StoreWriter:
    """Preallocates a store's files and writes rows at their permuted positions (any process may write any
    rows; ``finish`` writes ``meta.json``)."""

    def __init__(self, folder: Path, n: int, d: int, *, seed: int = 0, create: bool = True,
                 dtype: str = "float16") -> None:
        self.folder, self.n, self.d, self.seed, self.dtype_name = Path(folder), n, d, seed, dtype
        self.dtype, self.file = DTYPES[dtype]
        self.itemsize = np.dtype(self.dtype).itemsize
        self.perm = row_permutation(n, seed)
        if create:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            for name, size in ((self.file, n * d * self.itemsize), ("labels.i64", n * 8)):
                with open(self.folder / name, "wb") as fh:
                    fh.truncate(size)

    def write(self, items: np.ndarray, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Writes dataset items ``items`` (indices into the dataset) with their features and labels."""
        rows = feats.detach().cpu().numpy().astype(self.dtype)
        if not np.isfinite(rows).all():
            raise UserError(f"backbone features are not finite in {self.dtype_name} (NaN, or beyond its range); "
                            "the checkpoint or its normalization is broken")
        ys = labels.detach().to(torch.int64).cpu().numpy()
        positions = self.perm[items]
        fd_f = os.open(self.folder / self.file, os.O_WRONLY)
        fd_l = os.open(self.folder / "labels.i64", os.O_WRONLY)
        try:
            for row, y, pos in zip(rows, ys, positions, strict=True):
                os.pwrite(fd_f, row.tobytes(), int(pos) * self.d * self.itemsize)
                os.pwrite(fd_l, y.tobytes(), int(pos) * 8)
        finally:
            os.close(fd_f)
            os.close(fd_l)

    def finish(self) -> FeatureStore:
        atomic_write_json(self.folder / "meta.json", {"version": STORE_VERSION, "n": self.n, "d": self.d,
                                                      "dtype": self.dtype_name, "row_permutation_seed": self.seed})
        return FeatureStore(self.folder)


def extract_to_store(
    fn: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset,
    loader: Callable[[Dataset], DataLoader], *, device: torch.device, folder: Path, description: str = "features",
    dtype: str = "float16",
) -> FeatureStore:
    """Runs ``fn`` over ``dataset`` into a store at ``folder`` (reused when complete) of ``dtype`` elements. Under
    torchrun each rank extracts its shard (items ``rank::world``) and writes its own rows; rank 0 creates and
    finishes the store."""
    from ssl_robustbench import distributed as ddp
    from ssl_robustbench.data import float_images

    if FeatureStore.is_complete(folder):
        try:
            return FeatureStore(folder)
        except UserError as error:  # a damaged cache is rebuilt, not a dead end
            warn(f"{error.args[0].split(';')[0]}: extracting the features again")
            if ddp.rank() == 0:
                shutil.rmtree(folder, ignore_errors=True)
            ddp.barrier()
    n = len(dataset)
    if n == 0:
        raise UserError("the probe's training split has no images")
    with torch.inference_mode():
        d = int(fn(float_images(dataset[0][0].unsqueeze(0)).to(device)).shape[1])
    if ddp.rank() == 0:
        size = np.dtype(DTYPES[dtype][0]).itemsize
        require_free_space(folder, n * d * size + n * 8, what=f"the feature store ({n} × {d} {dtype})")
        StoreWriter(folder, n, d, dtype=dtype)
    ddp.barrier()
    writer = StoreWriter(folder, n, d, create=False, dtype=dtype)
    batches = loader(ddp.shard(dataset))
    items = np.arange(ddp.rank(), n, ddp.world_size())
    done = 0
    with torch.inference_mode():
        for x, y in track(batches, total=len(batches), description=description, work=f"{n:,} images"):
            feats = fn(x.to(device, non_blocking=True)).float()
            writer.write(items[done:done + len(feats)], feats, torch.as_tensor(y))
            done += len(feats)
    ddp.barrier()
    if ddp.rank() == 0:
        writer.finish()
    ddp.barrier()
    return FeatureStore(folder)
