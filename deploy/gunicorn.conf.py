"""gunicorn settings for the portal: gunicorn -c deploy/gunicorn.conf.py opsportal.wsgi"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
timeout = int(
    os.environ.get("GUNICORN_TIMEOUT", 60)
)  # a finalize through the edge may wait on its timeouts
graceful_timeout = 30
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# The access log never carries the Authorization header; query strings hold no secret.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
