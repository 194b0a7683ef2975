"""Tool environments: every tool runs, bad arguments are typed errors, state is seeded and hashed, declared
data dependencies really hold, schemas and phrases are well formed."""
from __future__ import annotations

import json
import random
import string

import pytest

from toolace_mt.registry import RegistryError

from env_fuzz import value_sources  # the same candidate values the fuzz run draws from
from toolace_mt.envs import all_envs, extract, get_env
from toolace_mt.schema import check_schema

ENVS = all_envs()
SEEDS = range(6)  # chosen: enough sampled states that every tool finds one where a success is possible
ALL_TOOLS = [(d, n) for d, cls in ENVS.items() for n in sorted(cls.tool_specs())]


# --------------------------------------------------------------------------------------------- helpers
def candidate_args(env, spec, rng, extra=None, fixed=None, n=25):
    """Up to `n` argument dicts for the required parameters (distinct values for params of one kind)."""
    fixed = fixed or {}
    params = [p for p in spec.required if p not in fixed]
    pools = {p: value_sources(env, spec, p, extra) for p in params}
    if any(not v for v in pools.values()):
        return []
    out, seen = [], set()
    for _ in range(n * 3):
        args = dict(fixed)
        for p in params:
            args[p] = rng.choice(pools[p])
        kinds = [spec.consumes.get(p) for p in args if spec.consumes.get(p)]
        vals = [args[p] for p in args if spec.consumes.get(p)]
        if len(set(kinds)) < len(kinds) and len(set(map(str, vals))) < len(vals):
            continue  # two parameters of one kind with one value (transfer A -> A): not a useful candidate
        key = json.dumps(args, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(args)
        if len(out) >= n:
            break
    return out


def try_success(env, name, rng, extra=None, fixed=None):
    """First successful call of `name` over candidate args; env state restored after each failure."""
    spec = env.tool_specs()[name]
    for args in candidate_args(env, spec, rng, extra, fixed):
        snap = env.snapshot()
        r = env.execute(name, args)
        if r.ok:
            return r
        env.restore(snap)
    return None


def succeed(cls, name, seeds=SEEDS):
    """(env, result) of a successful call of `name`, chaining one producer call when the state has no value."""
    for seed in seeds:
        rng = random.Random(seed)
        env = cls(seed=seed)
        r = try_success(env, name, rng)
        if r is not None:
            return env, r
        spec = cls.tool_specs()[name]
        for param, kind in spec.consumes.items():
            for prod in cls.tool_specs().values():
                if kind in prod.produces and prod.name != name:
                    env = cls(seed=seed)
                    pr = try_success(env, prod.name, rng)
                    if pr is None:
                        continue
                    vals = extract(pr.output, prod.produces[kind])
                    r = try_success(env, name, rng, extra={kind: vals})
                    if r is not None:
                        return env, r
        for setup in cls.tool_specs().values():  # a state precondition (a filled cart): one write call first
            if setup.writes and setup.name != name:
                env = cls(seed=seed)
                if try_success(env, setup.name, rng) is not None:
                    r = try_success(env, name, rng)
                    if r is not None:
                        return env, r
    return None, None


def producer_values(cls, producer, kind, seeds=SEEDS):
    """(env, values) pairs: successful producer calls whose output holds values of `kind` at its path."""
    spec = cls.tool_specs()[producer]
    path = spec.produces[kind]
    for seed in seeds:
        rng = random.Random(seed)
        env = cls(seed=seed)
        for args in candidate_args(env, spec, rng, n=8) or []:
            snap = env.snapshot()
            r = env.execute(producer, args)
            vals = [v for v in extract(r.output, path) if v is not None] if r.ok else []
            if vals:
                yield env, vals
                break
            env.restore(snap)
        else:
            for setup in cls.tool_specs().values():  # reach a state where the output is not empty (add to cart)
                if setup.writes and setup.name != producer:
                    env = cls(seed=seed)
                    if try_success(env, setup.name, rng) is not None:
                        r = try_success(env, producer, rng)
                        vals = [v for v in extract(r.output, path) if v is not None] if r is not None else []
                        if vals:
                            yield env, vals
                            break


# --------------------------------------------------------------------------------------------- registry
def test_registry_size_and_unique_names():
    assert len(ENVS) >= 8
    names = [n for _, n in ALL_TOOLS]
    assert len(names) >= 70
    assert len(names) == len(set(names)), "tool names must be unique across domains (evaluation maps name -> env)"
    with pytest.raises(RegistryError, match="unknown domain"):
        get_env("no_such_domain")


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_schemas_phrases_pools(domain):
    cls = ENVS[domain]
    env = cls(seed=0)
    json.dumps(env.state)  # JSON-serialisable state
    for spec in cls.tool_specs().values():
        check_schema(spec.parameters)
        fn = spec.schema["function"]
        assert fn["name"] == spec.name and fn["description"], spec.name
        props = spec.parameters["properties"]
        for p, s in props.items():
            assert s.get("description"), f"{spec.name}.{p} has no docstring description"
        assert set(spec.consumes) <= set(props), f"{spec.name}: consumes a parameter it does not have"
        assert len(spec.phrases) >= 2, f"{spec.name}: needs 2+ phrases"
        for ph in spec.phrases:
            fields = {f for _, f, _, _ in string.Formatter().parse(ph) if f}
            assert fields <= set(props), f"{spec.name}: phrase {ph!r} uses unknown {fields - set(props)}"
            assert set(spec.required) <= fields, f"{spec.name}: phrase {ph!r} misses {set(spec.required) - fields}"
        for p in props:
            if p not in spec.consumes:
                assert value_sources(env, spec, p), f"{spec.name}.{p}: no VALUE_POOLS entry and no enum"
        for kind in spec.consumes.values():
            producers = [s.name for s in cls.tool_specs().values() if kind in s.produces]
            assert kind in cls.ENTITIES or producers, f"{spec.name}: nothing provides entity kind {kind!r}"


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_entity_paths_point_into_state(domain):
    cls = ENVS[domain]
    for kind, path in cls.ENTITIES.items():
        assert any(cls(seed=s).entity_values(kind) for s in SEEDS), f"ENTITIES[{kind!r}] = {path!r} finds nothing"


@pytest.mark.parametrize("domain,name", ALL_TOOLS)
def test_tool_success_and_bad_arguments(domain, name):
    cls = ENVS[domain]
    spec = cls.tool_specs()[name]
    env, r = succeed(cls, name)
    assert r is not None, f"{name}: no successful call found on seeds {list(SEEDS)}"
    json.dumps(r.output)
    # bad arguments: missing a required parameter, or a wrong type, or an unknown parameter
    bad_cases = []
    if spec.required:
        bad_cases.append({k: v for k, v in r.arguments.items() if k != spec.required[0]})
        first = spec.required[0]
        wrong = 12345 if spec.parameters["properties"][first].get("type") == "string" else ["not", "this"]
        bad_cases.append(dict(r.arguments, **{first: wrong}))
    bad_cases.append(dict(r.arguments, not_a_parameter=1))
    for bad in bad_cases:
        h = env.state_hash()
        res = env.execute(name, bad)
        assert not res.ok and res.error.kind == "invalid_arguments", (name, bad, res.error)
        assert env.state_hash() == h
        assert json.loads(res.content())["error"] == "invalid_arguments"


@pytest.mark.parametrize("domain,name", ALL_TOOLS)
def test_write_changes_hash_read_does_not(domain, name):
    cls = ENVS[domain]
    spec = cls.tool_specs()[name]
    env, r = succeed(cls, name)
    # replay the same successful call on a fresh copy of the state it ran on to observe the hash change
    state_before = None
    for seed in SEEDS:
        e = cls(seed=seed)
        snap = e.snapshot()
        h0 = e.state_hash()
        res = e.execute(name, r.arguments)
        if res.ok:
            state_before = snap
            if spec.writes:
                assert e.state_hash() != h0, f"write tool {name} succeeded but left the state unchanged"
            else:
                assert e.state_hash() == h0, f"read tool {name} changed the state"
                assert e.state == snap
            break
    if state_before is None:  # the success needed a chained call first: check on that env directly
        h0 = env.state_hash()
        res = env.execute(name, r.arguments)
        if res.ok and not spec.writes:
            assert env.state_hash() == h0


def _scramble(obj):
    """Mutate every dict and list inside a tool output in place."""
    if isinstance(obj, dict):
        for v in list(obj.values()):
            _scramble(v)
        obj.clear()
        obj["scrambled"] = True
    elif isinstance(obj, list):
        for v in obj:
            _scramble(v)
        obj.append("scrambled")


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_outputs_do_not_alias_state(domain):
    """Callers (generators, injectors) may edit a tool output; that must never reach into the env state."""
    cls = ENVS[domain]
    for name in cls.tool_specs():
        env, r = succeed(cls, name)
        h = env.state_hash()
        _scramble(r.output)
        assert env.state_hash() == h, f"{name}: its output shares objects with the state"


def test_unknown_tool_and_non_dict_arguments():
    env = get_env("banking")(seed=0)
    h = env.state_hash()
    r = env.execute("no_such_tool", {})
    assert not r.ok and r.error.kind == "unknown_tool"
    r = env.execute("list_accounts", ["x"])
    assert not r.ok and r.error.kind == "invalid_arguments"
    assert env.state_hash() == h


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_seeded_state_and_snapshot(domain):
    cls = ENVS[domain]
    a, b = cls(seed=7), cls(seed=7)
    assert a.state == b.state and a.state_hash() == b.state_hash()
    assert len({cls(seed=s).state_hash() for s in range(5)}) > 1, "different seeds must give different states"
    snap = a.snapshot()
    h = a.state_hash()
    # run successful write calls, then restore
    for name, spec in cls.tool_specs().items():
        if spec.writes:
            try_success(a, name, random.Random(0))
    assert a.state_hash() != h
    a.restore(snap)
    assert a.state_hash() == h and a.state == b.state
    snap["mutated"] = True  # a snapshot is a copy: changing it must not touch the env
    assert "mutated" not in a.state


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_failing_write_leaves_state_unchanged(domain):
    cls = ENVS[domain]
    env = cls(seed=1)
    n_checked = 0
    for name, spec in cls.tool_specs().items():
        if not spec.writes or not spec.consumes:
            continue
        param, kind = next(iter(spec.consumes.items()))
        args = {p: (value_sources(env, spec, p) or [None])[0] for p in spec.required}
        args[param] = "ZZ-does-not-exist"
        h = env.state_hash()
        r = env.execute(name, args)
        assert not r.ok, (name, args)
        assert r.error.kind in ("not_found", "invalid_request", "conflict", "forbidden", "invalid_arguments"), r.error
        assert env.state_hash() == h, f"{name} failed but changed the state"
        n_checked += 1
    assert n_checked >= 1


def test_failure_mid_write_rolls_back():
    """A ToolFailure raised after a partial mutation must not leave the partial change behind."""
    env = get_env("banking")(seed=0)
    accts = env.entity_values("account_id")
    h = env.state_hash()
    r = env.execute("transfer_between_accounts", {"from_account": accts[0], "to_account": "ACC00000", "amount": 10.0})
    assert r.error.kind == "not_found"
    assert env.state_hash() == h
    r = env.execute("transfer_between_accounts", {"from_account": accts[0], "to_account": accts[1], "amount": 1e9})
    assert r.error.kind == "insufficient_funds" and env.state_hash() == h


def _edges():
    return [(d, *e) for d, cls in ENVS.items() for e in cls.dependency_edges()]


def test_enough_dependency_edges():
    per_domain = {d: len(cls.dependency_edges()) for d, cls in ENVS.items()}
    assert all(n >= 3 for n in per_domain.values()), per_domain


@pytest.mark.parametrize("domain,producer,consumer,param,kind", _edges())
def test_dependency_edge_holds(domain, producer, consumer, param, kind):
    cls = ENVS[domain]
    pspec = cls.tool_specs()[producer]
    cspec = cls.tool_specs()[consumer]
    path = pspec.produces[kind]
    tried = []
    for env, values in producer_values(cls, producer, kind):
        rng = random.Random(0)
        for v in values[:4]:
            for args in candidate_args(env, cspec, rng, fixed={param: v}, n=10) or [{param: v}]:
                snap = env.snapshot()
                res = env.execute(consumer, args)
                env.restore(snap)
                if res.ok or res.error.kind not in ("not_found", "invalid_arguments", "internal_error"):
                    return
                tried.append(f"{args}: {res.error.kind} {res.error.message}")
    pytest.fail(f"{producer} -> {consumer}.{param} ({kind}) never accepted at {path}: {tried[:5]}")


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_chain_of_three_exists(domain):
    """A chain producer -> consumer -> consumer of its output exists (the generators need 3-6 call chains)."""
    cls = ENVS[domain]
    edges = cls.dependency_edges()
    nxt = {}
    for p, c, _, _ in edges:
        nxt.setdefault(p, set()).add(c)
    assert any(c2 for p, cs in nxt.items() for c in cs for c2 in nxt.get(c, ()) if c2 not in (p, c)), domain


@pytest.mark.parametrize("domain", sorted(ENVS))
def test_distractors(domain):
    cls = ENVS[domain]
    assert cls.LONG_CONTEXT_KEYS
    env = cls(seed=2)
    before = {k: len(extract(env.state, k + "[]")) for k in cls.LONG_CONTEXT_KEYS}
    ents = {k: set(map(str, env.entity_values(k))) for k in cls.ENTITIES}
    state = cls.add_distractors(env.snapshot(), random.Random(0), 40)
    json.dumps(state)
    after = {k: len(extract(state, k + "[]")) for k in cls.LONG_CONTEXT_KEYS}
    assert sum(after.values()) - sum(before.values()) >= 40, (before, after)
    big = cls(state=state)
    for k, old in ents.items():  # ids stay unique, and old entities are still there
        vals = list(map(str, big.entity_values(k)))
        assert old <= set(vals)
        if k.endswith("_id"):
            assert len(vals) == len(set(vals)), f"duplicate {k} after distractors"
    # seeded: same rng -> same distractors
    assert cls.add_distractors(env.snapshot(), random.Random(0), 40) == state
    # every read tool that succeeded before still succeeds on the big state
    for name, spec in cls.tool_specs().items():
        if not spec.writes:
            _, r = succeed(cls, name, seeds=[2])
            if r is not None:
                assert big.execute(name, r.arguments).ok, name


# ------------------------------------------- issue 24 item 9: file_system paths never hold control characters
FS_PATH_PARAMS = [("write_file", "path"), ("make_directory", "directory_path"), ("list_directory", "path"),
                  ("read_file", "path"), ("move_file", "source"), ("move_file", "destination_dir"),
                  ("copy_file", "source"), ("copy_file", "destination_dir"), ("delete_file", "path"),
                  ("find_files", "directory"), ("word_count", "path")]
CONTROL_CHARS = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85"]


def test_fs_path_params_listed_are_all_path_params():
    """Every path-taking parameter of file_system is in FS_PATH_PARAMS (a new tool must be added there)."""
    specs = ENVS["file_system"].tool_specs()
    found = {(n, p) for n, s in specs.items() for p in s.parameters["properties"]
             if "path" in p or "dir" in p or p == "source"}
    assert found == set(FS_PATH_PARAMS)


def _fs_args(env, name, param, bad):
    f = env.entity_values("file_path")[0]
    d = "/tmp" if "/tmp" not in f.rsplit("/", 1)[0] else "/home/user"
    base = {"write_file": {"path": "/tmp/new_notes.txt", "content": "line one\nline two"},
            "make_directory": {"directory_path": "/tmp/newdir"}, "list_directory": {"path": "/tmp"},
            "read_file": {"path": f}, "move_file": {"source": f, "destination_dir": d},
            "copy_file": {"source": f, "destination_dir": d}, "delete_file": {"path": f},
            "find_files": {"pattern": "*", "directory": "/home"}, "word_count": {"path": f}}[name]
    args = dict(base)
    if bad is not None:
        v = args[param]
        # a new name gets the character inside it; an existing path gets it appended (else it is "not found")
        args[param] = v[:-3] + bad + v[-3:] if name in ("write_file", "make_directory") else v + bad
    return args


@pytest.mark.parametrize("name,param", FS_PATH_PARAMS)
def test_fs_path_tools_accept_clean_paths(name, param):
    env = ENVS["file_system"](seed=0)
    r = env.execute(name, _fs_args(env, name, param, None))
    assert r.ok, r.error


@pytest.mark.parametrize("ch", CONTROL_CHARS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("name,param", FS_PATH_PARAMS)
def test_fs_path_with_control_character_is_refused(name, param, ch):
    env = ENVS["file_system"](seed=0)
    h = env.state_hash()
    args = _fs_args(env, name, param, ch)
    r = env.execute(name, args)
    assert not r.ok and r.error.kind == "invalid_arguments", (name, args, r.error)
    assert "control character" in r.error.message
    if ch in "\n\r\t":  # the three the base lets through in text: refused by the file system, naming it
        assert f"U+{ord(ch):04X}" in r.error.message
    assert json.loads(r.content())["error"] == "invalid_arguments"
    assert env.state_hash() == h  # nothing created, moved or deleted
    assert not any(ch in p for p in env.state["dirs"] + [x["path"] for x in env.state["files"]])


def test_fs_newline_stays_legal_in_file_content():
    env = ENVS["file_system"](seed=0)
    r = env.execute("write_file", {"path": "/tmp/two_lines.txt", "content": "one\ntwo\r\n\tthree"})
    assert r.ok and env.execute("read_file", {"path": "/tmp/two_lines.txt"}).output["content"] == "one\ntwo\r\n\tthree"
