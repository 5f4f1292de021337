"""The policy decision point: Cedar policies validated against the schema, deny by default.

A ``PolicyBundle`` is a parsed, schema-validated policy set: every policy carries a unique ``@id``
(what a decision names), the set is not empty, and it type-checks against the schema. Loading a new
bundle into the ``PolicyDecisionPoint`` is all or nothing: an invalid one is refused and the
running set stays. Cedar itself gives deny by default and forbid overrides permit; a request Cedar
cannot evaluate (unknown entity, malformed context) is a deny with the error as its reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cedarpy

from aseptic.errors import ConfigError, InputError
from aseptic.trust._request import AccessRequest, Decision, EntityRef

__all__ = ["PolicyBundle", "PolicyDecisionPoint"]

SCHEMA_FILE = "schema.cedarschema"
CASES_FILE = "cases.json"


@dataclass(frozen=True)
class PolicyBundle:
    """A validated policy set, its schema and its test cases."""

    sources: tuple[tuple[str, str], ...]  # (file name, Cedar text), sorted by name
    schema_text: str
    policy_ids: tuple[str, ...]
    digest: str  # sha256 over the schema and the sources: names the set in every decision
    policies: cedarpy.PolicySet
    schema: cedarpy.Schema
    cases_text: str | None = None

    @classmethod
    def load(
        cls, sources: Iterable[tuple[str, str]], schema_text: str, *, cases_text: str | None = None
    ) -> PolicyBundle:
        """Parse and validate ``sources`` against ``schema_text``.

        Raises:
            ConfigError: no policy at all (fail closed), a parse or schema validation error, a policy
                without an ``@id`` or a duplicated ``@id``.
        """
        ordered = tuple(sorted(sources))
        text = "\n".join(body for _, body in ordered)
        names = ", ".join(name for name, _ in ordered) or "(none)"
        try:
            schema = cedarpy.Schema.from_str(schema_text)
        except ValueError as exc:
            raise ConfigError(f"policy schema does not parse: {exc}") from None
        try:
            policies = cedarpy.PolicySet.from_str(text)
        except ValueError as exc:
            raise ConfigError(f"policies {names} do not parse: {exc}") from None
        if len(policies) == 0:
            raise ConfigError(
                f"policy set {names} holds no policy",
                hint="an empty policy set would deny everything silently; ship at least one permit",
            )
        result = cedarpy.validate_policies(text, schema)
        if not result.validation_passed:
            problems = "; ".join(str(error) for error in result.errors[:5])
            raise ConfigError(f"policies {names} fail schema validation: {problems}")
        policy_ids = _policy_ids(text, names)
        digest = hashlib.sha256()
        for part in (schema_text, *(f"{name}\x00{body}" for name, body in ordered)):
            digest.update(part.encode("utf-8") + b"\x00")
        return cls(ordered, schema_text, policy_ids, digest.hexdigest(), policies, schema, cases_text)

    @classmethod
    def from_directory(cls, directory: Path) -> PolicyBundle:
        """Load ``*.cedar``, ``schema.cedarschema`` and (if present) ``cases.json`` from ``directory``.

        Raises:
            ConfigError: the directory or the schema is missing, or the set is invalid.
        """
        schema_path = directory / SCHEMA_FILE
        if not schema_path.is_file():
            raise ConfigError(f"no {SCHEMA_FILE} in policy directory {directory}")
        sources = [(path.name, path.read_text(encoding="utf-8")) for path in directory.glob("*.cedar")]
        cases = directory / CASES_FILE
        return cls.load(
            sources,
            schema_path.read_text(encoding="utf-8"),
            cases_text=cases.read_text(encoding="utf-8") if cases.is_file() else None,
        )

    @classmethod
    def default(cls) -> PolicyBundle:
        """The policy set shipped with Aseptic (``aseptic/trust/policies``)."""
        folder = resources.files("aseptic.trust").joinpath("policies")
        sources = [
            (entry.name, entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if entry.name.endswith(".cedar")
        ]
        return cls.load(
            sources,
            folder.joinpath(SCHEMA_FILE).read_text(encoding="utf-8"),
            cases_text=folder.joinpath(CASES_FILE).read_text(encoding="utf-8"),
        )

    def parse_entities(self, entities: Sequence[dict[str, Any]]) -> cedarpy.Entities:
        """Cedar entities, checked against this bundle's schema.

        Raises:
            InputError: an entity is malformed or does not fit the schema.
        """
        try:
            return cedarpy.Entities.from_json_str(json.dumps(list(entities)), self.schema)
        except ValueError as exc:
            raise InputError(f"entities do not fit the policy schema: {exc}") from None


def _policy_ids(text: str, names: str) -> tuple[str, ...]:
    est = json.loads(cedarpy.policies_to_json_str(text))
    found: list[str] = []
    for policy_id, policy in est.get("staticPolicies", {}).items():
        annotation = policy.get("annotations", {}).get("id")
        if not annotation:
            raise ConfigError(f"policies {names}: policy {policy_id} has no @id annotation")
        found.append(annotation)
    if est.get("templates"):
        raise ConfigError(f"policies {names}: templates are not supported in the policy set")
    duplicates = sorted({name for name in found if found.count(name) > 1})
    if duplicates:
        raise ConfigError(f"policies {names}: duplicated @id {duplicates}")
    return tuple(found)


class PolicyDecisionPoint:
    """Decides requests against the active bundle and entity graph. Thread-safe to read."""

    def __init__(self, bundle: PolicyBundle, entities: Sequence[dict[str, Any]]) -> None:
        self._lock = threading.Lock()
        # One tuple, swapped whole: a request never sees a new policy set with an old graph. The third
        # part: the request entities (principals, grants) merged into the graph so far.
        self._active: tuple[PolicyBundle, cedarpy.Entities, dict[tuple[str, str], dict[str, Any]]] = (
            bundle,
            bundle.parse_entities(entities),
            {},
        )
        self._known = _uids(entities)
        # Copies (through JSON), never the caller's dicts: a caller mutating its own later changes nothing.
        self._base_text = {_uid_of(entity): json.dumps(entity, sort_keys=True) for entity in entities}
        self._base = {uid: json.loads(text) for uid, text in self._base_text.items()}
        self._merged_text: dict[tuple[str, str], str] = {}  # the merged entities' JSON (under the lock)
        self._parents: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
            _uid_of(entity): tuple((str(p.get("type")), str(p.get("id"))) for p in entity.get("parents", ()))
            for entity in entities
        }

    @property
    def bundle(self) -> PolicyBundle:
        return self._active[0]

    def ancestors(self, ref: EntityRef) -> tuple[EntityRef, ...]:
        """Every entity of the base graph that ``ref`` is (transitively) in, e.g. a tag's unit, area
        and site (what a grant's scope is matched against)."""
        seen: list[tuple[str, str]] = []
        todo = list(self._parents.get((ref.type, ref.id), ()))
        while todo:
            uid = todo.pop()
            if uid not in seen:
                seen.append(uid)
                todo.extend(self._parents.get(uid, ()))
        return tuple(EntityRef(kind, ident) for kind, ident in seen)

    def load(self, bundle: PolicyBundle) -> None:
        """Make ``bundle`` (already validated) the active set; the entity graph must fit its schema.

        Raises:
            InputError: the current entities do not fit the new schema (the running set stays).
        """
        with self._lock:
            _, current, merged = self._active
            entities = bundle.parse_entities(json.loads(str(current)))
            self._active = (bundle, entities, merged)

    def load_sources(self, sources: Iterable[tuple[str, str]], schema_text: str) -> PolicyBundle:
        """Validate and activate new policy text; on any error the running set stays.

        Raises:
            ConfigError: the new set is empty or invalid.
        """
        bundle = PolicyBundle.load(sources, schema_text)
        self.load(bundle)
        return bundle

    def decide(self, request: AccessRequest, extra: Sequence[dict[str, Any]] = ()) -> Decision:
        """The decision for ``request``; ``extra`` entities (e.g. the principal) are added for it only.

        Raises:
            InputError: ``extra`` does not fit the schema or clashes with the base graph.
        """
        bundle, entities, _ = self._active
        principal, resource, known = request.principal, request.resource, self._known
        if (principal.type, principal.id) not in known or (resource.type, resource.id) not in known:
            unknown = [
                f"unknown {role} {ref}"
                for role, ref in (("principal", principal), ("resource", resource))
                if (ref.type, ref.id) not in known
                and not any(_uid_of(e) == (ref.type, ref.id) for e in extra)
            ]
            if unknown:
                # Cedar would still match a bare `resource is Tag` scope for an entity it has never seen.
                return Decision(False, request, (), tuple(unknown), (), bundle.digest)
        if extra:
            bundle, entities = self._with(extra)
        # No per-request schema check in Cedar: ``AccessRequest`` already guarantees a known action
        # and a complete, typed context, the entities were checked against the schema when parsed,
        # and any evaluation error (e.g. a principal of the wrong type) denies in ``decision_of``.
        digest = bundle.digest
        if _EVALUATE is None:
            result = cedarpy.is_authorized(request.to_cedar_request(), bundle.policies, entities)
            return decision_of(request, result, digest)
        answer = _EVALUATE(request.to_cedar_request(), bundle.policies, entities._inner, None, False)
        outcome = _outcome_of_text(answer, digest)
        return Decision(outcome[0], request, outcome[1], outcome[2], outcome[3], digest)

    def _with(self, extra: Sequence[dict[str, Any]]) -> tuple[PolicyBundle, cedarpy.Entities]:
        """The graph with ``extra`` in it. Cedar's ``with_added`` clones and re-closes the whole graph
        (about 0.1 s at 10,000 entities), so request entities are merged into the graph once and
        kept: a request whose entities are already in it, unchanged, costs a dictionary lookup, and a
        changed one (a principal disabled, its roles changed) rebuilds the graph. Which entities a
        request may name is still decided by the base graph and its own ``extra`` (``decide``)."""
        bundle, entities, merged = self._active
        # Dictionary equality first (cheap); JSON text only for what has to be added.
        if all(merged.get(uid, self._base.get(uid)) == entity for uid, entity in _by_uid(extra)):
            return bundle, entities
        pairs = [(_uid_of(entity), json.dumps(entity, sort_keys=True)) for entity in extra]
        if len({uid for uid, _ in pairs}) != len(pairs):
            raise InputError("request entities name the same entity twice")
        clash = [uid for uid, text in pairs if uid in self._base_text and self._base_text[uid] != text]
        if clash:
            raise InputError(f"request entities clash with the policy entity graph: {clash[:3]}")
        with self._lock:
            bundle, entities, merged = self._active
            texts = self._merged_text
            new = {uid: text for uid, text in pairs if uid not in self._base_text and texts.get(uid) != text}
            if not new:
                return bundle, entities
            rebuild = any(uid in texts for uid in new)  # a changed entity cannot be added again
            if len(texts) + len(new) > _MAX_MERGED:
                merged, texts, rebuild = {}, {}, True
            updated = {**texts, **new}
            try:
                if rebuild:
                    graph = "[" + ",".join([*self._base_text.values(), *updated.values()]) + "]"
                    entities = cedarpy.Entities.from_json_str(graph, bundle.schema)
                else:
                    entities = entities.with_added_json_str("[" + ",".join(new.values()) + "]", bundle.schema)
            except ValueError as exc:
                raise InputError(f"request entities do not fit the policy schema: {exc}") from None
            self._merged_text = updated
            self._active = (
                bundle,
                entities,
                {**merged, **{uid: json.loads(text) for uid, text in new.items()}},
            )
        return bundle, entities


# Request entities kept merged in the graph at most (then it starts again from the base graph).
_MAX_MERGED = 10_000


def _by_uid(entities: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    return [(_uid_of(entity), entity) for entity in entities]


def _uid_of(entity: dict[str, Any]) -> tuple[str, str]:
    uid = entity.get("uid", {})
    return (str(uid.get("type")), str(uid.get("id")))


def _uids(entities: Sequence[dict[str, Any]]) -> frozenset[tuple[str, str]]:
    return frozenset(_uid_of(entity) for entity in entities)


# cedarpy's own entry point under its public ``is_authorized`` (ADR 0362): the same Rust evaluation
# and the same JSON answer, without the wrapper's list, ``json.loads`` of the whole answer and result
# objects per call. The public function is the fallback when a cedarpy release moves it.
_EVALUATE: Callable[[dict[str, Any], cedarpy.PolicySet, Any, None, bool], str] | None
try:
    from cedarpy import _internal

    _EVALUATE = _internal.is_authorized
except (ImportError, AttributeError):  # pragma: no cover - a cedarpy without its extension entry point
    _EVALUATE = None

_Outcome = tuple[
    bool, tuple[str, ...], tuple[str, ...], tuple[str, ...]
]  # allowed, policy ids, reasons, errors
_OUTCOMES: dict[tuple[str, str], _Outcome] = {}
_MAX_OUTCOMES = 4096
_METRICS = ',"metrics":'


def _outcome_of_text(text: str, digest: str) -> _Outcome:
    """The decision parts of Cedar's JSON answer ``text`` (what ``decision_of`` reads from it).

    An answer is its decision and diagnostics, then per-call timings (``"metrics"``). A policy set
    gives few distinct (decision, diagnostics) heads, so each head's translation is kept, keyed by
    the policy set and the head's exact text. A head is used as a key only once it is checked to
    hold the whole answer but the timings (it parses, as an object, to exactly the full answer
    without ``metrics``); any other layout is parsed whole every time.
    """
    at = text.find(_METRICS)
    found = at >= 0
    head = text[:at]
    if found:
        known = _OUTCOMES.get((digest, head))
        if known is not None:
            return known
    answer = json.loads(text)
    diagnostics = answer.get("diagnostics", {})
    names = diagnostics.get("id_annotations_by_reason", {})
    policy_ids = tuple(sorted(names.get(reason, reason) for reason in diagnostics.get("reason", ())))
    errors = tuple(diagnostics.get("errors", ()))
    allowed = answer["decision"] == "Allow" and not errors
    outcome = (allowed, policy_ids, _reasons(allowed, bool(errors), policy_ids), errors)
    if found and _is_head_of(head, answer):
        if len(_OUTCOMES) >= _MAX_OUTCOMES:
            _OUTCOMES.clear()
        _OUTCOMES[(digest, head)] = outcome
    return outcome


def _is_head_of(head: str, answer: dict[str, Any]) -> bool:
    try:
        parsed = json.loads(head + "}")
    except ValueError:
        return False
    return (
        isinstance(parsed, dict)
        and "metrics" not in parsed
        and parsed == {key: value for key, value in answer.items() if key != "metrics"}
    )


def decision_of(request: AccessRequest, result: cedarpy.AuthzResult, digest: str) -> Decision:
    """Translate a Cedar result: only an explicit Allow without evaluation errors allows.

    Cedar skips a policy whose evaluation errors; a skipped forbid must not turn into an allow, so
    any error makes the decision a deny (fail closed).
    """
    diagnostics = result.diagnostics
    names = diagnostics.id_annotations_by_reason
    policy_ids = tuple(sorted(names.get(reason, reason) for reason in diagnostics.reasons))
    errors = tuple(diagnostics.errors)
    allowed = result.decision == cedarpy.Decision.Allow and not errors
    return Decision(allowed, request, policy_ids, _reasons(allowed, bool(errors), policy_ids), errors, digest)


@functools.lru_cache(maxsize=1024)
def _reasons(allowed: bool, errors: bool, policy_ids: tuple[str, ...]) -> tuple[str, ...]:
    # A policy set yields few distinct (outcome, deciding policies) pairs: word each once.
    if allowed:
        return tuple(f"permitted by {name}" for name in policy_ids)
    if errors:
        return ("a policy could not be evaluated: deny (fail closed)",)
    if policy_ids:
        return tuple(f"forbidden by {name}" for name in policy_ids)
    return ("no policy permits this request (deny by default)",)
