"""Market data for strategies: tickers, order books, public trades and candles through ccxt.pro."""
