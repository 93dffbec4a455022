"""Beat tasks of the platform: thin wrappers around the platform modules."""

from celery import shared_task
