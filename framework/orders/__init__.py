"""Order entry: WebSocket first with an idempotent REST fallback, one gateway per key (see README "Orders")."""

from framework.orders.config import WebSocketTradingConfig
from framework.orders.gateway import OrderError, OrderGateway
from framework.orders.model import Execution, OrderRequest, OrderState, OrderType, Outcome, OutcomeKind, Path
from framework.orders.order import Order, OrderSnapshot
from framework.orders.trading import WebSocketTrading, setup_websocket_trading

__all__ = [
    "Execution", "Order", "OrderError", "OrderGateway", "OrderRequest", "OrderSnapshot", "OrderState", "OrderType",
    "Outcome", "OutcomeKind", "Path", "WebSocketTrading", "WebSocketTradingConfig", "setup_websocket_trading",
]
