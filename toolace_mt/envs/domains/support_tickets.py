"""A customer-support help desk: tickets, agents, comments, priorities, assignment, closing."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_SUBJECTS = ["Cannot log in after password reset", "Invoice shows wrong amount", "App crashes on startup",
             "Refund not received", "Two-factor code never arrives", "Export to CSV is empty",
             "Billing address cannot be changed", "Slow dashboard loading", "Missing items in order",
             "Account locked after failed attempts"]
_CUSTOMERS = ["ana@example.com", "bo@example.org", "chen@example.net", "dara@example.com", "eli@example.org"]
_AGENTS = ["Rita Moreno", "Tom Baker", "Yuki Sato", "Femi Adebayo", "Lena Fischer"]
_PRIOS = ["low", "normal", "high", "urgent"]


@register
class SupportTicketsEnv(Env):
    domain = "support_tickets"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A help desk: open, inspect, prioritise, assign, comment on and close support tickets."
    ENTITIES = {"ticket_id": "tickets[].ticket_id", "agent_id": "agents[].agent_id"}
    VALUE_POOLS = {
        "subject": ["Printer not connecting", "Charged twice for subscription", "Cannot upload profile photo",
                    "Password reset link expired"],
        "description": ["It started yesterday after the update.", "I tried twice and got error 500.",
                        "This blocks my whole team, please help."],
        "customer_email": _CUSTOMERS,
        "priority": _PRIOS,
        "comment": ["Asked the customer for a screenshot.", "Reproduced on staging.", "Escalated to billing."],
        "resolution": ["Reset the account and confirmed login works.", "Issued the refund.",
                       "Fixed in release 2.4.1."],
        "status": ["open", "pending", "closed"],
        "query": ["log in", "refund", "invoice", "crash", "password", "account"],
    }
    LONG_CONTEXT_KEYS = ["tickets"]

    @classmethod
    def _ticket(cls, rng: random.Random, tid: str, agents: list[dict[str, Any]]) -> dict[str, Any]:
        status = rng.choice(["open", "open", "pending", "closed"])
        return {"ticket_id": tid, "subject": rng.choice(_SUBJECTS), "customer_email": rng.choice(_CUSTOMERS),
                "status": status, "priority": rng.choice(_PRIOS),
                "assignee": rng.choice(agents)["agent_id"] if rng.random() < 0.6 else None,
                "comments": [], "resolution": "Resolved by support." if status == "closed" else None}

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        agents = [{"agent_id": aid, "name": n, "team": rng.choice(["billing", "technical", "accounts"])}
                  for aid, n in zip(unique_ids(rng, "AG", 4, 10, 100), rng.sample(_AGENTS, 4))]
        tickets = [cls._ticket(rng, tid, agents) for tid in unique_ids(rng, "T-", rng.randint(5, 9), 1000, 10000)]
        tickets[0]["status"] = "open"
        return {"agents": agents, "tickets": tickets, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old closed tickets."""
        taken = {t["ticket_id"] for t in state["tickets"]}
        for tid in unique_ids(rng, "T-", n, 10000, 100000, taken):
            t = cls._ticket(rng, tid, state["agents"])
            t["status"], t["resolution"] = "closed", "Resolved by support."
            state["tickets"].insert(0, t)
        return state

    def _get(self, ticket_id: str) -> dict[str, Any]:
        for t in self.state["tickets"]:
            if t["ticket_id"] == ticket_id:
                return t
        raise ToolFailure("not_found", f"no ticket with id {ticket_id}")

    @staticmethod
    def _brief(t: dict[str, Any]) -> dict[str, Any]:
        return {k: t[k] for k in ("ticket_id", "subject", "status", "priority", "assignee")}

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"ticket_id": "tickets[].ticket_id"},
          phrases=["Show me all {status} tickets.", "Which tickets are {status} right now?"])
    def list_tickets(self, status: Optional[Literal["open", "pending", "closed"]] = None) -> dict:
        """List support tickets, optionally only those with one status.

        Args:
            status: Only tickets with this status.
        """
        return {"tickets": [self._brief(t) for t in self.state["tickets"] if status is None or t["status"] == status]}

    @tool(writes=False, produces={"ticket_id": "tickets[].ticket_id"},
          phrases=["Find tickets about {query}.", "Search the help desk for '{query}'."])
    def search_tickets(self, query: str) -> dict:
        """Find tickets whose subject contains a text (case-insensitive).

        Args:
            query: Text to look for in the subject.
        """
        q = query.lower()
        return {"tickets": [self._brief(t) for t in self.state["tickets"] if q in t["subject"].lower()]}

    @tool(writes=False, consumes={"ticket_id": "ticket_id"}, produces={"agent_id": "assignee"},
          phrases=["Show me ticket {ticket_id}.", "What's the full story on ticket {ticket_id}?"])
    def get_ticket(self, ticket_id: str) -> dict:
        """Get every detail of one ticket, comments included.

        Args:
            ticket_id: The ticket's id, e.g. T-1234.
        """
        t = self._get(ticket_id)
        return dict(t, comments=[dict(c) for c in t["comments"]])

    @tool(writes=True, produces={"ticket_id": "ticket_id"},
          # chosen: a one-line subject fits in 200 characters; the description may be empty (it is optional)
          rules={"subject": Rule(max_len=200), "customer_email": Rule(pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", max_len=254),
                 "description": Rule(allow_empty=True)},
          phrases=["Open a ticket for {customer_email}: {subject}.",
                   "Create a new {priority} ticket '{subject}' from {customer_email}."])
    def create_ticket(self, subject: str, customer_email: str, description: str = "",
                      priority: Literal["low", "normal", "high", "urgent"] = "normal") -> dict:
        """Open a new support ticket.

        Args:
            subject: One-line summary of the problem.
            customer_email: Email of the customer who reported it.
            description: Longer description of the problem.
            priority: How urgent the ticket is.
        """
        if "@" not in customer_email:
            raise ToolFailure("invalid_request", f"{customer_email!r} is not an email address")
        tid = f"T-N{self.state['next_id']:04d}"
        self.state["next_id"] += 1
        self.state["tickets"].append({"ticket_id": tid, "subject": subject, "customer_email": customer_email,
                                      "status": "open", "priority": priority, "assignee": None,
                                      "comments": ([{"author": "customer", "text": description}] if description else []),
                                      "resolution": None})
        return {"ticket_id": tid, "status": "open", "priority": priority}

    @tool(writes=True, consumes={"ticket_id": "ticket_id"},
          phrases=["Set the priority of {ticket_id} to {priority}.", "Make ticket {ticket_id} {priority} priority."])
    def set_ticket_priority(self, ticket_id: str, priority: Literal["low", "normal", "high", "urgent"]) -> dict:
        """Change the priority of a ticket.

        Args:
            ticket_id: The ticket's id.
            priority: The new priority.
        """
        t = self._get(ticket_id)
        if t["priority"] == priority:
            raise ToolFailure("conflict", f"ticket {ticket_id} already has priority {priority}")
        t["priority"] = priority
        return self._brief(t)

    @tool(writes=False, produces={"agent_id": "agents[].agent_id"},
          phrases=["Which support agents are there?", "List the agents on the help desk."])
    def list_agents(self) -> dict:
        """List the support agents and their teams, with their number of open tickets."""
        load = {}
        for t in self.state["tickets"]:
            if t["status"] != "closed" and t["assignee"]:
                load[t["assignee"]] = load.get(t["assignee"], 0) + 1
        return {"agents": [dict(a, open_tickets=load.get(a["agent_id"], 0)) for a in self.state["agents"]]}

    @tool(writes=True, consumes={"ticket_id": "ticket_id", "agent_id": "agent_id"},
          phrases=["Assign {ticket_id} to agent {agent_id}.", "Give ticket {ticket_id} to {agent_id}."])
    def assign_ticket(self, ticket_id: str, agent_id: str) -> dict:
        """Assign a ticket to a support agent.

        Args:
            ticket_id: The ticket's id.
            agent_id: The agent's id, e.g. AG42.
        """
        t = self._get(ticket_id)
        if not any(a["agent_id"] == agent_id for a in self.state["agents"]):
            raise ToolFailure("not_found", f"no agent with id {agent_id}")
        if t["status"] == "closed":
            raise ToolFailure("conflict", f"ticket {ticket_id} is closed")
        if t["assignee"] == agent_id:
            raise ToolFailure("conflict", f"ticket {ticket_id} is already assigned to {agent_id}")
        t["assignee"] = agent_id
        return self._brief(t)

    @tool(writes=True, consumes={"ticket_id": "ticket_id"},
          phrases=["Add a note to {ticket_id}: {comment}", "Comment on ticket {ticket_id} saying '{comment}'."])
    def add_ticket_comment(self, ticket_id: str, comment: str) -> dict:
        """Add an internal comment to a ticket.

        Args:
            ticket_id: The ticket's id.
            comment: The comment text.
        """
        t = self._get(ticket_id)
        if not comment.strip():
            raise ToolFailure("invalid_request", "comment is empty")
        t["comments"].append({"author": "agent", "text": comment})
        return {"ticket_id": ticket_id, "n_comments": len(t["comments"])}

    @tool(writes=True, consumes={"ticket_id": "ticket_id"},
          phrases=["Close ticket {ticket_id} with resolution: {resolution}", "Resolve {ticket_id}: {resolution}"])
    def close_ticket(self, ticket_id: str, resolution: str) -> dict:
        """Close a ticket, recording how it was resolved.

        Args:
            ticket_id: The ticket's id.
            resolution: How the problem was solved.
        """
        t = self._get(ticket_id)
        if t["status"] == "closed":
            raise ToolFailure("conflict", f"ticket {ticket_id} is already closed")
        t["status"], t["resolution"] = "closed", resolution
        return self._brief(t)

    @tool(writes=True, consumes={"ticket_id": "ticket_id"},
          phrases=["Reopen ticket {ticket_id}.", "The customer of {ticket_id} wrote back, reopen it."])
    def reopen_ticket(self, ticket_id: str) -> dict:
        """Reopen a closed ticket.

        Args:
            ticket_id: The ticket's id.
        """
        t = self._get(ticket_id)
        if t["status"] != "closed":
            raise ToolFailure("conflict", f"ticket {ticket_id} is not closed (status {t['status']})")
        t["status"], t["resolution"] = "open", None
        return self._brief(t)
