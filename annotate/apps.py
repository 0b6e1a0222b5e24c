from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation campaigns"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from annotate import identity

        # A login or logout ends the annotator identities the browser held (annotate/identity.py).
        user_logged_in.connect(identity.forget_on_auth_change, dispatch_uid="annotate.identity.login")
        user_logged_out.connect(identity.forget_on_auth_change, dispatch_uid="annotate.identity.logout")
