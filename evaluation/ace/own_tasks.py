"""Our own ACEBench-style normal and special items, built deterministically from a seeded generator.

A small bank of ACE-style function docs (our own; loose type names such as ``dict``/``float`` on purpose, so
the schema mapping is exercised) and, per function, a sentence renderer that states every argument value.
Items use the official category names, so the same weights and summaries apply. Agent items live in
`agent_tasks.py`.
"""
from __future__ import annotations

import json
import random
from typing import Any, Callable

from toolace_mt.pycalls import format_python_calls

from .checker import PHRASE_ERROR, PHRASE_INCOMPLETE, PHRASE_IRRELEVANT

PER_CATEGORY = 10  # chosen: 150 normal/special items run in well under a second with the oracle
SEED = 7  # chosen: fixed, so the task set (and its version hash) never changes silently

CITIES = ["Paris", "Lisbon", "Osaka", "Denver", "Nairobi", "Oslo", "Toronto", "Seville"]
NAMES = ["Maya Chen", "Tom Berger", "Aisha Khan", "Luis Ortega", "Nina Petrova", "Sam Walker"]
SONGS = ["Blue Skies", "Midnight Train", "River Song", "Golden Hour", "Paper Planes", "Slow Dance"]
ITEMS = ["desk lamp", "water bottle", "yoga mat", "backpack", "coffee grinder", "notebook"]

FUNCS: dict[str, dict[str, Any]] = {
    "weather_get_forecast": {"name": "weather_get_forecast", "description": "Get the weather forecast of a city.",
                             "parameters": {"type": "dict", "properties": {
                                 "city": {"type": "string", "description": "City name."},
                                 "days": {"type": "integer", "description": "Number of days, 1 to 10.",
                                          "minimum": 1, "maximum": 10},
                                 "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                                          "description": "Temperature unit."}},
                                 "required": ["city", "days"]}},
    "weather_get_history": {"name": "weather_get_history", "description": "Get the observed weather of a past day.",
                            "parameters": {"type": "dict", "properties": {
                                "city": {"type": "string", "description": "City name."},
                                "date": {"type": "string", "description": "Date, YYYY-MM-DD.",
                                         "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}},
                                "required": ["city", "date"]}},
    "calendar_create_event": {"name": "calendar_create_event", "description": "Create a calendar event.",
                              "parameters": {"type": "dict", "properties": {
                                  "title": {"type": "string", "description": "Event title."},
                                  "date": {"type": "string", "description": "Date, YYYY-MM-DD.",
                                           "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
                                  "attendees": {"type": "array", "items": {"type": "string"},
                                                "description": "Names of the attendees."},
                                  "reminder": {"type": "boolean", "description": "Send a reminder the day before."}},
                                  "required": ["title", "date"]}},
    "shop_place_order": {"name": "shop_place_order", "description": "Order an item from the online shop.",
                         "parameters": {"type": "dict", "properties": {
                             "item": {"type": "string", "description": "Item name."},
                             "quantity": {"type": "integer", "description": "How many, at least 1.", "minimum": 1},
                             "options": {"type": "dict", "description": "Order options.", "properties": {
                                 "color": {"type": "string", "description": "Color."},
                                 "gift_wrap": {"type": "boolean", "description": "Gift wrap the item."}},
                                         "required": ["color", "gift_wrap"]}},
                             "required": ["item", "quantity"]}},
    "hotel_search": {"name": "hotel_search", "description": "Search hotels.",
                     "parameters": {"type": "dict", "properties": {
                         "city": {"type": "string", "description": "City name."},
                         "check_in": {"type": "string", "description": "Check-in date, YYYY-MM-DD."},
                         "nights": {"type": "integer", "description": "Number of nights."},
                         "filters": {"type": "object", "description": "Search filters.", "properties": {
                             "min_stars": {"type": "integer", "description": "Minimum stars."},
                             "amenities": {"type": "array", "items": {"type": "string"},
                                           "description": "Required amenities."},
                             "price": {"type": "object", "description": "Nightly price range.", "properties": {
                                 "min": {"type": "float", "description": "Minimum price."},
                                 "max": {"type": "float", "description": "Maximum price."}},
                                       "required": ["min", "max"]}},
                                     "required": ["min_stars", "amenities", "price"]}},
                         "required": ["city", "check_in", "nights"]}},
    "fitness_log_workout": {"name": "fitness_log_workout", "description": "Log a workout.",
                            "parameters": {"type": "dict", "properties": {
                                "activity": {"type": "string", "enum": ["running", "cycling", "swimming"],
                                             "description": "Activity."},
                                "duration_minutes": {"type": "float", "description": "Duration in minutes."},
                                "heart_rate_tracking": {"type": "boolean", "description": "Track heart rate."}},
                                "required": ["activity", "duration_minutes", "heart_rate_tracking"]}},
    "translate_text": {"name": "translate_text", "description": "Translate a short text.",
                       "parameters": {"type": "dict", "properties": {
                           "text": {"type": "string", "description": "The text."},
                           "target_language": {"type": "string", "enum": ["fr", "de", "es", "ja"],
                                               "description": "Target language code."}},
                           "required": ["text", "target_language"]}},
    "translate_document": {"name": "translate_document", "description": "Translate a document file.",
                           "parameters": {"type": "dict", "properties": {
                               "file_path": {"type": "string", "description": "Path of the document."},
                               "target_language": {"type": "string", "enum": ["fr", "de", "es", "ja"],
                                                   "description": "Target language code."}},
                               "required": ["file_path", "target_language"]}},
    "music_create_playlist": {"name": "music_create_playlist", "description": "Create a playlist.",
                              "parameters": {"type": "dict", "properties": {
                                  "name": {"type": "string", "description": "Playlist name."},
                                  "songs": {"type": "array", "items": {"type": "string"},
                                            "description": "Song titles."},
                                  "public": {"type": "boolean", "description": "Whether others can see it."}},
                                  "required": ["name", "songs", "public"]}},
    "email_send": {"name": "email_send", "description": "Send an email.",
                   "parameters": {"type": "dict", "properties": {
                       "to": {"type": "string", "description": "Recipient address."},
                       "subject": {"type": "string", "description": "Subject."},
                       "body": {"type": "string", "description": "Body text."}},
                       "required": ["to", "subject", "body"]}},
}
LANG = {"fr": "French", "de": "German", "es": "Spanish", "ja": "Japanese"}


def _date(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _sample(fn: str, rng: random.Random) -> tuple[dict[str, Any], str]:
    """Arguments for `fn` and a request that states all of them."""
    if fn == "weather_get_forecast":
        a = {"city": rng.choice(CITIES), "days": rng.randint(2, 7), "unit": rng.choice(["celsius", "fahrenheit"])}
        return a, f"What's the weather forecast for {a['city']} for the next {a['days']} days, in {a['unit']}?"
    if fn == "weather_get_history":
        a = {"city": rng.choice(CITIES), "date": _date(rng)}
        return a, f"What was the weather like in {a['city']} on {a['date']}?"
    if fn == "calendar_create_event":
        a = {"title": rng.choice(["Team sync", "Dentist", "Book club", "Budget review"]), "date": _date(rng),
             "attendees": rng.sample(NAMES, 2), "reminder": rng.random() < 0.5}
        rem = "with" if a["reminder"] else "without"
        return a, (f"Create an event '{a['title']}' on {a['date']} with {a['attendees'][0]} and "
                   f"{a['attendees'][1]}, {rem} a reminder.")
    if fn == "shop_place_order":
        a = {"item": rng.choice(ITEMS), "quantity": rng.randint(1, 4),
             "options": {"color": rng.choice(["red", "black", "green"]), "gift_wrap": rng.random() < 0.5}}
        gw = "gift wrapped" if a["options"]["gift_wrap"] else "not gift wrapped"
        return a, f"Order {a['quantity']} {a['item']} in {a['options']['color']}, {gw}."
    if fn == "hotel_search":
        lo = float(rng.choice([50, 80, 100]))
        a = {"city": rng.choice(CITIES), "check_in": _date(rng), "nights": rng.randint(1, 5),
             "filters": {"min_stars": rng.randint(3, 5), "amenities": rng.sample(["wifi", "pool", "gym", "parking"], 2),
                         "price": {"min": lo, "max": lo + 100.0}}}
        f = a["filters"]
        return a, (f"Find hotels in {a['city']} from {a['check_in']} for {a['nights']} nights, at least "
                   f"{f['min_stars']} stars, with {f['amenities'][0]} and {f['amenities'][1]}, between "
                   f"{f['price']['min']} and {f['price']['max']} per night.")
    if fn == "fitness_log_workout":
        a = {"activity": rng.choice(["running", "cycling", "swimming"]),
             "duration_minutes": rng.choice([30.5, 45.0, 62.5]),
             "heart_rate_tracking": rng.random() < 0.5}
        hr = "with" if a["heart_rate_tracking"] else "without"
        return a, f"Log {a['duration_minutes']} minutes of {a['activity']}, {hr} heart rate tracking."
    if fn == "translate_text":
        a = {"text": rng.choice(["Good morning", "Where is the station?", "Thank you very much"]),
             "target_language": rng.choice(list(LANG))}
        return a, f"Translate '{a['text']}' into {LANG[a['target_language']]}."
    if fn == "translate_document":
        a = {"file_path": rng.choice(["/docs/report.pdf", "/docs/contract.docx"]),
             "target_language": rng.choice(list(LANG))}
        return a, f"Translate the document {a['file_path']} into {LANG[a['target_language']]}."
    if fn == "music_create_playlist":
        a = {"name": rng.choice(["Road trip", "Focus", "Sunday"]), "songs": rng.sample(SONGS, 3),
             "public": rng.random() < 0.5}
        vis = "public" if a["public"] else "private"
        return a, f"Make a {vis} playlist called '{a['name']}' with {', '.join(a['songs'][:2])} and {a['songs'][2]}."
    if fn == "email_send":
        who = rng.choice(NAMES)
        a = {"to": who.split()[0].lower() + "@example.com", "subject": rng.choice(["Lunch", "Report", "Trip"]),
             "body": rng.choice(["See you at noon.", "The report is attached.", "Tickets are booked."])}
        return a, f"Email {a['to']} with the subject '{a['subject']}' saying '{a['body']}'"
    raise KeyError(fn)


# parameter type groups for the atom categories: category -> [(function, parameter)]
ATOM = {
    "normal_atom_bool": [("calendar_create_event", "reminder"), ("fitness_log_workout", "heart_rate_tracking"),
                         ("music_create_playlist", "public")],
    "normal_atom_enum": [("fitness_log_workout", "activity"), ("translate_text", "target_language"),
                         ("weather_get_forecast", "unit")],
    "normal_atom_number": [("fitness_log_workout", "duration_minutes"), ("shop_place_order", "quantity"),
                           ("weather_get_forecast", "days")],
    "normal_atom_list": [("calendar_create_event", "attendees"), ("music_create_playlist", "songs")],
    "normal_atom_object_short": [("shop_place_order", "options")],
    "normal_atom_object_deep": [("hotel_search", "filters")],
}
SIMILAR = [("weather_get_forecast", "weather_get_history"), ("translate_text", "translate_document")]
IRRELEVANT = ["Book me a table for two at an Italian restaurant tonight.", "What is the square root of 7921?",
              "Call my mother and tell her I'm running late.", "Who won the football world cup in 1998?",
              "Order a taxi to the airport for 6 am."]


def _functions(rng: random.Random, must: list[str], n_distractors: int = 2) -> list[dict[str, Any]]:
    others = [f for f in sorted(FUNCS) if f not in must]
    names = must + rng.sample(others, n_distractors)
    rng.shuffle(names)
    return [json.loads(json.dumps(FUNCS[n])) for n in names]


def _item(cat: str, i: int, question: str, functions, gt, **extra) -> dict[str, Any]:
    return {"id": f"own_{cat}_{i}", "category": cat, "source": "own", "functions": functions, "question": question,
            "time": "2025-03-01", "profile": extra.pop("profile", ""), "ground_truth": gt, **extra}


def _incomplete(fn: str, rng: random.Random) -> tuple[str, dict[str, list[str]]]:
    """A request for `fn` that leaves out one required parameter."""
    a, _ = _sample(fn, rng)
    req = FUNCS[fn]["parameters"]["required"]
    drop = rng.choice(req)
    templates: dict[str, Callable[[dict], str]] = {
        "weather_get_forecast": lambda a: (f"What's the forecast for the next {a['days']} days?" if drop == "city"
                                           else f"What's the weather forecast for {a['city']}?"),
        "calendar_create_event": lambda a: (f"Put an event on {a['date']} in my calendar." if drop == "title"
                                            else f"Create an event called '{a['title']}' in my calendar."),
        "shop_place_order": lambda a: (f"Order {a['quantity']} of something for me." if drop == "item"
                                       else f"Order a {a['item']} for me."),
        "translate_text": lambda a: (f"Translate something into {LANG[a['target_language']]}." if drop == "text"
                                     else f"Translate '{a['text']}' for me."),
        "email_send": lambda a: ("Send an email to my colleague saying the report is attached, subject 'Report'."
                                 if drop == "to" else f"Email {a['to']} about the trip."),
    }
    if fn not in templates:
        raise KeyError(fn)
    q = templates[fn](a)
    missing = [drop] if fn != "email_send" or drop == "to" else [p for p in req if p not in ("to",)]
    return q, {fn: missing}


def _error(fn: str, rng: random.Random) -> tuple[str, dict[str, list[str]]]:
    """A request for `fn` whose value for one parameter is invalid for its doc."""
    a, _ = _sample(fn, rng)
    if fn == "weather_get_history":
        bad = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025"
        return f"What was the weather like in {a['city']} on {bad}?", {"date": [bad]}
    if fn == "shop_place_order":
        bad = -rng.randint(1, 5)
        return f"Order {bad} {a['item']} in {a['options']['color']}.", {"quantity": [str(bad)]}
    if fn == "weather_get_forecast":
        bad = rng.choice([15, 30, 45])
        return f"What's the forecast for {a['city']} for the next {bad} days?", {"days": [str(bad)]}
    raise KeyError(fn)


def special_gold_text(cat: str, gt: Any) -> str:
    """The answer a perfect model gives to a special item (what the oracle says)."""
    if cat == "special_incomplete":
        return " ".join(f"{PHRASE_INCOMPLETE} ({', '.join(map(str, ps))}) for the api ({fn})." for fn, ps in gt.items())
    if cat == "special_error_param":
        return " ".join(f"{PHRASE_ERROR} ({', '.join(map(str, vs))}) for the parameters ({p}) in the conversation "
                        f"history." for p, vs in gt.items())
    return gt if isinstance(gt, str) and PHRASE_IRRELEVANT in gt else \
        f"Due to {PHRASE_IRRELEVANT}, I cannot solve this problem."


def build_normal_special(per_category: int = PER_CATEGORY, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    bank = sorted(FUNCS)
    for i in range(per_category):
        fn = bank[i % len(bank)]
        a, s = _sample(fn, rng)
        out.append(_item("normal_single_turn_single_function", i, f"user: {s}\n", _functions(rng, [fn]), {fn: a}))
    for i in range(per_category):
        f1, f2 = rng.sample(bank, 2)
        (a1, s1), (a2, s2) = _sample(f1, rng), _sample(f2, rng)
        out.append(_item("normal_single_turn_parallel_function", i, f"user: {s1} Also: {s2}\n",
                         _functions(rng, [f1, f2]), {f1: a1, f2: a2}))
    # multi-turn: 2 turns per conversation (ids ..._<conv>_<turn>)
    for c in range(per_category // 2):
        fn = ["weather_get_forecast", "shop_place_order", "translate_text", "calendar_create_event",
              "email_send"][c % 5]
        a, s = _sample(fn, rng)
        funcs = _functions(rng, [fn])
        q_in, miss = _incomplete(fn, random.Random(seed * 100 + c))
        p = miss[fn][0]
        hist = f"user: {q_in}\nsystem: Could you tell me the {p.replace('_', ' ')}?\nuser: {s}\n"
        out.append(_item("normal_multi_turn_user_adjust", 2 * c, hist, funcs, {fn: a},
                         conversation=f"own_normal_multi_turn_user_adjust_{c}"))
        out[-1]["id"] = f"own_normal_multi_turn_user_adjust_{c}_0"
        b = dict(a)
        key = next(k for k in ("city", "quantity", "target_language", "title", "subject") if k in a)
        b[key] = {"city": "Reykjavik", "quantity": a.get("quantity", 1) + 5, "target_language": "de" if
                  a.get("target_language") != "de" else "es", "title": "Board meeting", "subject": "Update"}[key]
        shown = LANG[b[key]] if key == "target_language" else b[key]
        hist2 = hist + f"system: {format_python_calls([{'name': fn, 'arguments': a}])}\n" \
                       f"user: Sorry, change the {key.replace('_', ' ')} to {shown} and do it again.\n"
        out.append(_item("normal_multi_turn_user_adjust", 2 * c + 1, hist2, funcs, {fn: b},
                         conversation=f"own_normal_multi_turn_user_adjust_{c}"))
        out[-1]["id"] = f"own_normal_multi_turn_user_adjust_{c}_1"
    for c in range(per_category // 2):
        f1, f2 = rng.sample(bank, 2)
        (a1, s1), (a2, s2) = _sample(f1, rng), _sample(f2, rng)
        funcs = _functions(rng, [f1, f2])
        h1 = f"user: {s1}\n"
        h2 = h1 + f"system: {format_python_calls([{'name': f1, 'arguments': a1}])}\nuser: Thanks. {s2}\n"
        conv = f"own_normal_multi_turn_user_switch_{c}"
        for t, (h, gt) in enumerate([(h1, {f1: a1}), (h2, {f2: a2})]):
            out.append(_item("normal_multi_turn_user_switch", 0, h, funcs, gt, conversation=conv))
            out[-1]["id"] = f"{conv}_{t}"
    for i in range(per_category):
        pair = SIMILAR[i % len(SIMILAR)]
        fn = pair[i // len(SIMILAR) % 2]
        a, s = _sample(fn, rng)
        out.append(_item("normal_similar_api", i, f"user: {s}\n", _functions(rng, list(pair), 1), {fn: a}))
    for i in range(per_category):
        name, city, unit = rng.choice(NAMES), rng.choice(CITIES), rng.choice(["celsius", "fahrenheit"])
        days = rng.randint(2, 6)
        profile = f"Name: {name}. Home city: {city}. Preferred temperature unit: {unit}."
        out.append(_item("normal_preference", i, f"user: How will the weather be at home over the next {days} "
                                                 f"days? Use my preferred unit.\n",
                         _functions(rng, ["weather_get_forecast"]),
                         {"weather_get_forecast": {"city": city, "days": days, "unit": unit}}, profile=profile))
    for cat, pairs in ATOM.items():
        for i in range(per_category):
            fn, _ = pairs[i % len(pairs)]
            a, s = _sample(fn, rng)
            out.append(_item(cat, i, f"user: {s}\n", _functions(rng, [fn]), {fn: a}))
    inc_fns = ["weather_get_forecast", "calendar_create_event", "shop_place_order", "translate_text", "email_send"]
    for i in range(per_category):
        fn = inc_fns[i % len(inc_fns)]
        q, gt = _incomplete(fn, rng)
        out.append(_item("special_incomplete", i, f"user: {q}\n", _functions(rng, [fn]), gt))
    err_fns = ["weather_get_history", "shop_place_order", "weather_get_forecast"]
    for i in range(per_category):
        fn = err_fns[i % len(err_fns)]
        q, gt = _error(fn, rng)
        out.append(_item("special_error_param", i, f"user: {q}\n", _functions(rng, [fn]), gt))
    for i in range(per_category):
        q = IRRELEVANT[i % len(IRRELEVANT)]
        out.append(_item("special_irrelevant", i, f"user: {q}\n", _functions(rng, [], 3),
                         "Due to the limitations of the function, I cannot solve this problem."))
    for t in out:
        if t["category"].startswith("special"):
            t["gold_text"] = special_gold_text(t["category"], t["ground_truth"])
    return out
