"""Portcullis's policy engine: IAM's policy language, validation, evaluation, simulation.

Pure Python with no Django import, so the decision service, the console, the Query API and
command-line tools all share it. See evaluator.py for the evaluation rules.
"""

from .evaluator import (
    CompiledPolicySet,
    CompiledResourcePolicy,
    Decision,
    MatchedStatement,
    Principal,
    Request,
    SourcedPolicy,
    access_denied_message,
    compile_policy_set,
    compile_policy_set_from_json,
    compile_resource_policy,
    compile_trust_policy,
    evaluate,
    evaluate_trust,
    policy_set_from_json,
    policy_set_to_json,
)
from .model import Finding, Policy, PolicyParseError, PolicyType, Statement
from .parser import parse_policy
from .summary import context_keys_for_policies, summarize_policy
from .validation import validate


def __getattr__(name: str) -> object:
    # Imported on first use so ``python -m policies.engine.simulate`` does not find its own
    # module already imported by the package.
    if name in ("simulate_custom_policy", "SimulationError"):
        from . import simulate

        return getattr(simulate, name)
    raise AttributeError(name)


__all__ = [
    "CompiledPolicySet",
    "CompiledResourcePolicy",
    "Decision",
    "Finding",
    "MatchedStatement",
    "Policy",
    "PolicyParseError",
    "PolicyType",
    "Principal",
    "Request",
    "SimulationError",
    "SourcedPolicy",
    "Statement",
    "access_denied_message",
    "compile_policy_set",
    "compile_policy_set_from_json",
    "compile_resource_policy",
    "compile_trust_policy",
    "context_keys_for_policies",
    "evaluate",
    "evaluate_trust",
    "parse_policy",
    "policy_set_from_json",
    "policy_set_to_json",
    "simulate_custom_policy",
    "summarize_policy",
    "validate",
]
