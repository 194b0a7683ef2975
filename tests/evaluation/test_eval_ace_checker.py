"""ACE-style checkers: schema mapping, question parsing, corrected vs compat_acebench rules, special phrases."""
from __future__ import annotations

from toolace_mt.evaluation.ace.checker import (compat_normal, corrected_normal, first_bracketed, special_reasons,
                                                standardize)
from toolace_mt.evaluation.ace.official import question_to_messages
from toolace_mt.evaluation.ace.schema_map import to_tool
from toolace_mt.pycalls import format_python_calls

FN = {"name": "plan_trip", "description": "Plan a trip.", "parameters": {"type": "dict", "properties": {
    "city": {"type": "string", "description": "City."},
    "budget": {"type": "number", "description": "Budget."},
    "prefs": {"type": "dict", "description": "Preferences.", "properties": {
        "interests": {"type": "list(string)", "description": "Interests."},
        "rating": {"type": "float", "description": "Minimum rating."}}},
    "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags."}},
    "required": ["city"]}}


def test_schema_mapping_of_loose_ace_types():
    t = to_tool(FN)["function"]["parameters"]
    assert t["type"] == "object" and t["x-ace-type"] == "dict"
    assert t["properties"]["budget"]["type"] == "number"
    prefs = t["properties"]["prefs"]
    assert prefs["type"] == "object"
    assert prefs["properties"]["interests"] == {"type": "array", "items": {"type": "string"},
                                                "description": "Interests.", "x-ace-type": "list(string)"}
    assert prefs["properties"]["rating"]["type"] == "number"
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(t)


def test_question_to_messages():
    q = "user: Book it.\nsystem: Which day?\nuser: Friday\nplease\n"
    assert question_to_messages(q) == [{"role": "user", "content": "Book it."},
                                       {"role": "assistant", "content": "Which day?"},
                                       {"role": "user", "content": "Friday\nplease"}]


def _call(**args):
    return [{"name": "plan_trip", "arguments": args}]


def test_corrected_checker_rules():
    gt = {"plan_trip": {"city": "New York", "prefs": {"interests": ["art museums"], "rating": 4.5}}}
    assert corrected_normal(_call(city="new york", prefs={"interests": ["Art Museums"], "rating": 4.5}), gt, [FN]) == []
    # a longer string is not the same value (the official substring rule would accept it)
    assert corrected_normal(_call(city="New York City", prefs={"interests": ["art museums"], "rating": 4.5}), gt, [FN])
    assert corrected_normal(_call(city="New York", prefs={"interests": ["art museums"], "rating": 4.0}), gt, [FN])
    assert corrected_normal(_call(city="New York", prefs={"interests": ["art museums"], "rating": 4.5}, tags=[]),
                            gt, [FN])  # extra parameter
    assert corrected_normal(_call(prefs={"interests": ["art museums"], "rating": 4.5}), gt, [FN])  # missing required
    # repeated calls carry _1/_2 in the GT; each GT call needs its own output call
    gt2 = {"plan_trip_1": {"city": "Oslo"}, "plan_trip_2": {"city": "Rome"}}
    assert corrected_normal(_call(city="Rome") + _call(city="Oslo"), gt2, [FN]) == []
    assert corrected_normal(_call(city="Oslo") + _call(city="Oslo"), gt2, [FN])
    # alternatives: any one may match
    assert corrected_normal(_call(city="Rome"), [{"plan_trip": {"city": "Oslo"}}, {"plan_trip": {"city": "Rome"}}],
                            [FN]) == []


def test_compat_reproduces_the_official_quirks():
    gt = {"plan_trip": {"city": "New York", "prefs": {"interests": ["art museums"], "rating": 4.5}}}
    raw = format_python_calls(_call(city="New York", prefs={"interests": ["art museums"], "rating": 4.5}))
    # whitespace deletion in the multi-turn categories breaks a spaced string in a list inside an object
    assert compat_normal(raw, gt, [FN], multi_turn=False) == []
    assert compat_normal(raw, gt, [FN], multi_turn=True)
    # substring match of standardised strings
    raw2 = format_python_calls(_call(city="New York City", prefs={"interests": ["art museums"], "rating": 4.5}))
    assert compat_normal(raw2, gt, [FN], multi_turn=False) == []
    # 'number' is read as int: a float value whose GT is a float is a "variable" and is never compared
    gt3 = {"plan_trip": {"city": "Oslo", "budget": 100.5}}
    assert compat_normal(format_python_calls(_call(city="Oslo", budget=999.0)), gt3, [FN], False) == []
    assert corrected_normal(_call(city="Oslo", budget=999.0), gt3, [FN])
    # the same output call may serve two GT calls
    gt4 = {"plan_trip_1": {"city": "Oslo"}, "plan_trip_2": {"city": "Oslo"}}
    assert compat_normal(format_python_calls(_call(city="Oslo") * 2), gt4, [FN], False) == []
    # text around the call list (single-turn path takes the first outermost [...])
    assert first_bracketed("Sure! [f(a=[1, 2])] done [x]") == "[f(a=[1, 2])]"
    assert compat_normal("Here you go: " + raw, gt, [FN], multi_turn=False) == []
    assert compat_normal("no calls here", gt, [FN], multi_turn=False)


def test_special_phrases():
    assert special_reasons("incomplete", "Missing necessary parameters (date, title) for the api (cal_add)",
                           {"cal_add": ["date", "title"]}) == []
    assert special_reasons("incomplete", "Missing necessary parameters (date) for the api (cal_add)",
                           {"cal_add": ["date", "title"]}) == ["did not name the missing parameter title"]
    assert special_reasons("incomplete", "Please give me the date and title.", {"cal_add": ["date"]})
    assert special_reasons("error_param", "There is incorrect value (31/02) for the parameters (date)",
                           {"date": ["31/02"]}) == []
    assert special_reasons("error_param", "That date looks wrong: 31/02", {"date": ["31/02"]})
    assert special_reasons("irrelevant", "Due to the limitations of the function, I cannot solve this problem.",
                           "x") == []
    assert special_reasons("irrelevant", "I'm sorry, but I can't help with that right now.", "x")
    assert standardize("New-York, N.Y.") == "newyorkny"
