"""Fetching the released HP-FashionIQ file (``hpfiq.json``) from its public repository, checked by SHA-256.

The file carries no licence, so the project does not ship it: ``manage.py import_hpfiq --download`` fetches it
into a temporary file and imports it only when its SHA-256 equals the pinned hash of the release.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

#: The file as released with QuRe (ICML 2025): repository jackwaky/QuRe, path HP_FashionIQ/hpfiq.json.
HPFIQ_URL = "https://raw.githubusercontent.com/jackwaky/QuRe/main/HP_FashionIQ/hpfiq.json"
#: SHA-256 of that release (2,629,300 bytes; 61 annotators, 3,050 questions).
HPFIQ_SHA256 = "4806fe16f9304405e6be32fc77427928aa76b92678463a569b61f09830605ca6"
#: Larger answers are cut off: the release is 2.6 MB.
MAX_BYTES = 64 * 1024 * 1024


class HpfiqDownloadError(Exception):
    """The file could not be fetched, or it is not the pinned release; the message says which and why."""


def hpfiq_download(*, url: str = HPFIQ_URL, sha256: str = HPFIQ_SHA256, timeout: float = 60.0) -> Path:
    """Download ``url`` into a temporary file and return its path once its SHA-256 equals ``sha256``.

    The caller deletes the file. Raises :class:`HpfiqDownloadError` for a URL that is not http(s), a failed
    request, an answer over :data:`MAX_BYTES`, or a different hash (the file is then deleted).
    """
    if not url.startswith(("https://", "http://")):
        raise HpfiqDownloadError(f"--url {url!r}: give an http(s) URL")
    expected = sha256.strip().lower()
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(prefix="hpfiq-", suffix=".json", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) checked
                    while chunk := response.read(1 << 16):
                        size += len(chunk)
                        if size > MAX_BYTES:
                            raise HpfiqDownloadError(f"{url}: larger than {MAX_BYTES} bytes; not the released file")
                        digest.update(chunk)
                        handle.write(chunk)
            except urllib.error.HTTPError as exc:
                raise HpfiqDownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise HpfiqDownloadError(f"could not download {url}: {reason}") from None
        got = digest.hexdigest()
        if got != expected:
            raise HpfiqDownloadError(
                f"{url}: SHA-256 is {got} ({size} bytes), expected {expected}; nothing imported. "
                "If the file was changed on purpose, check it and pass its hash with --sha256."
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
