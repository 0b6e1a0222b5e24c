"""``python manage.py submit --url URL --token TOKEN --family F --file CKPT [...]``: upload a checkpoint to a
hpbench server with a progress bar (httpx streaming + tqdm), then print the submission."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

CHUNK = 1 << 20


def multipart_body(
    fields: dict[str, str], file_path: Path, *, boundary: str, on_chunk=None
) -> tuple[int, Iterator[bytes]]:
    """(total length, chunks) of a multipart/form-data body whose file part is streamed from disk."""
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_path.name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + file_path.stat().st_size + len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        with file_path.open("rb") as handle:
            while block := handle.read(CHUNK):
                if on_chunk is not None:
                    on_chunk(len(block))
                yield block
        yield tail

    return total, chunks()


class Command(BaseCommand):
    help = "Submit a checkpoint to a hpbench server (token auth) with an upload progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", required=True, help="Server root, e.g. https://hpbench.example.org")
        parser.add_argument("--token", default=os.environ.get("HPBENCH_TOKEN", ""),
                            help="API token (default: $HPBENCH_TOKEN)")
        parser.add_argument("--family", required=True)
        parser.add_argument("--variant", default="")
        parser.add_argument("--config", default="", help="JSON object, or @file.json")
        parser.add_argument("--file", required=True, help=".safetensors or official .pt checkpoint")
        parser.add_argument("--description", default="")
        parser.add_argument("--link", default="")
        parser.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **options) -> None:
        import httpx
        from tqdm import tqdm

        if not options["token"]:
            raise CommandError("--token: required (or set HPBENCH_TOKEN)")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"--file {path}: no such file")
        config = options["config"]
        if config.startswith("@"):
            config = Path(config[1:]).read_text()
        fields = {"family": options["family"], "variant": options["variant"], "config": config,
                  "description": options["description"], "link": options["link"]}
        boundary = uuid.uuid4().hex
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"uploading {path.name}",
                  file=self.stderr) as bar:
            length, body = multipart_body(fields, path, boundary=boundary, on_chunk=bar.update)
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
