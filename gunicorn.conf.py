"""gunicorn settings for the web process (read from the working directory: ``gunicorn hpbench.wsgi``).

Measured with ``bench/annotate_load.py`` on 2 cores shared with PostgreSQL: 3 processes of 2 threads served
the most votes per second; more processes or threads spent more CPU per request on switching than they
gained. Threads (gthread) keep the annotators' connections alive between tasks. Override with the
environment (WEB_CONCURRENCY, WEB_THREADS) or on the command line.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1))
threads = int(os.environ.get("WEB_THREADS", 2))
worker_class = "gthread"
keepalive = 75  # seconds: longer than an annotator's usual time on one task
backlog = 2048
