"""The family registry the submit page reads: every family and variant of the zoo, and nothing else."""

from models_zoo import FAMILIES, VARIANTS
from models_zoo.registry import FAMILY_INFO, uploadable_families


def test_it_describes_every_family_and_variant_of_the_zoo_in_the_zoos_order():
    assert set(FAMILY_INFO) == set(FAMILIES)
    for name, info in FAMILY_INFO.items():
        assert tuple(info.variants) == VARIANTS[name]
        assert info.default_variant == VARIANTS[name][0]
        assert all(text.strip() for text in info.variants.values())


def test_families_that_load_from_one_file_or_an_archived_folder_are_uploadable():
    assert [f.name for f in uploadable_families()] == ["clip4cir", "blip2_cir", "demo"]
    assert FAMILY_INFO["demo"].folder_files == ("config.json", "model.safetensors")
    assert not FAMILY_INFO["clip_zeroshot"].uploadable
