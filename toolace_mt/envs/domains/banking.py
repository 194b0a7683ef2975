"""Retail banking: accounts, transfers, payees, card controls."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import MONEY, Env, Rule, ToolFailure, tool, unique_ids

_FIRST = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Ines", "Kenji", "Priya", "Lucas", "Sofia", "Ethan"]
_LAST = ["Garcia", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva", "Kim", "Meyer", "Dubois"]
_KINDS = ["checking", "savings", "credit"]
# chosen: a typical card limit; a credit account may go this far below zero and no further
CREDIT_LIMIT = 5000.0
_IBAN = r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}"  # ISO 13616: country, check digits, up to 30 alphanumerics
_MEMOS = ["grocery", "coffee", "fuel", "books", "pharmacy", "streaming", "bakery", "parking", "hardware store"]


@register
class BankingEnv(Env):
    domain = "banking"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A retail bank: a customer's accounts, transfers between them and to payees, cards."
    ENTITIES = {
        "account_id": "accounts[].account_id",
        "payee_id": "payees[].payee_id",
        "card_id": "cards[].card_id",
        "transaction_id": "transactions[].transaction_id",
    }
    VALUE_POOLS = {
        "amount": [25.0, 40.0, 75.5, 120.0, 200.0, 310.25, 500.0],
        "memo": ["rent share", "dinner split", "birthday gift", "utility bill", "savings top-up"],
        "nickname": ["Landlord", "Mom", "Gym", "Electric Co", "Roommate"],
        "iban": ["DE89370400440532013000", "FR1420041010050500013M02606", "GB29NWBK60161331926819"],
        "limit": [3, 5, 10],
        "action": ["freeze", "unfreeze"],
    }

    LONG_CONTEXT_KEYS = ["transactions", "payees"]

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old card transactions (and a few payees) spread over the customer's accounts."""
        taken = {t["transaction_id"] for t in state["transactions"]}
        accs = [a["account_id"] for a in state["accounts"]]
        for tid in unique_ids(rng, "TX", n, 100000, 1000000, taken):
            if rng.random() < 0.1:
                pid = unique_ids(rng, "PAY", 1, 1000, 10000, {p["payee_id"] for p in state["payees"]})[0]
                state["payees"].append({"payee_id": pid, "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                                        "iban": rng.choice(cls.VALUE_POOLS["iban"])})
            state["transactions"].insert(0, {"transaction_id": tid, "account_id": rng.choice(accs),
                                             "amount": -round(rng.uniform(2, 300), 2), "memo": rng.choice(_MEMOS)})
        return state

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        n = rng.randint(2, 4)
        accounts = []
        for i, acc_id in enumerate(unique_ids(rng, "ACC", n, 10000, 100000)):
            kind = _KINDS[i % 3] if i < 3 else rng.choice(_KINDS)
            accounts.append({"account_id": acc_id, "kind": kind,
                             "balance": round(rng.uniform(300, 6000), 2), "currency": "USD"})
            if kind == "credit":
                accounts[-1]["credit_limit"] = CREDIT_LIMIT
        payees = [{"payee_id": pid, "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                   "iban": rng.choice(cls.VALUE_POOLS["iban"])}
                  for pid in unique_ids(rng, "PAY", rng.randint(1, 3), 100, 1000)]
        cards = [{"card_id": f"CARD{rng.randint(1000, 9999)}", "account_id": accounts[0]["account_id"],
                  "frozen": False, "daily_limit": 1000.0}]
        txs = [{"transaction_id": tid, "account_id": rng.choice(accounts)["account_id"],
                "amount": -round(rng.uniform(5, 150), 2), "memo": rng.choice(_MEMOS)}
               for tid in unique_ids(rng, "TX", rng.randint(2, 5), 100000, 1000000)]
        return {"customer": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "accounts": accounts, "payees": payees,
                "cards": cards, "transactions": txs, "next_tx": 1}

    # helpers -------------------------------------------------------------------------------
    def _account(self, account_id: str) -> dict[str, Any]:
        for a in self.state["accounts"]:
            if a["account_id"] == account_id:
                return a
        raise ToolFailure("not_found", f"no account with id {account_id}")

    @staticmethod
    def _debit(a: dict[str, Any], amount: float) -> None:
        """Take `amount` from an account: a debit account down to zero, a credit account down to its limit."""
        floor = -a.get("credit_limit", 0.0) if a["kind"] == "credit" else 0.0
        if round(a["balance"] - amount, 2) < floor:
            what = f"credit limit {-floor}" if a["kind"] == "credit" else f"balance {a['balance']}"
            raise ToolFailure("insufficient_funds", f"{amount} exceeds the available funds ({what}, balance "
                                                    f"{a['balance']})")
        a["balance"] = round(a["balance"] - amount, 2)

    def _new_tx(self, account_id: str, amount: float, memo: str) -> dict[str, Any]:
        tx = {"transaction_id": f"TXN{self.state['next_tx']:05d}", "account_id": account_id,
              "amount": round(amount, 2), "memo": memo}
        self.state["next_tx"] += 1
        self.state["transactions"].append(tx)
        return tx

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"account_id": "accounts[].account_id"},
          phrases=["Which accounts do I have?", "Can you list my bank accounts?"])
    def list_accounts(self) -> dict:
        """List the customer's accounts with their kind and balance."""
        return {"accounts": [dict(a) for a in self.state["accounts"]]}

    @tool(writes=False, consumes={"account_id": "account_id"}, produces={"account_id": "account_id"},
          phrases=["What is the balance of account {account_id}?", "How much money is in {account_id}?"])
    def get_balance(self, account_id: str) -> dict:
        """Get the current balance of one account.

        Args:
            account_id: The account's id, e.g. ACC12345.
        """
        a = self._account(account_id)
        return {"account_id": a["account_id"], "balance": a["balance"], "currency": a["currency"]}

    @tool(writes=True, consumes={"from_account": "account_id", "to_account": "account_id"},
          produces={"transaction_id": "transaction_id"}, rules={"amount": MONEY},
          phrases=["Move {amount} dollars from {from_account} to {to_account}.",
                   "Please transfer ${amount} from account {from_account} into {to_account}."])
    def transfer_between_accounts(self, from_account: str, to_account: str, amount: float) -> dict:
        """Transfer money between two of the customer's own accounts.

        Args:
            from_account: Id of the account to debit.
            to_account: Id of the account to credit.
            amount: Amount in USD, positive.
        """
        if from_account == to_account:
            raise ToolFailure("invalid_request", "source and destination accounts are the same")
        if amount <= 0:
            raise ToolFailure("invalid_request", "amount must be positive")
        src, dst = self._account(from_account), self._account(to_account)
        self._debit(src, amount)
        dst["balance"] = round(dst["balance"] + amount, 2)
        tx = self._new_tx(from_account, -amount, f"transfer to {to_account}")
        self._new_tx(to_account, amount, f"transfer from {from_account}")
        return {"transaction_id": tx["transaction_id"], "from_balance": src["balance"], "to_balance": dst["balance"]}

    @tool(writes=True, produces={"payee_id": "payee_id"},
          rules={"nickname": Rule(max_len=100), "iban": Rule(pattern=_IBAN)},  # chosen: a name fits in 100
          phrases=["Add a new payee called {nickname} with IBAN {iban}.", "Save {iban} as a payee named {nickname}."])
    def add_payee(self, nickname: str, iban: str) -> dict:
        """Register a new payee for outgoing payments.

        Args:
            nickname: A name for the payee.
            iban: The payee's IBAN.
        """
        if any(p["iban"] == iban and p["name"] == nickname for p in self.state["payees"]):
            raise ToolFailure("conflict", f"payee {nickname} with IBAN {iban} already exists")
        pid = f"PAYN{self.state['next_tx']:04d}"
        self.state["next_tx"] += 1
        self.state["payees"].append({"payee_id": pid, "name": nickname, "iban": iban})
        return {"payee_id": pid, "name": nickname}

    @tool(writes=False, produces={"payee_id": "payees[].payee_id"},
          phrases=["Show me my saved payees.", "Who are my payees?"])
    def list_payees(self) -> dict:
        """List the customer's saved payees."""
        return {"payees": [dict(p) for p in self.state["payees"]]}

    @tool(writes=True, consumes={"account_id": "account_id", "payee_id": "payee_id"},
          produces={"transaction_id": "transaction_id"},
          rules={"amount": MONEY, "memo": Rule(allow_empty=True, max_len=140)},  # chosen: SEPA remittance info is 140
          phrases=["Pay {amount} dollars to payee {payee_id} from {account_id}, memo '{memo}'.",
                   "Send ${amount} from {account_id} to {payee_id} for {memo}."])
    def pay_payee(self, account_id: str, payee_id: str, amount: float, memo: str = "") -> dict:
        """Pay a saved payee from one of the customer's accounts.

        Args:
            account_id: Id of the account to pay from.
            payee_id: Id of the saved payee.
            amount: Amount in USD, positive.
            memo: Optional note shown to the payee.
        """
        a = self._account(account_id)
        if not any(p["payee_id"] == payee_id for p in self.state["payees"]):
            raise ToolFailure("not_found", f"no payee with id {payee_id}")
        if amount <= 0:
            raise ToolFailure("invalid_request", "amount must be positive")
        self._debit(a, amount)
        tx = self._new_tx(account_id, -amount, memo or f"payment to {payee_id}")
        return {"transaction_id": tx["transaction_id"], "balance": a["balance"]}

    @tool(writes=False, consumes={"account_id": "account_id"}, produces={"transaction_id": "transactions[].transaction_id"},
          rules={"limit": Rule(ge=1, le=1000)},  # chosen: a page of at most 1000 rows
          phrases=["Show the recent transactions on {account_id}.", "What went through account {account_id} lately?"])
    def list_transactions(self, account_id: str, limit: Optional[int] = None) -> dict:
        """List recent transactions of an account, newest last.

        Args:
            account_id: The account's id.
            limit: Return at most this many transactions.
        """
        self._account(account_id)
        txs = [dict(t) for t in self.state["transactions"] if t["account_id"] == account_id]
        return {"transactions": txs[-limit:] if limit else txs}

    @tool(writes=False, produces={"card_id": "cards[].card_id"}, phrases=["List my cards.", "Which cards do I have?"])
    def list_cards(self) -> dict:
        """List the customer's payment cards."""
        return {"cards": [dict(c) for c in self.state["cards"]]}

    @tool(writes=True, consumes={"card_id": "card_id"},
          phrases=["Please {action} my card {card_id}.", "Can you {action} the card {card_id} for me?"])
    def set_card_status(self, card_id: str, action: Literal["freeze", "unfreeze"]) -> dict:
        """Freeze or unfreeze a payment card.

        Args:
            card_id: The card's id.
            action: "freeze" to block the card, "unfreeze" to allow payments again.
        """
        for c in self.state["cards"]:
            if c["card_id"] == card_id:
                if c["frozen"] == (action == "freeze"):
                    raise ToolFailure("conflict", f"card {card_id} is already {'frozen' if c['frozen'] else 'active'}")
                c["frozen"] = action == "freeze"
                return {"card_id": card_id, "frozen": c["frozen"]}
        raise ToolFailure("not_found", f"no card with id {card_id}")
