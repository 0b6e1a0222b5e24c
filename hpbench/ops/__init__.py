"""Operations above the apps: the embedded platform (``manage.py up``) and the demo it fills.

The top layer: it drives the catalogue, the annotation campaigns, the leaderboard and the worker through their
services and HTTP API; no app imports it.
"""
