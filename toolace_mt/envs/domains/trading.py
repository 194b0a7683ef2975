"""A brokerage account: stock quotes, market and limit orders, positions, a watchlist."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import MONEY, Env, Rule, ToolFailure, tool, unique_ids

_STOCKS = {"AAPL": ("Apple Inc.", 189.0), "MSFT": ("Microsoft Corp.", 415.0), "NVDA": ("NVIDIA Corp.", 880.0),
           "AMZN": ("Amazon.com Inc.", 178.0), "GOOG": ("Alphabet Inc.", 152.0), "TSLA": ("Tesla Inc.", 175.0),
           "KO": ("Coca-Cola Co.", 60.0), "JPM": ("JPMorgan Chase & Co.", 195.0), "XOM": ("Exxon Mobil", 118.0),
           "DIS": ("Walt Disney Co.", 112.0)}


@register
class TradingEnv(Env):
    domain = "trading"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A brokerage account: quotes, buy/sell orders, positions, cash and a watchlist."
    ENTITIES = {"stock_symbol": "stocks[].symbol", "trade_order_id": "orders[].order_id",
                "held_symbol": "positions[].symbol", "watched_symbol": "watchlist[]"}
    VALUE_POOLS = {
        "quantity": [1, 2, 5, 10],
        "side": ["buy"],  # chosen: a sell may fail for a stock not held; buys succeed on any sampled state
        "order_type": ["market", "limit"],
        "limit_price": [50.0, 150.0, 400.0],
        "query": ["Inc", "Corp", "Apple", "Tesla", "Co."],
    }
    LONG_CONTEXT_KEYS = ["orders"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        syms = sorted(rng.sample(sorted(_STOCKS), 8))
        stocks = []
        for s in syms:
            name, base = _STOCKS[s]
            price = round(base * rng.uniform(0.9, 1.1), 2)
            stocks.append({"symbol": s, "name": name, "price": price,
                           "change_pct": round(rng.uniform(-3, 3), 2)})
        held = rng.sample(syms, 3)
        positions = [{"symbol": s, "shares": rng.randint(1, 40),
                      "avg_cost": round(_STOCKS[s][1] * rng.uniform(0.7, 1.05), 2)} for s in sorted(held)]
        orders = []
        for oid in unique_ids(rng, "ORD", rng.randint(1, 3), 1000, 10000):
            s = rng.choice(syms)
            orders.append({"order_id": oid, "symbol": s, "side": "buy", "quantity": rng.randint(1, 5),
                           "order_type": "limit", "limit_price": round(_STOCKS[s][1] * 0.8, 2), "status": "open"})
        return {"cash": round(rng.uniform(20000, 60000), 2), "stocks": stocks, "positions": positions,
                "orders": orders, "watchlist": sorted(rng.sample(syms, 2)), "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old filled and cancelled orders."""
        taken = {o["order_id"] for o in state["orders"]}
        syms = [s["symbol"] for s in state["stocks"]]
        for oid in unique_ids(rng, "ORD", n, 10000, 1000000, taken):
            s = rng.choice(syms)
            state["orders"].insert(0, {"order_id": oid, "symbol": s, "side": rng.choice(["buy", "sell"]),
                                       "quantity": rng.randint(1, 50), "order_type": "market", "limit_price": None,
                                       "status": rng.choice(["filled", "cancelled"])})
        return state

    def _stock(self, symbol: str) -> dict[str, Any]:
        s = symbol.upper()
        for st in self.state["stocks"]:
            if st["symbol"] == s:
                return st
        raise ToolFailure("not_found", f"unknown ticker symbol {symbol}")

    def _order(self, order_id: str) -> dict[str, Any]:
        for o in self.state["orders"]:
            if o["order_id"] == order_id:
                return o
        raise ToolFailure("not_found", f"no order with id {order_id}")

    def _open(self, side: str, symbol: Optional[str] = None) -> list[dict[str, Any]]:
        return [o for o in self.state["orders"] if o["status"] == "open" and o["side"] == side
                and (symbol is None or o["symbol"] == symbol)]

    def _reserved_cash(self) -> float:
        """Cash committed to open limit buys (quantity x limit price): not available to another order."""
        return round(sum(o["quantity"] * (o["limit_price"] or 0.0) for o in self._open("buy")), 2)

    def _reserved_shares(self, symbol: str) -> int:
        """Shares committed to open sell orders of `symbol`: they cannot be sold twice."""
        return sum(o["quantity"] for o in self._open("sell", symbol))

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"stock_symbol": "stocks[].symbol"},
          phrases=["Which stock has '{query}' in its name?", "Look up the ticker for {query}."])
    def search_stocks(self, query: str) -> dict:
        """Find tradable stocks whose company name or symbol contains a text.

        Args:
            query: Part of the company name or ticker symbol.
        """
        q = query.lower()
        return {"stocks": [dict(s) for s in self.state["stocks"] if q in s["name"].lower() or q in s["symbol"].lower()]}

    @tool(writes=False, consumes={"symbol": "stock_symbol"}, produces={"stock_symbol": "symbol"},
          phrases=["What's {symbol} trading at?", "Give me a quote for {symbol}."])
    def get_stock_quote(self, symbol: str) -> dict:
        """Get the latest price and daily change of a stock.

        Args:
            symbol: Ticker symbol, e.g. AAPL.
        """
        return dict(self._stock(symbol))

    @tool(writes=False, produces={"held_symbol": "positions[].symbol", "stock_symbol": "positions[].symbol"},
          phrases=["How is my portfolio doing?", "Show my positions and cash."])
    def get_portfolio(self) -> dict:
        """Get cash (and the part not committed to open buy orders), positions and their market value."""
        prices = {s["symbol"]: s["price"] for s in self.state["stocks"]}
        pos = [dict(p, market_value=round(p["shares"] * prices.get(p["symbol"], 0.0), 2))
               for p in self.state["positions"]]
        return {"cash": self.state["cash"], "available_cash": round(self.state["cash"] - self._reserved_cash(), 2),
                "positions": pos, "total_value": round(self.state["cash"] + sum(p["market_value"] for p in pos), 2)}

    @tool(writes=True, consumes={"symbol": "stock_symbol"}, produces={"trade_order_id": "order_id"},
          rules={"quantity": Rule(ge=1, le=1_000_000), "limit_price": MONEY},  # chosen: 1M shares is a block trade
          phrases=["Please {side} {quantity} shares of {symbol}.", "Place a {side} order for {quantity} {symbol}."])
    def place_order(self, symbol: str, side: Literal["buy", "sell"], quantity: int,
                    order_type: Literal["market", "limit"] = "market", limit_price: Optional[float] = None) -> dict:
        """Place a buy or sell order. Market orders fill at once at the current price; limit orders stay open and
        commit their cost (buy) or shares (sell) until cancelled.

        Args:
            symbol: Ticker symbol.
            side: "buy" or "sell".
            quantity: Number of shares, at least 1.
            order_type: "market" or "limit".
            limit_price: Limit price in USD for limit orders; the current price when omitted.
        """
        st = self._stock(symbol)
        if quantity < 1:
            raise ToolFailure("invalid_request", "quantity must be at least 1")
        if order_type == "limit":
            limit_price = st["price"] if limit_price is None else limit_price
            if limit_price <= 0:
                raise ToolFailure("invalid_request", "limit_price must be positive")
        sym = st["symbol"]
        pos = next((p for p in self.state["positions"] if p["symbol"] == sym), None)
        if side == "sell":
            free = (pos["shares"] if pos else 0) - self._reserved_shares(sym)
            if free < quantity:
                raise ToolFailure("insufficient_funds", f"you hold {pos['shares'] if pos else 0} shares of {sym}, "
                                                        f"{free} of them not committed to open sell orders")
        else:
            price = limit_price if order_type == "limit" else st["price"]
            cost = round(price * quantity, 2)
            available = round(self.state["cash"] - self._reserved_cash(), 2)
            if cost > available:
                raise ToolFailure("insufficient_funds", f"order costs {cost}, available cash is {available}")
        oid = f"ORDN{self.state['next_id']:04d}"
        self.state["next_id"] += 1
        order = {"order_id": oid, "symbol": sym, "side": side, "quantity": quantity, "order_type": order_type,
                 "limit_price": limit_price if order_type == "limit" else None, "status": "open"}
        if order_type == "market":
            cost = round(st["price"] * quantity, 2)
            if side == "buy":
                self.state["cash"] = round(self.state["cash"] - cost, 2)
                if pos is None:
                    self.state["positions"].append({"symbol": sym, "shares": quantity, "avg_cost": st["price"]})
                else:
                    tot = pos["shares"] + quantity
                    pos["avg_cost"] = round((pos["avg_cost"] * pos["shares"] + cost) / tot, 2)
                    pos["shares"] = tot
            else:
                self.state["cash"] = round(self.state["cash"] + cost, 2)
                pos["shares"] -= quantity
                if pos["shares"] == 0:
                    self.state["positions"].remove(pos)
            order["status"], order["fill_price"] = "filled", st["price"]
        self.state["orders"].append(order)
        return dict(order)

    @tool(writes=False, produces={"trade_order_id": "orders[].order_id"},
          phrases=["Show my open orders.", "Which orders are still pending?"])
    def list_open_orders(self) -> dict:
        """List orders that are not filled or cancelled yet."""
        return {"orders": [dict(o) for o in self.state["orders"] if o["status"] == "open"]}

    @tool(writes=False, consumes={"order_id": "trade_order_id"}, produces={"stock_symbol": "symbol"},
          phrases=["What's the status of order {order_id}?", "Did order {order_id} go through?"])
    def get_order_status(self, order_id: str) -> dict:
        """Get the status of an order.

        Args:
            order_id: The order's id, e.g. ORD1234.
        """
        return dict(self._order(order_id))

    @tool(writes=True, consumes={"order_id": "trade_order_id"},
          phrases=["Cancel order {order_id}.", "Please pull my order {order_id}."])
    def cancel_order(self, order_id: str) -> dict:
        """Cancel an open order.

        Args:
            order_id: The order's id.
        """
        o = self._order(order_id)
        if o["status"] != "open":
            raise ToolFailure("conflict", f"order {order_id} is {o['status']}, only open orders can be cancelled")
        o["status"] = "cancelled"
        return {"order_id": order_id, "status": "cancelled"}

    @tool(writes=False, produces={"watched_symbol": "watchlist[].symbol", "stock_symbol": "watchlist[].symbol"},
          phrases=["What's on my watchlist?", "Show my watchlist with prices."])
    def get_watchlist(self) -> dict:
        """List the watched stocks with their latest price."""
        prices = {s["symbol"]: s["price"] for s in self.state["stocks"]}
        return {"watchlist": [{"symbol": s, "price": prices.get(s)} for s in self.state["watchlist"]]}

    @tool(writes=True, consumes={"symbol": "stock_symbol"},
          phrases=["Add {symbol} to my watchlist.", "Watch {symbol} for me."])
    def add_to_watchlist(self, symbol: str) -> dict:
        """Add a stock to the watchlist.

        Args:
            symbol: Ticker symbol.
        """
        sym = self._stock(symbol)["symbol"]
        if sym in self.state["watchlist"]:
            raise ToolFailure("conflict", f"{sym} is already on the watchlist")
        self.state["watchlist"].append(sym)
        return {"watchlist": list(self.state["watchlist"])}

    @tool(writes=True, consumes={"symbol": "watched_symbol"},
          phrases=["Remove {symbol} from my watchlist.", "Stop watching {symbol}."])
    def remove_from_watchlist(self, symbol: str) -> dict:
        """Remove a stock from the watchlist.

        Args:
            symbol: Ticker symbol.
        """
        sym = symbol.upper()
        if sym not in self.state["watchlist"]:
            raise ToolFailure("not_found", f"{sym} is not on the watchlist")
        self.state["watchlist"].remove(sym)
        return {"watchlist": list(self.state["watchlist"])}
