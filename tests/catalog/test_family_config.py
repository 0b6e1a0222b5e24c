"""Researchers' config: a schema per family, no paths, no limits; server paths come from registered base models."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.family_config import (
    ConfigError,
    base_model_register,
    config_for_loading,
    researcher_config_clean,
)
from hpbench.catalog.models import BaseModel, ModelEntry
from hpbench.catalog.services import RegistrationError, model_entry_register
from hpbench.leaderboard.models import Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip_base(tmp_path) -> BaseModel:
    folder = tmp_path / "clip-vit-b32"
    folder.mkdir()
    return base_model_register(name="clip-vit-b32", family="clip4cir", paths={"clip_folder": str(folder)})


def _submit(user, config: dict, family: str = "clip4cir"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    return client.post("/api/leaderboard/submissions", {"family": family, "file": upload, "config": json.dumps(config)},
                       format="multipart")


@pytest.mark.parametrize(
    ("config", "key", "words"),
    [
        ({"clip_folder": "/srv/other-researcher/clip"}, "clip_folder", "server paths cannot be given"),
        ({"clip_checkpoint": "/srv/media/checkpoints/2026/11/theirs.pt"}, "clip_checkpoint", "server paths"),
        ({"tokenizer_folder": "/etc"}, "tokenizer_folder", "server paths"),
        ({"max_bytes": 10**12}, "max_bytes", "a platform limit"),
        ({"projection_dim": "640"}, "projection_dim", "expected a number"),
        ({"hidden_dim": 10**9}, "hidden_dim", "outside [1, 16384]"),
        ({"pad_ratio": float("nan")}, "pad_ratio", "finite"),
        ({"colour": "red"}, "colour", "unknown for clip4cir (accepted keys: base_model, pad_ratio"),
        ({"base_model": "nope"}, "base_model", "no base model named 'nope'"),
    ],
)
def test_a_researcher_config_with_a_path_a_limit_or_an_unknown_key_is_refused_naming_the_key(
    researcher, config, key, words
):
    with pytest.raises(ConfigError) as caught:
        researcher_config_clean(family="clip4cir", config=config)
    assert caught.value.key == key and f"{key!r}" in str(caught.value) and words in str(caught.value)
    response = _submit(researcher, config)
    assert response.status_code == 400 and f"config key {key!r}" in response.json()["detail"]
    assert Submission.objects.count() == 0 and ModelEntry.objects.count() == 0


def test_a_family_without_base_models_refuses_base_model_and_paths_alike(researcher):
    with pytest.raises(ConfigError, match="'base_model': unknown for clip_zeroshot"):
        researcher_config_clean(family="clip_zeroshot", config={"base_model": "x"})
    with pytest.raises(ConfigError, match="'vit_checkpoint': server paths cannot be given"):
        researcher_config_clean(family="blip2_cir", config={"vit_checkpoint": "/models/eva.pth"})
    with pytest.raises(ConfigError, match="accepted keys: none"):
        researcher_config_clean(family="demo", config={"dim": 8})


def test_a_researcher_chooses_a_base_model_by_name_and_the_worker_gets_its_paths(researcher, clip_base):
    response = _submit(researcher, {"base_model": "clip-vit-b32", "pad_ratio": 1.25, "hidden_dim": 640})
    assert response.status_code == 201, response.content
    assert response.json()["config"] == {"base_model": "clip-vit-b32", "pad_ratio": 1.25, "hidden_dim": 640}
    entry = Submission.objects.get().model
    loading = config_for_loading(entry=entry)
    assert loading == {"pad_ratio": 1.25, "hidden_dim": 640, "clip_folder": clip_base.paths["clip_folder"],
                       "max_bytes": 2 * 1024**3}


def test_a_stored_config_with_a_path_never_reaches_a_loader(researcher, clip_base):
    """Rows written before the schema existed (or edited behind its back) are checked again by the worker."""
    response = _submit(researcher, {"base_model": "clip-vit-b32"})
    entry = Submission.objects.get(pk=response.json()["id"]).model
    ModelEntry.objects.filter(pk=entry.pk).update(config={"base_model": "clip-vit-b32", "clip_folder": "/srv/x",
                                                          "max_bytes": 10**13})
    entry.refresh_from_db()
    with pytest.raises(ConfigError, match="'clip_folder'|'max_bytes'"):
        config_for_loading(entry=entry)
    # A base model's paths win over anything a submission's config could say.
    ModelEntry.objects.filter(pk=entry.pk).update(config={"base_model": "clip-vit-b32"})
    entry.refresh_from_db()
    assert config_for_loading(entry=entry)["clip_folder"] == clip_base.paths["clip_folder"]


def test_staff_registered_models_keep_giving_paths_and_may_name_a_base_model(tmp_path, clip_base):
    folder = tmp_path / "own-clip"
    folder.mkdir()
    entry = model_entry_register(name="staff-model", family="clip4cir", config={"clip_folder": str(folder),
                                                                              "max_bytes": 123})
    assert config_for_loading(entry=entry) == {"clip_folder": str(folder), "max_bytes": 123}
    named = model_entry_register(name="staff-named", family="clip4cir", config={"base_model": "clip-vit-b32"})
    assert config_for_loading(entry=named) == {"clip_folder": clip_base.paths["clip_folder"]}
    with pytest.raises(RegistrationError, match="no base model named 'missing'"):
        model_entry_register(name="staff-bad", family="clip4cir", config={"base_model": "missing"})


def test_base_models_are_registered_by_command_with_checked_paths(tmp_path):
    vocab = tmp_path / "bert-base-uncased"
    vocab.mkdir()
    out = io.StringIO()
    call_command("register_base_model", "bert-base-uncased", "--family", "blip2_cir",
                 "--path", f"tokenizer_folder={vocab}", "--json", stdout=out)
    assert json.loads(out.getvalue())["paths"] == {"tokenizer_folder": str(vocab)}
    with pytest.raises(CommandError, match="'tokenizer_folder': .*/missing: no such file or folder"):
        call_command("register_base_model", "x", "--family", "blip2_cir", "--path",
                     f"tokenizer_folder={tmp_path / 'missing'}", stdout=io.StringIO())
    with pytest.raises(CommandError, match="'clip_folder': not a file blip2_cir takes"):
        call_command("register_base_model", "x", "--family", "blip2_cir", "--path", f"clip_folder={vocab}",
                     stdout=io.StringIO())
    with pytest.raises(CommandError, match="relative: is not an absolute path|is not an absolute path"):
        call_command("register_base_model", "x", "--family", "clip4cir", "--path", "clip_folder=relative",
                     stdout=io.StringIO())
    assert list(BaseModel.objects.values_list("name", flat=True)) == ["bert-base-uncased"]


def test_the_admin_registers_a_base_model_and_refuses_a_path_key_the_family_does_not_take(
    staff_user, client, tmp_path
):
    client.force_login(staff_user)
    folder = tmp_path / "clip"
    folder.mkdir()
    refused = client.post("/admin/catalog/basemodel/add/", {
        "name": "bad", "family": "clip4cir", "paths": json.dumps({"tokenizer_folder": str(folder)}),
        "description": "",
    })
    assert refused.status_code == 200 and "not a file clip4cir takes" in refused.content.decode()
    added = client.post("/admin/catalog/basemodel/add/", {
        "name": "clip", "family": "clip4cir", "paths": json.dumps({"clip_folder": str(folder)}), "description": "",
    })
    assert added.status_code == 302
    assert BaseModel.objects.get(name="clip").paths == {"clip_folder": str(folder)}


@pytest.mark.parametrize(
    ("text", "words"),
    [("[" * 5000 + "]" * 5000, "nested too deeply"), ("[1, 2]", "expected a JSON object"),
     ("{'a': 1}", "not valid JSON"), ('{"pad_ratio": 1.5' + " " * 10_000 + "}", "over the limit of 10000")],
)
def test_config_text_that_is_not_a_small_json_object_gets_a_400_from_the_api_and_the_form(researcher, client, text,
                                                                                         words):
    client_api = APIClient()
    client_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=researcher)[0].key}")
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    response = client_api.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": upload, "config": text},
                               format="multipart")
    assert response.status_code == 400 and words in response.json()["config"][0]
    client.force_login(researcher)
    upload = SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))
    page = client.post("/submissions/", {"family": "clip4cir", "file": upload, "config": text})
    assert page.status_code == 400 and words in page.content.decode()
    assert Submission.objects.count() == 0
