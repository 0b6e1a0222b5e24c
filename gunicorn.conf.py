"""gunicorn settings for the web process (read from the working directory: ``gunicorn hpbench.wsgi``).

Measured with ``bench/annotate_load.py`` on 2 cores shared with PostgreSQL: 3 processes of 2 threads served
the most votes per second; more processes or threads spent more CPU per request on switching than they
gained. Threads (gthread) keep the annotators' connections alive between tasks. Override with the
environment (WEB_CONCURRENCY, WEB_THREADS) or on the command line.
"""

import gc
import os

workers = int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1))
threads = int(os.environ.get("WEB_THREADS", 2))
worker_class = "gthread"
keepalive = 75  # seconds: longer than an annotator's usual time on one task
backlog = 2048


def post_worker_init(worker):
    """Keep the application's long-lived objects out of Python's cyclic garbage collector.

    Django's modules, URL patterns, settings and views live as long as the process, yet every full
    collection walks them all; a request's own objects are almost all freed by reference counting. Freezing
    what start-up made, and collecting the youngest generation every 20,000 allocations instead of 700, ran
    10% fewer instructions per annotation vote (bench/annotate_load.py's requests, counted with callgrind).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
