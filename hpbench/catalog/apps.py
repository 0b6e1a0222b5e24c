from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "hpbench.catalog"
    label = "catalog"
    verbose_name = "Datasets, models and retrieval runs"
