"""Doors into docsort: watch folders and submission. All end in the same Celery job message."""
