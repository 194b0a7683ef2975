"""A personal calendar with reminders: events, attendees, rescheduling, to-do reminders."""
from __future__ import annotations

import random
from typing import Any, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_TITLES = ["Team standup", "Dentist appointment", "Lunch with Priya", "Quarterly review", "Yoga class",
           "Call with landlord", "Project kickoff", "Parent-teacher meeting", "1:1 with manager", "Book club"]
_DATES = ["2024-05-20", "2024-05-21", "2024-05-22", "2024-05-23", "2024-05-24"]
TODAY = "2024-05-20"  # chosen: the first sampled day; the April distractor events lie in the past
_DAY = Rule(date=True)  # any real day (a filter may look at the past)
_NEW_DAY = Rule(date=True, window=True)  # a day to put something on: not in the past
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_HHMM = Rule(pattern=r"[0-9]{2}:[0-9]{2}")  # 24h HH:MM; `_minutes` checks the ranges
_REMINDERS = ["Pay electricity bill", "Buy a birthday card for Mom", "Renew car insurance", "Water the plants",
              "Submit expense report", "Pick up dry cleaning"]


def _minutes(hhmm: str) -> int:
    try:
        h, m = hhmm.split(":")
        h, m = int(h), int(m)
    except ValueError:
        raise ToolFailure("invalid_request", f"time {hhmm!r} is not HH:MM") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ToolFailure("invalid_request", f"time {hhmm!r} is not a valid time of day")
    return h * 60 + m


@register
class CalendarRemindersEnv(Env):
    domain = "calendar_reminders"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A personal calendar and reminder list: create, move, cancel events; add and complete reminders."
    ENTITIES = {"event_id": "events[].event_id", "reminder_id": "reminders[].reminder_id", "event_date": "events[].date"}
    VALUE_POOLS = {
        "title": ["Coffee with Dana", "Gym session", "Flight check-in", "Doctor follow-up", "Design review"],
        "date": _DATES,
        "start_time": ["07:30", "12:30", "18:00", "20:15"],
        "duration_minutes": [30, 45, 60, 90],
        "location": ["Room 4B", "Blue Bottle Cafe", "Zoom", "City Clinic"],
        "email": ["dana@example.com", "li.wei@example.org", "sam@example.net"],
        "text": ["call the bank", "order printer ink", "book a haircut", "send the invoice to the client"],
        "due_date": _DATES,
        "include_done": [True, False],
    }
    LONG_CONTEXT_KEYS = ["events", "reminders"]

    @classmethod
    def _event(cls, rng: random.Random, eid: str, date: str) -> dict[str, Any]:
        # chosen: events at office hours on the hour or half-hour, so the pooled evening times rarely clash
        return {"event_id": eid, "title": rng.choice(_TITLES), "date": date,
                "start_time": f"{rng.randint(8, 16):02d}:{rng.choice(['00', '30'])}",
                "duration_minutes": rng.choice([30, 60]), "location": rng.choice(["Office", "Zoom", "Downtown"]),
                "attendees": []}

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        events = [cls._event(rng, eid, rng.choice(_DATES)) for eid in unique_ids(rng, "EV", rng.randint(4, 8), 100, 1000)]
        reminders = [{"reminder_id": rid, "text": t, "due_date": rng.choice(_DATES), "done": False}
                     for rid, t in zip(unique_ids(rng, "RM", 3, 100, 1000), rng.sample(_REMINDERS, 3))]
        return {"today": TODAY, "owner": "alex@example.com", "events": events, "reminders": reminders, "next_id": 1}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Past events (April) and completed reminders: they never clash with the pooled May dates."""
        taken = {e["event_id"] for e in state["events"]} | {r["reminder_id"] for r in state["reminders"]}
        for xid in unique_ids(rng, "EV", n, 1000, 100000, taken):
            if rng.random() < 0.25:
                state["reminders"].insert(0, {"reminder_id": "RM" + xid[2:], "text": rng.choice(_REMINDERS),
                                              "due_date": f"2024-04-{rng.randint(1, 30):02d}", "done": True})
            else:
                state["events"].insert(0, cls._event(rng, xid, f"2024-04-{rng.randint(1, 30):02d}"))
        return state

    def _get(self, event_id: str) -> dict[str, Any]:
        for e in self.state["events"]:
            if e["event_id"] == event_id:
                return e
        raise ToolFailure("not_found", f"no event with id {event_id}")

    def _clash(self, date: str, start: int, dur: int, skip: str = "") -> Optional[dict[str, Any]]:
        for e in self.state["events"]:
            if e["event_id"] != skip and e["date"] == date:
                s = _minutes(e["start_time"])
                if start < s + e["duration_minutes"] and s < start + dur:
                    return e
        return None

    def _new_id(self, prefix: str) -> str:
        i = self.state["next_id"]
        self.state["next_id"] += 1
        return f"{prefix}N{i:03d}"

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, consumes={"date": "event_date"}, produces={"event_id": "events[].event_id"},
          rules={"date": _DAY},
          phrases=["What's on my calendar on {date}?", "Do I have anything scheduled for {date}?"])
    def list_events(self, date: Optional[str] = None) -> dict:
        """List calendar events, on one day or all of them, in time order.

        Args:
            date: Only events on this day, YYYY-MM-DD.
        """
        evs = [dict(e, attendees=list(e["attendees"])) for e in self.state["events"] if date is None or e["date"] == date]
        return {"events": sorted(evs, key=lambda e: (e["date"], e["start_time"]))}

    @tool(writes=False, consumes={"event_id": "event_id"}, produces={"event_id": "event_id"},
          phrases=["Give me the details of event {event_id}.", "When and where is {event_id}?"])
    def get_event(self, event_id: str) -> dict:
        """Get one event's time, place and attendees.

        Args:
            event_id: The event's id, e.g. EV123.
        """
        e = self._get(event_id)
        return dict(e, attendees=list(e["attendees"]))

    @tool(writes=True, produces={"event_id": "event_id"},
          # chosen: an event lasts at most a day; titles and places fit in 200 characters
          rules={"date": _NEW_DAY, "start_time": _HHMM, "duration_minutes": Rule(ge=1, le=1440),
                 "title": Rule(max_len=200), "location": Rule(max_len=200, allow_empty=True)},
          phrases=["Put '{title}' on my calendar on {date} at {start_time}.",
                   "Schedule {title} for {date}, {start_time}, {duration_minutes} minutes."])
    def create_event(self, title: str, date: str, start_time: str, duration_minutes: int = 60,
                     location: Optional[str] = None) -> dict:
        """Create a calendar event; refused if it overlaps another event.

        Args:
            title: What the event is.
            date: Day of the event, YYYY-MM-DD.
            start_time: Start time, HH:MM (24h).
            duration_minutes: Length in minutes.
            location: Where it takes place.
        """
        start = _minutes(start_time)
        if duration_minutes <= 0:
            raise ToolFailure("invalid_request", "duration must be positive")
        other = self._clash(date, start, duration_minutes)
        if other:
            raise ToolFailure("conflict", f"overlaps {other['title']!r} ({other['event_id']}) at {other['start_time']}")
        eid = self._new_id("EV")
        e = {"event_id": eid, "title": title, "date": date, "start_time": start_time,
             "duration_minutes": duration_minutes, "location": location or "", "attendees": []}
        self.state["events"].append(e)
        return dict(e, attendees=[])

    @tool(writes=True, consumes={"event_id": "event_id"}, rules={"date": _NEW_DAY, "start_time": _HHMM},
          phrases=["Move {event_id} to {date} at {start_time}.", "Reschedule event {event_id} to {start_time} on {date}."])
    def reschedule_event(self, event_id: str, date: str, start_time: str) -> dict:
        """Move an event to another day and time, keeping its length.

        Args:
            event_id: The event's id.
            date: New day, YYYY-MM-DD.
            start_time: New start time, HH:MM (24h).
        """
        e = self._get(event_id)
        start = _minutes(start_time)
        if e["date"] == date and e["start_time"] == start_time:
            raise ToolFailure("conflict", f"event {event_id} is already at that time")
        other = self._clash(date, start, e["duration_minutes"], skip=event_id)
        if other:
            raise ToolFailure("conflict", f"overlaps {other['title']!r} ({other['event_id']}) at {other['start_time']}")
        e["date"], e["start_time"] = date, start_time
        return dict(e, attendees=list(e["attendees"]))

    @tool(writes=True, consumes={"event_id": "event_id"},
          phrases=["Cancel {event_id}.", "Delete the event {event_id} from my calendar."])
    def delete_event(self, event_id: str) -> dict:
        """Delete an event.

        Args:
            event_id: The event's id.
        """
        e = self._get(event_id)
        self.state["events"].remove(e)
        return {"deleted": event_id, "title": e["title"]}

    @tool(writes=True, consumes={"event_id": "event_id"}, rules={"email": Rule(pattern=_EMAIL, max_len=254)},
          phrases=["Invite {email} to {event_id}.", "Add {email} as an attendee of event {event_id}."])
    def add_attendee(self, event_id: str, email: str) -> dict:
        """Invite someone to an event.

        Args:
            event_id: The event's id.
            email: The attendee's email address.
        """
        e = self._get(event_id)
        if "@" not in email:
            raise ToolFailure("invalid_request", f"{email!r} is not an email address")
        if email in e["attendees"]:
            raise ToolFailure("conflict", f"{email} is already invited")
        e["attendees"].append(email)
        return {"event_id": event_id, "attendees": list(e["attendees"])}

    @tool(writes=True, produces={"reminder_id": "reminder_id"},
          rules={"due_date": _NEW_DAY, "text": Rule(max_len=200)},
          phrases=["Remind me to {text} on {due_date}.", "Add a reminder '{text}' due {due_date}."])
    def create_reminder(self, text: str, due_date: str) -> dict:
        """Add a to-do reminder.

        Args:
            text: What to be reminded of.
            due_date: Day it is due, YYYY-MM-DD.
        """
        rid = self._new_id("RM")
        r = {"reminder_id": rid, "text": text, "due_date": due_date, "done": False}
        self.state["reminders"].append(r)
        return dict(r)

    @tool(writes=False, produces={"reminder_id": "reminders[].reminder_id"},
          phrases=["What are my reminders?", "Show my open to-dos."])
    def list_reminders(self, include_done: bool = False) -> dict:
        """List reminders, by default only those not done yet.

        Args:
            include_done: Also list completed reminders.
        """
        return {"reminders": [dict(r) for r in self.state["reminders"] if include_done or not r["done"]]}

    @tool(writes=True, consumes={"reminder_id": "reminder_id"},
          phrases=["Mark reminder {reminder_id} as done.", "I've finished {reminder_id}, tick it off."])
    def complete_reminder(self, reminder_id: str) -> dict:
        """Mark a reminder as done.

        Args:
            reminder_id: The reminder's id, e.g. RM123.
        """
        for r in self.state["reminders"]:
            if r["reminder_id"] == reminder_id:
                if r["done"]:
                    raise ToolFailure("conflict", f"reminder {reminder_id} is already done")
                r["done"] = True
                return dict(r)
        raise ToolFailure("not_found", f"no reminder with id {reminder_id}")
