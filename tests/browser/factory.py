"""A small open campaign built from ORM rows, for the voting page's tests (server-side and browser).

Two models with distinctive names compare their result sets on a handful of queries; the images are
tiny generated PNG files under a temporary image root, each a different colour so a screenshot shows
which is which.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from annotate import aliases
from annotate.models import Campaign, Comparison
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query

# Names that must never reach an annotator's screen or the page's API responses.
SECRET_MODEL_NAMES = ("zebrafish-secret-cir-alpha", "narwhal-secret-cir-beta")
SECRET_MODEL_DESCRIPTION = "ocelot-description-marker"


@dataclass
class PageCampaign:
    campaign: Campaign
    models: list[ModelEntry]
    comparisons: list[Comparison]
    images: dict[int, Image] = field(default_factory=dict)


def _png(path: Path, index: int) -> None:
    r, g, b = colorsys.hsv_to_rgb((index * 0.137) % 1.0, 0.65, 0.9)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (24, 32), (int(r * 255), int(g * 255), int(b * 255))).save(path)


def build_page_campaign(
    *,
    image_root: Path,
    slug: str = "shirts-study",
    queries: int = 4,
    set_size: int = 3,
    quota: int = 3,
    votes_per_pair: int = 1,
    allow_tie: bool = True,
    ask_ratings: bool = True,
    ask_irrelevant: bool = True,
    completion_code: str = "HPB-7Q2X-DONE",
    completion_url: str = "",
    status: str = Campaign.Status.OPEN,
    instructions: str = "Choose the set that shows the reference image changed as the text asks.",
) -> PageCampaign:
    """An open campaign of ``queries`` comparisons (one per query) between two secretly-named models."""
    dataset = Dataset.objects.create(name=f"{slug}-data", kind=Dataset.Kind.DEMO, image_root=str(image_root))
    images: dict[int, Image] = {}
    per_query = 1 + 2 * set_size
    counter = 0
    for q in range(queries):
        for j in range(per_query):
            counter += 1
            name = f"img{q:02d}_{j:02d}"
            _png(image_root / f"{name}.png", counter)
            img = Image.objects.create(
                dataset=dataset, name=name, category="shirt", split="val", file_path=f"{name}.png"
            )
            images[img.pk] = img
    models = [
        ModelEntry.objects.create(name=name, family=ModelEntry.Family.DEMO, description=SECRET_MODEL_DESCRIPTION)
        for name in SECRET_MODEL_NAMES
    ]
    campaign = Campaign.objects.create(
        slug=slug,
        name=f"{SECRET_MODEL_NAMES[0]} vs {SECRET_MODEL_NAMES[1]}",
        dataset=dataset,
        split="val",
        set_size=set_size,
        num_queries=queries,
        votes_per_pair=votes_per_pair,
        allow_tie=allow_tie,
        ask_ratings=ask_ratings,
        ask_irrelevant=ask_irrelevant,
        instructions=instructions,
        gold_share=0.0,
        per_person_quota=quota,
        completion_code=completion_code,
        completion_code_per_annotator=False,  # the pages' tests read the campaign's own code
        completion_url=completion_url,
        status=status,
        build_status=Campaign.BuildStatus.BUILT,
        build_progress=1.0,
    )
    campaign.models.set(models)
    ids = sorted(images)
    comparisons = []
    for q in range(queries):
        block = ids[q * per_query : (q + 1) * per_query]
        reference = images[block[0]]
        query = Query.objects.create(
            dataset=dataset,
            key=f"q{q}",
            split="val",
            category="shirt",
            reference=reference,
            target=images[block[1]],
            captions=["is red", "has long sleeves"],
        )
        comparisons.append(
            Comparison.objects.create(
                campaign=campaign,
                query=query,
                reference_image=reference,
                text="is red and has long sleeves",
                position=q,
                set_a_images=block[1 : 1 + set_size],
                set_b_images=block[1 + set_size :],
                set_a_model=models[0],
                set_b_model=models[1],
                seed=q,
                open_slots=votes_per_pair,
            )
        )
    aliases.fill_shown(campaign_id=campaign.pk, comparisons=comparisons)  # as campaign_build does
    Comparison.objects.bulk_update(comparisons, ["shown"])
    return PageCampaign(campaign=campaign, models=models, comparisons=comparisons, images=images)
