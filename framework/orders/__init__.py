"""Order entry: WebSocket first with an idempotent REST fallback, one gateway per key (see README "Orders")."""
