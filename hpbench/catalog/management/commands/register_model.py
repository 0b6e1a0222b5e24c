"""``python manage.py register_model NAME --family F [--variant V] --checkpoint PATH [--config JSON]``."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hpbench.catalog.services import RegistrationError, model_entry_register
from models_zoo import FAMILIES


class Command(BaseCommand):
    help = "Register (or update, by name) a model whose checkpoint lies on this server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--family", required=True, choices=sorted(FAMILIES))
        parser.add_argument("--variant", default="")
        parser.add_argument("--checkpoint", default="", help="A checkpoint file or folder on this machine.")
        parser.add_argument("--config", default="{}", help="Family options as JSON, or @file.json.")
        parser.add_argument("--owner", help="Username of the owner (default: none, a platform model).")
        parser.add_argument("--baseline", action="store_true", help="Mark as a baseline on the leaderboard.")
        parser.add_argument("--description", default="")
        parser.add_argument("--link", default="", help="The model's paper or code (an http(s) URL).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        raw = options["config"]
        try:
            config = json.loads(open(raw[1:]).read() if raw.startswith("@") else raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"--config: not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise CommandError("--config: expected a JSON object")
        owner = None
        if options["owner"]:
            try:
                owner = get_user_model().objects.get(username=options["owner"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"--owner: no user named {options['owner']!r}") from None
        try:
            entry = model_entry_register(
                name=options["name"], family=options["family"], variant=options["variant"],
                checkpoint_path=options["checkpoint"], config=config, owner=owner,
                is_baseline=options["baseline"], description=options["description"], link=options["link"],
            )
        except RegistrationError as exc:
            raise CommandError(str(exc)) from None
        summary = {"id": entry.pk, "name": entry.name, "family": entry.family, "variant": entry.variant,
                   "checkpoint": entry.checkpoint_path}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"Registered model {entry.name} (id {entry.pk}, {entry.family} {entry.variant})")
