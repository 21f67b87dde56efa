"""``make demo``: build a simulated warehouse with a fault, run the DAGs through Airflow, and
print a summary read back from the results store. ``python -m funnelguard.demo``."""

from funnelguard.demo.run import main, quick_retries

__all__ = ["main", "quick_retries"]
