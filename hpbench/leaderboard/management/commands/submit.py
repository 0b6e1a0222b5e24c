"""``python manage.py submit --url URL --token TOKEN --family F --file CKPT [--vit-checkpoint VIT] [...]``: upload a
checkpoint (with QuRe's ViT file where it has none) to a hpbench server with a progress bar (httpx streaming +
tqdm), then print the submission.
``submit --url URL --token TOKEN --scores FILE [--scores FILE ...]`` uploads score files instead (a model that
runs elsewhere; see ``hpbench/leaderboard/scorefiles.py``)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

CHUNK = 1 << 20


def multipart_body(
    fields: dict[str, str], files: list[tuple[str, Path]], *, boundary: str, on_chunk=None
) -> tuple[int, Iterator[bytes]]:
    """(total length, chunks) of a multipart/form-data body whose file parts (``(field, path)``) are streamed
    from disk."""
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    parts = [
        ((f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n'
          "Content-Type: application/octet-stream\r\n\r\n").encode(), path)
        for field, path in files
    ]
    tail = f"--{boundary}--\r\n".encode()
    total = len(head) + sum(len(part) + path.stat().st_size + 2 for part, path in parts) + len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        for part, path in parts:
            yield part
            with path.open("rb") as handle:
                while block := handle.read(CHUNK):
                    if on_chunk is not None:
                        on_chunk(len(block))
                    yield block
            yield b"\r\n"
        yield tail

    return total, chunks()


def _tar_folder(folder: Path) -> Path:
    """An uncompressed tar of the folder's regular files (no links), in a temporary folder, named after it."""
    import tarfile
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="hpbench-submit-")) / f"{folder.name}.tar"
    with tarfile.open(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return target


class Command(BaseCommand):
    help = "Submit a checkpoint to a hpbench server (token auth) with an upload progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", required=True, help="Server root, e.g. https://hpbench.example.org")
        parser.add_argument("--token", default=os.environ.get("HPBENCH_TOKEN", ""),
                            help="API token (default: $HPBENCH_TOKEN)")
        parser.add_argument("--family", default="", help="the checkpoint's family (with --file)")
        parser.add_argument("--variant", default="")
        parser.add_argument("--config", default="", help="JSON object, or @file.json")
        parser.add_argument("--file", default="", help=".safetensors or official .pt checkpoint; for a folder-shaped "
                            "family (demo) the folder itself (sent as one .tar) or a .zip/.tar of it")
        parser.add_argument("--vit-checkpoint", default="",
                            help="blip2_cir (QuRe clip_L) only: the ViT file (clip_vit_L.pth) for a checkpoint "
                                 "without ViT weights, uploaded with it")
        parser.add_argument("--scores", action="append", default=[],
                            help="a score file (.jsonl/.parquet relevance, .json rankings) instead of a checkpoint; "
                                 "repeat for several")
        parser.add_argument("--description", default="")
        parser.add_argument("--link", default="")
        parser.add_argument("--name", default="", help="the model's name on the leaderboard (unique)")
        parser.add_argument("--paper-url", default="")
        parser.add_argument("--code-url", default="")
        parser.add_argument("--licence", default="")
        parser.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **options) -> None:
        import httpx
        from tqdm import tqdm

        if not options["token"]:
            raise CommandError("--token: required (or set HPBENCH_TOKEN)")
        if bool(options["scores"]) == bool(options["file"]):
            raise CommandError("give either --file (a checkpoint, with --family) or --scores (score files)")
        identity = {"name": options["name"], "paper_url": options["paper_url"], "code_url": options["code_url"],
                    "licence": options["licence"]}
        if options["scores"]:
            files = [("scores", Path(p)) for p in options["scores"]]
            fields = {"description": options["description"], "link": options["link"], **identity}
        else:
            if not options["family"]:
                raise CommandError("--family: required with --file")
            checkpoint = Path(options["file"])
            if checkpoint.is_dir():  # a folder-shaped checkpoint travels as one tar of its files
                checkpoint = _tar_folder(checkpoint)
            files = [("file", checkpoint)]
            if options["vit_checkpoint"]:
                files.append(("vit_checkpoint", Path(options["vit_checkpoint"])))
            config = options["config"]
            if config.startswith("@"):
                config = Path(config[1:]).read_text()
            fields = {"family": options["family"], "variant": options["variant"], "config": config,
                      "description": options["description"], "link": options["link"], **identity}
        for _, path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        boundary = uuid.uuid4().hex
        label = ", ".join(path.name for _, path in files)
        with tqdm(total=sum(path.stat().st_size for _, path in files), unit="B", unit_scale=True,
                  desc=f"uploading {label}", file=self.stderr) as bar:
            length, body = multipart_body(fields, files, boundary=boundary, on_chunk=bar.update)
            try:
                response = httpx.post(
                    options["url"].rstrip("/") + "/api/leaderboard/submissions",
                    content=body,
                    headers={"Authorization": f"Token {options['token']}", "Content-Length": str(length),
                             "Content-Type": f"multipart/form-data; boundary={boundary}"},
                    timeout=options["timeout"],
                )
            except httpx.HTTPError as exc:
                raise CommandError(f"upload to {options['url']} failed: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"detail": response.text[:500]}
        if response.status_code != 201:
            raise CommandError(f"server refused the submission ({response.status_code}): {json.dumps(payload)}")
        self.stdout.write(json.dumps(payload, indent=2))
