"""The design's name for the process-wide pool: `from exchanges.websocket import initialize_connection_pool`.

A thin re-export of `framework.pool` (where the pool lives), so code written after the design runs as written.
"""

from framework.pool import ConnectionPool, get_connection_pool, initialize_connection_pool, shutdown_connection_pool

__all__ = ["ConnectionPool", "get_connection_pool", "initialize_connection_pool", "shutdown_connection_pool"]
