"""Postgres -> RQ: queue names and the one enqueue path (queues.py), the relay that turns committed
pending rows into jobs (relay.py), and the clustering schedule it runs (schedule.py). Both `api/`
and `workers/` import this package; it imports neither."""
