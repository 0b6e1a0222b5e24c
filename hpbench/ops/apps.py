from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "hpbench.ops"
    label = "ops"
    verbose_name = "Operations: the embedded platform and its demo"
