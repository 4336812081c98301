"""Registry of the toy world's offline "brains", the stand-ins for external models behind ``toy:<role>``.

A brain is a callable ``brain(request: ChatRequest) -> str`` with a ``name`` attribute (part of the cache
identity: change it when the brain's behaviour changes). It sees exactly the request the real model would
see and answers in the real model's format; it may raise :class:`~valor_lib.clients.errors.CallError` to
report a failure the way a provider would. Modules register a factory on import::

    register_toy_brain("verifier", lambda **options: ToyVerifier(**options))

``toy:<role>`` imports the role's module from :data:`TOY_BRAIN_MODULES` the first time it is needed, then
calls the factory with the client's ``brain_options``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from valor_lib.clients.errors import ClientConfigError
from valor_lib.clients.types import ChatRequest


class ToyBrain(Protocol):
    name: str

    def __call__(self, request: ChatRequest) -> str: ...


BrainFactory = Callable[..., ToyBrain]

# role (the argument of a ``toy:<role>`` spec, as in params' common.backends) -> module that registers its brain.
TOY_BRAIN_MODULES: dict[str, str] = {
    "verifier": "valor_lib.rewards.toy_verifier",
    "vlm-verifier": "valor_lib.grounding.toy_verifier",
    "querygen": "valor_lib.querygen.toy_querygen",
    "vqa": "valor_lib.tools.toy_vqa",
    "judge": "valor_lib.evaluation.toy_judge",
}

_FACTORIES: dict[str, BrainFactory] = {}


def register_toy_brain(role: str, factory: BrainFactory, *, replace: bool = False) -> None:
    """Make ``toy:<role>`` build its brain with ``factory(**brain_options)``."""
    if not role or ":" in role:
        raise ValueError(f"toy brain role must be a plain name, got {role!r}")
    if role in _FACTORIES and not replace and _FACTORIES[role] is not factory:
        raise ValueError(f"a toy brain is already registered for role {role!r} (pass replace=True)")
    _FACTORIES[role] = factory


def unregister_toy_brain(role: str) -> None:
    _FACTORIES.pop(role, None)


def known_toy_roles() -> list[str]:
    return sorted(set(TOY_BRAIN_MODULES) | set(_FACTORIES))


def make_toy_brain(role: str, **options: Any) -> ToyBrain:
    """Build the brain registered for ``role``, importing its module first if needed."""
    if role not in _FACTORIES:
        module = TOY_BRAIN_MODULES.get(role)
        if module is None:
            raise ClientConfigError(f"unknown toy role {role!r}; known roles: {known_toy_roles()}")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise ClientConfigError(
                f"toy:{role} needs module {module} (it registers the brain), which cannot be imported: {err}"
            ) from err
        if role not in _FACTORIES:
            raise ClientConfigError(f"module {module} did not call register_toy_brain({role!r}, ...)")
    brain = _FACTORIES[role](**options)
    if not callable(brain):
        raise ClientConfigError(f"the toy brain factory for {role!r} returned a non-callable {brain!r}")
    return brain
