"""The ingestion queue: Celery over Redis when FOOTAGE_BROKER_URL is set."""
