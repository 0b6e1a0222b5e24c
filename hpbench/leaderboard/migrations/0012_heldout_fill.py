"""Fill what 0009 added for benchmarks and scores stored before: each pair's makers from its set's model, each
benchmark's leave-one-out ceiling and chance ratio, and held-out figures of scores that kept their choices."""

import numpy as np
from django.db import migrations


def fill(apps, schema_editor):
    from hpbench.leaderboard.services.figures import benchmark_ceiling_figures, heldout_figures, vote_codes

    Benchmark = apps.get_model("leaderboard", "PreferenceBenchmark")
    Pair = apps.get_model("leaderboard", "BenchmarkPair")
    Score = apps.get_model("leaderboard", "ModelScore")
    for benchmark in Benchmark.objects.all().iterator():
        pairs = list(Pair.objects.filter(benchmark=benchmark).order_by("position"))
        for pair in pairs:
            pair.set1_makers = [pair.set1_model_id] if pair.set1_model_id and not pair.set1_makers else pair.set1_makers
            pair.set2_makers = [pair.set2_model_id] if pair.set2_model_id and not pair.set2_makers else pair.set2_makers
        Pair.objects.bulk_update(pairs, ["set1_makers", "set2_makers"], batch_size=1000)
        human = [p.preference for p in pairs]
        votes = [vote_codes(p.votes) for p in pairs]
        weights = [p.selection_weight for p in pairs]
        Benchmark.objects.filter(pk=benchmark.pk).update(
            **benchmark_ceiling_figures(human=human, votes_by_pair=votes, weights=weights)
        )
        for score in Score.objects.filter(benchmark=benchmark, status="finished").exclude(pair_choices=None):
            choices = np.frombuffer(bytes(score.pair_choices), dtype=np.int8)
            if choices.shape[0] != len(pairs):
                continue
            Score.objects.filter(pk=score.pk).update(**heldout_figures(
                model_id=score.model_id, choices=choices, human=human, weights=weights,
                makers1=[p.set1_makers for p in pairs], makers2=[p.set2_makers for p in pairs], votes_by_pair=votes,
            ))


class Migration(migrations.Migration):
    dependencies = [("leaderboard", "0011_heldout_makers_ceiling")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
