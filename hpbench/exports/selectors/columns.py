"""The columns of each export level: ``(name, type, description)``; the writers build their schemas from these."""

from __future__ import annotations

# (name, type, description); types: str, int, float, bool, datetime, list[str]
VOTE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("vote_id", "int", "Vote id (stable within this platform)."),
    ("campaign", "str", "Campaign slug."),
    ("comparison_id", "int", "Comparison id; votes with the same id judged the same two sets."),
    ("dataset", "str", "Dataset the query and images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The query's modification captions."),
    ("text", "str", "The query text shown to the annotator."),
    ("target_image", "str", "Ground-truth target image name (may be null)."),
    ("set_a_images", "list[str]", "Set A: image names in the order retrieved."),
    ("set_b_images", "list[str]", "Set B: image names in the order retrieved."),
    ("set_a_model", "str", "Model that retrieved set A (null for gold sets)."),
    ("set_b_model", "str", "Model that retrieved set B (null for gold sets)."),
    ("annotator", "str", "Stable public pseudonym of the annotator (never a crowd id or account)."),
    ("choice", "str", "'a', 'b' or 'tie'."),
    ("tie", "bool", "True when the annotator answered 'tie'."),
    ("rating_a", "int", "Likert rating 1-5 of set A (null when not asked)."),
    ("rating_b", "int", "Likert rating 1-5 of set B (null when not asked)."),
    ("irrelevant", "bool", "The annotator flagged both sets as irrelevant."),
    ("gold", "bool", "A gold (control) comparison with a known answer."),
    ("excluded", "bool", "Excluded by quality control (vote excluded or annotator flagged)."),
    ("time_ms", "int", "Time on task in milliseconds."),
    ("created_at", "datetime", "When the vote was recorded (UTC)."),
)


COMPARISON_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("comparison_id", "int", "Comparison id."),
    ("campaign", "str", "Campaign slug."),
    ("dataset", "str", "Dataset the query and images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The query's modification captions."),
    ("text", "str", "The query text shown to annotators."),
    ("target_image", "str", "Ground-truth target image name (may be null)."),
    ("set_a_images", "list[str]", "Set A: image names in order."),
    ("set_b_images", "list[str]", "Set B: image names in order."),
    ("set_a_model", "str", "Model that retrieved set A."),
    ("set_b_model", "str", "Model that retrieved set B."),
    ("gold", "bool", "A gold (control) comparison."),
    ("votes", "int", "Votes counted (after the export's filters)."),
    ("votes_a", "int", "Votes for set A."),
    ("votes_b", "int", "Votes for set B."),
    ("ties", "int", "Tie votes."),
    ("irrelevant", "int", "Votes flagging both sets irrelevant."),
    ("mean_rating_a", "float", "Mean Likert rating of set A (null when none)."),
    ("mean_rating_b", "float", "Mean Likert rating of set B (null when none)."),
    ("majority", "str", "Strict majority of a / b / tie; level at the top = 'tie'."),
    ("agreement", "float", "Share of agreeing vote pairs (null with fewer than 2 votes)."),
    ("stop_reason", "str", "Adaptive overlap: why it stopped asking (decided, max_votes; empty while it asks)."),
    ("selection_round", "int", "Informative pair selection: the round that drew it (1 = build); 0 otherwise."),
    ("selection_pi", "float", "Informative pair selection: its inclusion probability in that round (else null)."),
    ("selection_weight", "float", "Its design weight relative to uniform, from the rounds drawn so far (1: none)."),
)


PAIR_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("benchmark", "str", "Benchmark name."),
    ("version", "int", "Benchmark version (frozen)."),
    ("position", "int", "Position of the pair in the benchmark."),
    ("source_key", "str", "Where the pair came from (file question key or comparison)."),
    ("dataset", "str", "Dataset the images come from."),
    ("reference_image", "str", "Reference image name."),
    ("captions", "list[str]", "The linked query's captions (empty when no query is linked)."),
    ("text", "str", "The query text judged."),
    ("target_image", "str", "Target image name of the linked query (may be null)."),
    ("set1_images", "list[str]", "Set 1: image names in order."),
    ("set2_images", "list[str]", "Set 2: image names in order."),
    ("set1_model", "str", "Model that retrieved set 1 (null when unknown)."),
    ("set2_model", "str", "Model that retrieved set 2 (null when unknown)."),
    ("preference", "int", "Human verdict: 1 = set 1, 2 = set 2, 0 = tie."),
    ("likert1", "float", "Likert score of set 1 (mean over votes)."),
    ("likert2", "float", "Likert score of set 2 (mean over votes)."),
    ("votes", "int", "Number of votes behind the verdict."),
    ("votes_json", "str", "The votes as JSON: annotator pseudonym or released label, choice, ratings."),
    ("campaign_votes", "int", "Votes the campaign comparison got in all (null for imported pairs)."),
    ("stop_reason", "str", "Why the comparison stopped asking: decided, max_votes or open (empty when imported)."),
    ("selection_round", "int", "Informative pair selection: the round that drew the pair (1 = build); 0 otherwise."),
    ("selection_pi", "float", "Informative pair selection: its inclusion probability in that round (else null)."),
    ("selection_weight", "float", "The design weight every figure gives the pair, relative to uniform (1: none)."),
)


COLUMNS = {"votes": VOTE_COLUMNS, "comparisons": COMPARISON_COLUMNS, "pairs": PAIR_COLUMNS}
