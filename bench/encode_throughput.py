"""Gallery-encoding throughput: the worker path (``encode_image_batches``: decode + preprocess in a
DataLoader, inference mode, autocast on CUDA) against a bare ``model.encode_images(batch)`` loop over
tensors built beforehand, same model, same batch size, same run.

    .venv/bin/python bench/encode_throughput.py [--images 384] [--batch-size 64] [--workers N]
        [--family demo] [--device auto]

Prints images/s for both and the ratio (goal: worker path >= 0.9x the bare loop). The demo family at its
default size (80x64 input, 4 conv blocks) is the default model; ``--family blip2`` uses the tiny BLIP-2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from models_zoo.demo import DemoCIR, DemoConfig  # noqa: E402
from models_zoo.encoding import autocast_context, encode_image_batches, resolve_device  # noqa: E402


def make_images(count: int) -> list[Image.Image]:
    """Deterministic RGB images of FashionIQ-like portrait shapes (some needing target padding)."""
    torch.manual_seed(0)
    images = []
    for index in range(count):
        width, height = (96, 128) if index % 3 else (60, 150)
        array = (torch.rand(height, width, 3) * 255).to(torch.uint8).numpy()
        images.append(Image.fromarray(array, "RGB"))
    return images


def build_model(family: str):
    if family == "demo":
        return DemoCIR(DemoConfig(vocab=["<pad>", "<unk>", "red"]))
    from models_zoo import load_model
    from models_zoo.tiny import make_tiny_blip2

    return load_model("blip2_cir", make_tiny_blip2(tempfile.mkdtemp()))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, 4 on CUDA)")
    parser.add_argument("--family", choices=["demo", "blip2"], default="demo")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.workers is None:  # on a small CPU box, worker processes compete with torch for the same cores
        args.workers = 4 if device.type == "cuda" else 0
    model = build_model(args.family).to(device).eval()
    images = make_images(args.images)
    pixels = model.preprocess(images)
    batches = [pixels[i : i + args.batch_size] for i in range(0, len(pixels), args.batch_size)]
    if device.type == "cuda":
        batches = [b.pin_memory() for b in batches]

    bare_loop(model, batches[:1], device)  # warm-up
    encode_image_batches(model, images[: args.batch_size], batch_size=args.batch_size, device=device)
    bare_times, worker_times = [], []
    for _ in range(args.repeats):  # interleaved, best of N, so background load hits both alike
        bare_times.append(bare_loop(model, batches, device))
        start = time.perf_counter()
        encode_image_batches(model, images, batch_size=args.batch_size, device=device, num_workers=args.workers)
        if device.type == "cuda":
            torch.cuda.synchronize()
        worker_times.append(time.perf_counter() - start)
    bare_rate = args.images / min(bare_times)
    worker_rate = args.images / min(worker_times)
    print(
        f"device={device} family={args.family} images={args.images} batch_size={args.batch_size} "
        f"workers={args.workers} threads={torch.get_num_threads()}"
    )
    print(f"bare model.encode_images loop (pre-built tensors): {bare_rate:8.1f} images/s")
    print(f"encode_image_batches (decode+preprocess+encode):  {worker_rate:8.1f} images/s")
    print(f"ratio worker/bare: {worker_rate / bare_rate:.3f}  (goal >= 0.90)")


if __name__ == "__main__":
    main()
