"""The Celery application: queues saga, notifications, sla, default (ARCHITECTURE §6)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")

app = Celery("nexa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("saga", "notifications", "sla", "default")]
app.autodiscover_tasks(["nexa.platform"])
app.autodiscover_tasks()
