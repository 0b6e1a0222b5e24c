"""``python manage.py train_model --family F --dataset NAME --objective qure|contrastive --epochs N --out DIR``.

Trains on the dataset's train split (QuRe's reward-model objective with hard negatives, or the contrastive
InfoNCE baseline), printing one line per epoch (loss, validation Recall@K, hard-negative set sizes) and
writing ``DIR/model.safetensors`` + ``DIR/config.json`` (for ``register_model NAME --family F --checkpoint
DIR``), ``DIR/trainer_state.pt`` and ``DIR/train_log.jsonl``. ``--resume`` continues from the last epoch.
``--queue`` instead queues a training job for a worker (task ``gpu.training.train_model``; DIR is the worker's
folder) and prints its id: the job's row shows its status, owner and heartbeat, and the reaper restarts it after
a lost worker.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm


class Command(BaseCommand):
    help = "Train a model family on a registered dataset with QuRe's objective or the contrastive baseline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--family", required=True)
        parser.add_argument("--dataset", required=True, help="Name of a registered dataset.")
        parser.add_argument("--objective", required=True, choices=["qure", "contrastive"])
        parser.add_argument("--epochs", type=int, required=True)
        parser.add_argument("--out", required=True, help="Checkpoint folder to write (and resume from).")
        parser.add_argument("--lr", type=float, default=1e-4)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
        parser.add_argument("--init-checkpoint", help="Start from this checkpoint instead of a fresh model.")
        parser.add_argument("--config", default="{}", help="Family options for a fresh model, as JSON.")
        parser.add_argument("--resume", action="store_true", help="Continue from the last finished epoch in --out.")
        parser.add_argument("--json", action="store_true", help="Print the final summary as JSON.")
        parser.add_argument("--queue", action="store_true", help="Queue a training job for a gpu worker instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        from worker.training import model_train

        try:
            family_config = json.loads(options["config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config: not valid JSON ({exc})") from None
        quiet = options["json"] or options["verbosity"] == 0

        def progress(**kwargs: Any) -> tqdm:
            return tqdm(disable=quiet, leave=False, unit="query", **kwargs)

        def on_epoch(record: dict[str, Any]) -> None:
            if quiet:
                return
            line = f"epoch {record['epoch']}/{options['epochs']} loss {record['loss']:.4f} lr {record['lr']:.2e}"
            line += f" tau {record['tau']:.4f}"
            validation = record.get("validation")
            if validation:
                line += f" val R@10 {validation['R@10']:.2f} R@50 {validation['R@50']:.2f}"
            sizes = record.get("negative_set_size")
            if sizes:
                line += (
                    f" negatives[{record['negatives_action']}] mean {sizes['mean']:.1f}"
                    f" min {sizes['min']} max {sizes['max']}"
                )
            self.stdout.write(f"{line} ({record['seconds']:.1f} s)")

        if options["epochs"] < 1:
            raise CommandError("--epochs must be at least 1")
        if options["queue"]:
            from hpbench.catalog.services import training_job_create

            try:
                job = training_job_create(
                    family=options["family"], dataset=options["dataset"], objective=options["objective"],
                    epochs=options["epochs"], out_dir=options["out"], lr=options["lr"],
                    batch_size=options["batch_size"], seed=options["seed"],
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps({"training_job": job.pk}) if options["json"] else
                              f"Queued training job {job.pk} -> {job.out_dir} (on a gpu worker)")
            return
        try:
            summary = model_train(
                family=options["family"],
                dataset_name=options["dataset"],
                objective=options["objective"],
                epochs=options["epochs"],
                out_dir=options["out"],
                lr=options["lr"],
                batch_size=options["batch_size"],
                seed=options["seed"],
                resume=options["resume"],
                device=options["device"],
                init_checkpoint=options["init_checkpoint"],
                family_config=family_config,
                progress=progress,
                on_epoch=on_epoch,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"Trained {summary['family']} on {summary['dataset']} ({summary['objective']}, "
                f"{summary['epochs_run']} epoch(s) this run) -> {summary['out_dir']}"
            )
