import os

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from models_zoo import CheckpointError
from models_zoo.checkpoints import (
    checkpoint_fingerprint,
    load_checkpoint_file,
    load_state_dict_checked,
    load_state_dict_file,
)


class _Evil:
    """Unpickling this would create the file at ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_it_refuses_a_pickle_that_would_run_code_and_runs_nothing(tmp_path):
    side_effect = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Evil(side_effect)}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    assert "evil.pt" in str(info.value)
    assert "refused" in str(info.value)
    assert not side_effect.exists()


def test_it_loads_a_plain_state_dict_pickle_and_a_lavis_style_wrapper(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save({"model": {"a": torch.ones(2)}, "epoch": 3}, path)
    assert torch.equal(load_state_dict_file(path)["a"], torch.ones(2))


def test_it_reports_a_truncated_safetensors_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.randn(64, 64)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        load_checkpoint_file(path)


def test_it_reports_a_truncated_pickle(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"a": torch.randn(64, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.pt"):
        load_checkpoint_file(path)


def test_it_rejects_an_unknown_extension_an_oversized_file_and_a_missing_file(tmp_path):
    other = tmp_path / "weights.pkl"
    other.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported extension '.pkl'"):
        load_checkpoint_file(other)
    big = tmp_path / "big.safetensors"
    save_file({"a": torch.zeros(1000)}, str(big))
    with pytest.raises(CheckpointError, match="over the limit"):
        load_checkpoint_file(big, max_bytes=100)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_file(tmp_path / "absent.pt")


def test_wrong_keys_and_shapes_are_named_with_counts():
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = {k: v.clone() for k, v in module.state_dict().items()}
    del state["1.bias"]
    state["0.weight"] = torch.zeros(5, 3)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_checked(module, state, source="ckpt.safetensors")
    message = str(info.value)
    assert "ckpt.safetensors" in message
    assert "1 missing keys: 1.bias" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "0.weight: checkpoint (5, 3) vs model (4, 3)" in message


def test_a_matching_state_dict_loads_and_long_lists_are_shortened():
    module = nn.Linear(3, 4)
    target = {k: torch.full_like(v, 2.0) for k, v in module.state_dict().items()}
    load_state_dict_checked(module, target)
    assert torch.equal(module.weight, torch.full((4, 3), 2.0))
    with pytest.raises(CheckpointError, match=r"7 unexpected keys: .*\(2 more\)"):
        load_state_dict_checked(module, {**target, **{f"x{i}": torch.zeros(1) for i in range(7)}})


def test_fingerprint_changes_when_the_file_changes(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"a": torch.zeros(3)}, str(path))
    first = checkpoint_fingerprint(path)
    save_file({"a": torch.ones(3)}, str(path))
    os.utime(path, ns=(1, 1))
    assert checkpoint_fingerprint(path) != first


def zip_bomb(path, *, unpacked_mib: int = 64):
    """A torch.save archive of a zeros tensor of ``unpacked_mib`` MiB, its members re-zipped with deflate:
    a file of a few hundred KiB that torch.load inflates to the full size."""
    import zipfile

    plain = path.with_suffix(".plain")
    torch.save({"w": torch.zeros(unpacked_mib * 1024**2 // 4)}, plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    plain.unlink()
    return path


def test_a_zip_bomb_checkpoint_is_refused_before_it_is_inflated(tmp_path):
    bomb = zip_bomb(tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 1024**2
    with pytest.raises(CheckpointError, match=r"refused before loading: .*unpack to \d+ bytes, over the limit"):
        load_checkpoint_file(bomb)
    # Stored members (torch.save's own way) of the same size load.
    torch.save({"w": torch.zeros(1024)}, tmp_path / "plain.pt")
    assert load_checkpoint_file(tmp_path / "plain.pt")["w"].shape == (1024,)
    # The absolute bound passed in counts too (members declaring 4 KiB against a limit of 1,000 bytes).
    from models_zoo.archives import ArchiveError, check_zip_archive

    with pytest.raises(ArchiveError, match="over the limit of 1000 bytes"):
        check_zip_archive(tmp_path / "plain.pt", name="plain.pt", max_unpacked_bytes=1000)
