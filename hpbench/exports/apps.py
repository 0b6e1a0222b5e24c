from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "hpbench.exports"
    label = "exports"
    verbose_name = "Preference dataset exports"
