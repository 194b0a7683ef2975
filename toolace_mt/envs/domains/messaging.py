"""A phone messaging app: contacts, conversations, sending and deleting messages, blocking."""
from __future__ import annotations

import random
from typing import Any, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_FIRST = ["Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Ines", "Kenji", "Priya", "Lucas", "Sofia", "Ethan",
          "Hana", "Mateo", "Leila", "Jonas"]
_LAST = ["Garcia", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva", "Kim", "Meyer", "Dubois"]
_TEXTS = ["Are we still on for dinner tonight?", "Running 10 minutes late, sorry!", "Can you send me the slides?",
          "Happy birthday!! 🎉", "Did you feed the cat?", "The package arrived this morning.",
          "Let's move the call to 3pm.", "Thanks for yesterday, it was great.", "Where did you park?",
          "I'll pick up the kids at 5."]
_DAYS = ["2024-05-10", "2024-05-11", "2024-05-12", "2024-05-13"]


def _phone(rng: random.Random) -> str:
    return f"+1-{rng.randint(200, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


@register
class MessagingEnv(Env):
    domain = "messaging"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A phone messaging app: contacts, conversations, sending, deleting and blocking."
    ENTITIES = {"contact_id": "contacts[].contact_id", "message_id": "messages[].message_id",
                "contact_name": "contacts[].name"}
    VALUE_POOLS = {
        "text": ["On my way!", "Can we talk later today?", "Thanks, got it.", "See you at the station at 6.",
                 "Please call me when you land."],
        "name": ["Grace Hopper", "Alan Turing", "Ada Lovelace", "Katherine Johnson"],
        "phone": ["+1-415-555-0134", "+1-212-555-0199", "+1-617-555-0148", "+1-303-555-0112"],
        "query": ["Ava", "Kim", "Rossi", "Omar", "Silva"],
        "limit": [3, 5, 10],
    }
    LONG_CONTEXT_KEYS = ["messages", "contacts"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        names = set()
        while len(names) < rng.randint(4, 7):
            names.add(f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")
        contacts = [{"contact_id": cid, "name": n, "phone": _phone(rng), "blocked": False}
                    for cid, n in zip(unique_ids(rng, "C", len(names), 100, 1000), sorted(names))]
        messages = []
        for mid in unique_ids(rng, "M", rng.randint(5, 12), 1000, 10000):
            c = rng.choice(contacts)
            messages.append({"message_id": mid, "contact_id": c["contact_id"], "direction": rng.choice(["in", "out"]),
                             "text": rng.choice(_TEXTS), "date": rng.choice(_DAYS), "read": rng.random() < 0.6})
        return {"owner": "Sam Lee", "contacts": contacts, "messages": messages, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old read messages with existing contacts."""
        taken = {m["message_id"] for m in state["messages"]}
        for mid in unique_ids(rng, "M", n, 10000, 100000, taken):
            c = rng.choice(state["contacts"])
            state["messages"].insert(0, {"message_id": mid, "contact_id": c["contact_id"],
                                         "direction": rng.choice(["in", "out"]), "text": rng.choice(_TEXTS),
                                         "date": f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                                         "read": True})
        return state

    # helpers -------------------------------------------------------------------------------
    def _contact(self, contact_id: str) -> dict[str, Any]:
        for c in self.state["contacts"]:
            if c["contact_id"] == contact_id:
                return c
        raise ToolFailure("not_found", f"no contact with id {contact_id}")

    def _new_id(self, prefix: str) -> str:
        i = self.state["next_id"]
        self.state["next_id"] += 1
        return f"{prefix}N{i:04d}"

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"contact_id": "contacts[].contact_id", "contact_name": "contacts[].name"},
          phrases=["Show me my contacts.", "Who is in my address book?"])
    def list_contacts(self) -> dict:
        """List all contacts with their phone numbers."""
        return {"contacts": [dict(c) for c in self.state["contacts"]]}

    @tool(writes=False, produces={"contact_id": "contacts[].contact_id"},
          phrases=["Find the contact {query}.", "Look up {query} in my contacts."])
    def search_contacts(self, query: str) -> dict:
        """Find contacts whose name contains a text (case-insensitive).

        Args:
            query: Part of the contact's name.
        """
        q = query.lower()
        return {"contacts": [dict(c) for c in self.state["contacts"] if q in c["name"].lower()]}

    @tool(writes=True, produces={"contact_id": "contact_id"},
          # E.164 allows 15 digits; separators and a leading + are common in written numbers
          rules={"name": Rule(max_len=100), "phone": Rule(pattern=r"\+?[0-9][0-9 ()./-]{2,24}")},
          phrases=["Add {name} to my contacts, number {phone}.", "Save a new contact {name} with phone {phone}."])
    def add_contact(self, name: str, phone: str) -> dict:
        """Add a new contact.

        Args:
            name: Full name of the contact.
            phone: Phone number, e.g. +1-415-555-0134.
        """
        if any(c["phone"] == phone for c in self.state["contacts"]):
            raise ToolFailure("conflict", f"a contact with phone {phone} already exists")
        cid = self._new_id("C")
        self.state["contacts"].append({"contact_id": cid, "name": name, "phone": phone, "blocked": False})
        return {"contact_id": cid, "name": name}

    @tool(writes=True, consumes={"contact_id": "contact_id"}, produces={"message_id": "message_id"},
          phrases=["Text {contact_id}: '{text}'", "Send a message to contact {contact_id} saying {text}"])
    def send_message(self, contact_id: str, text: str) -> dict:
        """Send a text message to a contact.

        Args:
            contact_id: Id of the recipient contact.
            text: The message text.
        """
        c = self._contact(contact_id)
        if c["blocked"]:
            raise ToolFailure("forbidden", f"contact {contact_id} is blocked")
        if not text.strip():
            raise ToolFailure("invalid_request", "message text is empty")
        mid = self._new_id("M")
        self.state["messages"].append({"message_id": mid, "contact_id": contact_id, "direction": "out",
                                       "text": text, "date": "2024-05-14", "read": True})
        return {"message_id": mid, "to": c["name"], "status": "sent"}

    @tool(writes=False, consumes={"contact_id": "contact_id"}, produces={"message_id": "messages[].message_id"},
          rules={"limit": Rule(ge=1, le=1000)},  # chosen: a page of at most 1000 messages
          phrases=["Show my conversation with {contact_id}.", "What have {contact_id} and I been texting about?"])
    def get_conversation(self, contact_id: str, limit: Optional[int] = None) -> dict:
        """Get the messages exchanged with one contact, oldest first.

        Args:
            contact_id: Id of the contact.
            limit: Return only the most recent this many messages.
        """
        c = self._contact(contact_id)
        msgs = [dict(m) for m in self.state["messages"] if m["contact_id"] == contact_id]
        return {"contact": c["name"], "messages": msgs[-limit:] if limit else msgs}

    @tool(writes=False, produces={"message_id": "messages[].message_id", "contact_id": "messages[].contact_id"},
          phrases=["Do I have any unread messages?", "Show me my unread texts."])
    def list_unread_messages(self) -> dict:
        """List incoming messages that have not been read yet."""
        return {"messages": [dict(m) for m in self.state["messages"] if m["direction"] == "in" and not m["read"]]}

    @tool(writes=True, consumes={"contact_id": "contact_id"},
          phrases=["Mark my chat with {contact_id} as read.", "Mark all messages from {contact_id} read."])
    def mark_conversation_read(self, contact_id: str) -> dict:
        """Mark every incoming message of a conversation as read.

        Args:
            contact_id: Id of the contact.
        """
        self._contact(contact_id)
        n = 0
        for m in self.state["messages"]:
            if m["contact_id"] == contact_id and m["direction"] == "in" and not m["read"]:
                m["read"] = True
                n += 1
        if n == 0:
            raise ToolFailure("conflict", f"no unread messages from {contact_id}")
        return {"contact_id": contact_id, "marked_read": n}

    @tool(writes=True, consumes={"message_id": "message_id"},
          phrases=["Delete message {message_id}.", "Remove the message {message_id} from the chat."])
    def delete_message(self, message_id: str) -> dict:
        """Delete one message.

        Args:
            message_id: Id of the message.
        """
        for m in self.state["messages"]:
            if m["message_id"] == message_id:
                self.state["messages"].remove(m)
                return {"deleted": message_id}
        raise ToolFailure("not_found", f"no message with id {message_id}")

    @tool(writes=True, consumes={"contact_id": "contact_id"},
          phrases=["Block {contact_id}.", "I don't want to hear from {contact_id} anymore, block them."])
    def block_contact(self, contact_id: str) -> dict:
        """Block a contact so that messages can no longer be exchanged.

        Args:
            contact_id: Id of the contact.
        """
        c = self._contact(contact_id)
        if c["blocked"]:
            raise ToolFailure("conflict", f"contact {contact_id} is already blocked")
        c["blocked"] = True
        return {"contact_id": contact_id, "blocked": True}
