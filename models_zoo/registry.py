"""What each model family and variant is, in words a researcher reads before submitting (no torch, no Django).

One source for the "Submit a model" page, the submission form's drop-downs and the docs: every family of
``models_zoo.FAMILIES`` and every variant of ``models_zoo.VARIANTS`` has an entry here (a test checks both
ways). ``uploadable`` says whether a researcher can submit the family: as one checkpoint file, or, for a family
whose checkpoint is a folder (``folder_files``: the demo's config + weights), as one .zip/.tar archive of that
folder. A Hugging Face CLIP folder is registered by staff instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models_zoo import VARIANTS


@dataclass(frozen=True)
class FamilyInfo:
    """A family as the submit page shows it."""

    name: str
    title: str
    paper: str
    checkpoint: str
    uploadable: bool
    variants: dict[str, str] = field(default_factory=dict)  # variant -> what it computes, in VARIANTS' order
    #: A folder-shaped checkpoint: the files its archive must hold (uploaded as one .zip or .tar).
    folder_files: tuple[str, ...] = ()

    @property
    def default_variant(self) -> str:
        return VARIANTS[self.name][0]


FAMILY_INFO: dict[str, FamilyInfo] = {
    info.name: info
    for info in (
        FamilyInfo(
            name="clip4cir",
            title="CLIP4Cir (a Combiner on CLIP features)",
            paper="Baldrati et al., “Effective conditioned and composed image retrieval combining CLIP-based "
                  "features” (CVPR 2022) and its TOMM 2023 extension; code: ABaldrati/CLIP4Cir",
            checkpoint="CLIP4Cir's released .pt file holding both keys {\"Combiner\": …, \"CLIP\": …} (the "
                       "fine-tuned CLIP, or OpenAI's pretrained state dict), saved with torch.save and read "
                       "with weights_only=True. Any OpenAI CLIP (RN50, RN101, RN50x4, RN50x16, ViT-B/32, "
                       "ViT-B/16, ViT-L/14): the architecture is read from the state dict. The tokenizer is "
                       "OpenAI's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz), which the platform holds: on its "
                       "workers, or in a base model chosen by name.",
            uploadable=True,
            variants={"combiner": "The query is the Combiner's fusion of the reference image's and the text's "
                                  "CLIP features; gallery images are CLIP image features; cosine score."},
        ),
        FamilyInfo(
            name="blip2_cir",
            title="BLIP-2 Q-Former composed retrieval (QuRe, SPRC)",
            paper="QuRe: Kwak et al., ICML 2025 (jackwaky/QuRe); SPRC: Bai et al., ICLR 2024 (chunmeifeng/SPRC)",
            checkpoint="The released LAVIS state dict (.pth/.pt from torch.save(model.state_dict()), or "
                       ".safetensors): QuRe's clip_L ViT-L/14 backbone or SPRC's EVA ViT-g, with the Q-Former, "
                       "vision_proj and text_proj. Sizes are read from the tensors. The text tokenizer is "
                       "bert-base-uncased's vocab.txt: choose the base model that holds it (config base_model).",
            uploadable=True,
            variants={
                "qure": "QuRe's query: the query tokens and the text pass through the Q-Former together, "
                        "attending to the reference image; mean-pooled text_proj outputs. Score: max over the "
                        "gallery image's query tokens.",
                "sprc": "SPRC's query: the same first pass, then a second text pass prompted by its outputs; "
                        "the [CLS] output through text_proj. Score: max over the gallery image's query tokens.",
            },
        ),
        FamilyInfo(
            name="clip_zeroshot",
            title="Zero-shot CLIP baselines",
            paper="Radford et al., “Learning transferable visual models from natural language supervision” "
                  "(ICML 2021)",
            checkpoint="A Hugging Face CLIP folder (config.json, weights, tokenizer files); a folder cannot be "
                       "uploaded, so staff register these baselines (manage.py register_model).",
            uploadable=False,
            variants={
                "sum": "normalise(image + text) on CLIP's projected features (CLIP4Cir's element-wise-sum "
                       "baseline).",
                "mean": "normalise(normalise(image) + normalise(text)).",
                "image": "The reference image's features alone (ignores the text).",
                "text": "The text's features alone (ignores the reference image).",
            },
        ),
        FamilyInfo(
            name="demo",
            title="The demo model (hpbench's generated demo dataset)",
            paper="hpbench's own small model, trained by manage.py train_model on the demo dataset",
            checkpoint="A folder with config.json (vocabulary and sizes) and model.safetensors (as "
                       "manage.py train_model writes it), uploaded as one .zip or .tar archive of the folder; "
                       "checked (member names and sizes, both files present) while the upload waits.",
            uploadable=True,
            folder_files=("config.json", "model.safetensors"),
            variants={
                "combiner": "A learned combination of the image and text features.",
                "image": "The reference image's features alone.",
                "text": "The text's features alone.",
                "sum": "normalise(normalise(image) + normalise(text)).",
            },
        ),
    )
}


def uploadable_families() -> list[FamilyInfo]:
    """The families a researcher can submit (one checkpoint file, or one archive of a folder), in the page's
    order: the only ones the submission form offers and the API accepts."""
    return [info for info in FAMILY_INFO.values() if info.uploadable]


def folder_files(family: str) -> tuple[str, ...]:
    """The files a folder-shaped family's archive must hold; ``()`` for a family submitted as one file."""
    info = FAMILY_INFO.get(family)
    return info.folder_files if info else ()
