"""Gallery-encoding throughput: the worker path (``encode_image_batches``: decode + preprocess in a
DataLoader, inference mode, autocast on CUDA) against a bare ``model.encode_images(batch)`` loop over
tensors built beforehand, same model, same batch size, same run.

    .venv/bin/python bench/encode_throughput.py [--images 384] [--batch-size 64] [--workers N]
        [--family demo|blip2|clip-base] [--files] [--device auto]

Prints images/s for both and the ratio (goal: worker path >= 0.9x the bare loop), and the images/s of the
DataLoader alone (decode + preprocess, no model) with the same workers. The demo family at its default size
(80x64 input, 4 conv blocks) is the default model; ``--family blip2`` uses the tiny BLIP-2 and
``--family clip-base`` a random zero-shot CLIP of the default ``CLIPConfig()`` size (ViT-B/32-like, 224 px),
loaded through ``models_zoo.load_model`` from a folder written with ``save_pretrained`` (no download).

Without ``--files`` the worker path gets in-memory PIL images (small, 96x128); with ``--files`` it gets the
paths of JPEG files of FashionIQ-like sizes (300-500 px, mostly portrait) written to a temporary folder, as the
retrieval worker passes paths. The bare loop's float tensors are built beforehand (and kept on the device).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from models_zoo.demo import DemoCIR, DemoConfig  # noqa: E402
from models_zoo.encoding import autocast_context, encode_image_batches, resolve_device  # noqa: E402
from models_zoo.preprocess import ImagePreprocessor  # noqa: E402

FAMILIES = ("demo", "blip2", "clip-base")
# (width, height) of the JPEG files: FashionIQ product shots are mostly portrait, a few square or elongated.
FILE_SIZES = ((375, 500), (300, 400), (333, 500), (400, 500), (500, 500), (240, 500))
DISTINCT_FILES = 256  # distinct JPEGs; further files repeat their bytes (decoding costs the same)


def make_images(count: int) -> list[Image.Image]:
    """Deterministic RGB images of FashionIQ-like portrait shapes (some needing target padding)."""
    torch.manual_seed(0)
    images = []
    for index in range(count):
        width, height = (96, 128) if index % 3 else (60, 150)
        array = (torch.rand(height, width, 3) * 255).to(torch.uint8).numpy()
        images.append(Image.fromarray(array, "RGB"))
    return images


def _photo_like(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Smooth colour fields plus mild noise: compresses like a product photo, unlike pure noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8), "RGB")
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = smooth + rng.integers(-12, 13, smooth.shape, dtype=np.int16)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB")


def make_image_files(count: int, folder: str | Path, *, quality: int = 90) -> list[str]:
    """Write ``count`` deterministic JPEG files of FashionIQ-like sizes (``FILE_SIZES``) into ``folder``.

    Returns their paths as strings, as the retrieval worker passes them to ``encode_image_batches``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    blobs = []
    for index in range(min(count, DISTINCT_FILES)):
        buffer = io.BytesIO()
        _photo_like(*FILE_SIZES[index % len(FILE_SIZES)], rng).save(buffer, "JPEG", quality=quality)
        blobs.append(buffer.getvalue())
    paths = []
    for index in range(count):
        path = folder / f"img-{index:06d}.jpg"
        path.write_bytes(blobs[index % len(blobs)])
        paths.append(str(path))
    return paths


def make_clip_base(folder: str | Path, *, seed: int = 0) -> Path:
    """A random CLIP of the default ``CLIPConfig()`` size (ViT-B/32 vision tower, 224 px, 512-d projection)
    with the offline byte-level tokenizer of ``models_zoo.tiny``, saved as a Hugging Face folder."""
    from transformers import CLIPConfig, CLIPModel

    from models_zoo.tiny import _write_clip_tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _write_clip_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(text_config=dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos))
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    return folder


def build_model(family: str):
    if family == "demo":
        return DemoCIR(DemoConfig(vocab=["<pad>", "<unk>", "red"]))
    from models_zoo import load_model

    if family == "clip-base":
        return load_model("clip_zeroshot", make_clip_base(tempfile.mkdtemp(prefix="clip-base-")))
    from models_zoo.tiny import make_tiny_blip2

    return load_model("blip2_cir", make_tiny_blip2(tempfile.mkdtemp()))


class _Pixels(Dataset):
    """uint8 pixels of each image (the worker path's per-image step), for the loader-only rate."""

    def __init__(self, images: Sequence, preprocessor: ImagePreprocessor):
        self.images, self.preprocessor = images, preprocessor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.preprocessor.uint8(self.images[index])


def _pixel_loader(images: Sequence, preprocessor: ImagePreprocessor, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(
        _Pixels(images, preprocessor),
        batch_size=batch_size,
        num_workers=workers,
        prefetch_factor=4 if workers > 0 else None,
    )


def prebuilt_batches(model, images: Sequence, *, batch_size: int, device: torch.device) -> list[torch.Tensor]:
    """The model's float pixel batches of ``images``, normalised and resident on ``device``."""
    workers = min(8, os.cpu_count() or 1) if len(images) > batch_size else 0
    preprocessor = model.image_preprocessor
    return [preprocessor.normalise(b.to(device)) for b in _pixel_loader(images, preprocessor, batch_size, workers)]


def bare_loop(model, batches: list[torch.Tensor], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode(), autocast_context(device):
        for batch in batches:
            model.encode_images(batch.to(device, non_blocking=True)).float().cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def loader_only(model, images: Sequence, *, batch_size: int, workers: int) -> float:
    """Seconds for the DataLoader alone (decode + preprocess to uint8 batches), no model, no device copy."""
    start = time.perf_counter()
    for _ in _pixel_loader(images, model.image_preprocessor, batch_size, workers):
        pass
    return time.perf_counter() - start


def measure_throughput(
    model, images: Sequence, *, batch_size: int, device: torch.device, workers: int, repeats: int = 3
) -> dict[str, float]:
    """Best-of-``repeats`` images/s of the bare loop and of ``encode_image_batches`` with ``workers``.

    ``images`` are PIL images or file paths (as the worker path takes). Moves ``model`` to ``device``
    (eval mode). Returns ``{"bare", "worker", "ratio": worker/bare, "loader": DataLoader-only images/s}``.
    """
    model = model.to(device).eval()
    batches = prebuilt_batches(model, images, batch_size=batch_size, device=device)

    bare_loop(model, batches[:2], device)  # warm-up
    encode_image_batches(model, images[:batch_size], batch_size=batch_size, device=device)
    bare_times, worker_times = [], []
    for _ in range(repeats):  # interleaved, best of N, so background load hits both alike
        bare_times.append(bare_loop(model, batches, device))
        start = time.perf_counter()
        encode_image_batches(model, images, batch_size=batch_size, device=device, num_workers=workers)
        if device.type == "cuda":
            torch.cuda.synchronize()
        worker_times.append(time.perf_counter() - start)
    loader_seconds = loader_only(model, images, batch_size=batch_size, workers=workers)
    del batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    bare_rate = len(images) / min(bare_times)
    worker_rate = len(images) / min(worker_times)
    return {
        "bare": bare_rate,
        "worker": worker_rate,
        "ratio": worker_rate / bare_rate,
        "loader": len(images) / loader_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, 4 on CUDA)")
    parser.add_argument("--family", choices=FAMILIES, default="demo")
    parser.add_argument("--files", action="store_true", help="JPEG files of FashionIQ-like sizes, passed as paths")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.workers is None:  # on a small CPU box, worker processes compete with torch for the same cores
        args.workers = 4 if device.type == "cuda" else 0
    with tempfile.TemporaryDirectory(prefix="encode-throughput-") as tmp:
        images = make_image_files(args.images, tmp) if args.files else make_images(args.images)
        rates = measure_throughput(
            build_model(args.family),
            images,
            batch_size=args.batch_size,
            device=device,
            workers=args.workers,
            repeats=args.repeats,
        )
    print(
        f"device={device} family={args.family} images={args.images} files={args.files} "
        f"batch_size={args.batch_size} workers={args.workers} threads={torch.get_num_threads()}"
    )
    print(f"bare model.encode_images loop (pre-built tensors): {rates['bare']:8.1f} images/s")
    print(f"encode_image_batches (decode+preprocess+encode):  {rates['worker']:8.1f} images/s")
    print(f"DataLoader alone (decode+preprocess, no model):   {rates['loader']:8.1f} images/s")
    print(f"ratio worker/bare: {rates['ratio']:.3f}  (goal >= 0.90)")


if __name__ == "__main__":
    main()
