from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hpbench.accounts"
    label = "hpbench_accounts"
    verbose_name = "Accounts"
