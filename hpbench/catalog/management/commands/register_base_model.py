"""``python manage.py register_base_model NAME --family F --path KEY=/abs/path [--path ...]``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hpbench.catalog.family_config import BASE_MODEL_PATH_KEYS, ConfigError, base_model_register


class Command(BaseCommand):
    help = (
        "Register (or update, by name) server-side files a family builds on, which researchers then choose by "
        'name in their config ({"base_model": NAME}). Keys per family: '
        + "; ".join(f"{family}: {', '.join(keys)}" for family, keys in BASE_MODEL_PATH_KEYS.items() if keys)
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--family", required=True, choices=sorted(k for k, v in BASE_MODEL_PATH_KEYS.items() if v))
        parser.add_argument("--path", action="append", default=[], metavar="KEY=PATH",
                            help="A config key and the absolute path it stands for (repeat for several).")
        parser.add_argument("--description", default="")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        paths: dict[str, str] = {}
        for item in options["path"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--path {item!r}: expected KEY=PATH")
            paths[key] = value
        try:
            base = base_model_register(name=options["name"], family=options["family"], paths=paths,
                                       description=options["description"])
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            summary = {"id": base.pk, "name": base.name, "family": base.family, "paths": base.paths}
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"Registered base model {base.name} ({base.family}): "
                              + ", ".join(f"{k}={v}" for k, v in base.paths.items()))
