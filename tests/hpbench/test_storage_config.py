"""STORAGES from the environment: a folder by default, an S3-compatible bucket on request, loud on bad values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from hpbench.storage_config import S3_BACKEND, storages_from_env


def test_media_is_the_media_root_folder_when_nothing_is_set():
    storages = storages_from_env({})
    assert storages["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert "staticfiles" in storages


def test_s3_takes_the_bucket_endpoint_region_prefix_and_credentials_from_the_environment():
    options = storages_from_env({
        "HPBENCH_STORAGE": "S3", "AWS_STORAGE_BUCKET_NAME": "media", "AWS_S3_ENDPOINT_URL": "https://s3.example.org",
        "AWS_S3_REGION_NAME": "eu-west-1", "AWS_LOCATION": "/hpbench/", "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    })["default"]
    assert options["BACKEND"] == S3_BACKEND
    assert options["OPTIONS"] == {
        "bucket_name": "media", "endpoint_url": "https://s3.example.org", "region_name": "eu-west-1",
        "location": "hpbench", "default_acl": None, "querystring_auth": True, "file_overwrite": True,
        "access_key": "key", "secret_key": "secret",
    }


def test_s3_without_keys_leaves_the_credentials_to_boto3():
    options = storages_from_env({"HPBENCH_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "media"})["default"]["OPTIONS"]
    assert "access_key" not in options and options["endpoint_url"] is None


@pytest.mark.parametrize(("env", "named"), [
    ({"HPBENCH_STORAGE": "nfs"}, "HPBENCH_STORAGE='nfs'"),
    ({"HPBENCH_STORAGE": "s3"}, "AWS_STORAGE_BUCKET_NAME"),
    ({"HPBENCH_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "b", "AWS_S3_ENDPOINT_URL": "minio:9000"},
     "AWS_S3_ENDPOINT_URL='minio:9000'"),
])
def test_a_bad_storage_setting_names_the_variable(env, named):
    with pytest.raises(ImproperlyConfigured, match=named.replace("'", ".")):
        storages_from_env(env)
