"""Zero trust: identities, the Cedar policy decision point, the enforcement point, the decision log.

Users (roles, argon2id passwords, TOTP), devices and services (X.509 client certificates from the
``SiteCA``) live in ``IdentityStore`` (``D/identity.db``); sessions are short-lived Ed25519-signed
tokens. ``PolicyDecisionPoint`` decides
``AccessRequest``s against a schema-validated ``PolicyBundle`` (deny by default, forbid overrides
permit); ``EnforcementPoint`` logs every ``Decision`` through the group-committed ``DecisionLog``
and elevates a request only by an active, second-person-approved (or break-glass) ``Grant`` from the
``GrantStore`` (``D/grants.db``). ``AccessAnalytics`` turns the decision log into findings.
See docs/trust.md.
"""

from aseptic.trust._access_watch import ANALYTICS_STATE_FILE, AccessWatch, read_analytics_mark
from aseptic.trust._analytics import AccessAnalytics, AnalyticsConfig
from aseptic.trust._cases import CaseResult, run_policy_cases
from aseptic.trust._certificates import ClientIdentity, SiteCA, verify_client_certificate
from aseptic.trust._decision_log import DecisionLog
from aseptic.trust._enforce import EnforcementPoint, GrantSource
from aseptic.trust._entities import (
    DEVICE_ROLES,
    SERVICE_ROLES,
    USER_ROLES,
    ZONES,
    area_entity,
    batch_entity,
    model_entity,
    plant_entities,
    principal_entity,
    record_entity,
    role_entities,
    site_entity,
    tag_entity,
    unit_entity,
)
from aseptic.trust._findings import ACCESS_TECHNIQUES, access_finding
from aseptic.trust._grant import GRANTABLE_ACTIONS, MAX_BREAKGLASS_S, MAX_GRANT_S, Grant
from aseptic.trust._grant_store import GRANT_DB, FindingSink, GrantStore
from aseptic.trust._lockout import LockoutPolicy, lockout_policy
from aseptic.trust._password import MIN_PASSWORD_LENGTH, hash_password, verify_password
from aseptic.trust._policy import PolicyBundle, PolicyDecisionPoint
from aseptic.trust._policy_store import POLICY_DIR, install_policy_set, load_active_policy_set
from aseptic.trust._request import ACTIONS, BATCH_STATES, AccessRequest, Decision, EntityRef, RequestContext
from aseptic.trust._store import ENROLMENT_TOKEN_FILE, IDENTITY_DB, AuditSink, IdentityStore, Principal
from aseptic.trust._token import SessionToken, issue_token, verify_token
from aseptic.trust._totp import TotpEnrolment, new_totp_secret, verify_totp

__all__ = [
    "ACCESS_TECHNIQUES",
    "ACTIONS",
    "ANALYTICS_STATE_FILE",
    "BATCH_STATES",
    "DEVICE_ROLES",
    "ENROLMENT_TOKEN_FILE",
    "GRANTABLE_ACTIONS",
    "GRANT_DB",
    "IDENTITY_DB",
    "MAX_BREAKGLASS_S",
    "MAX_GRANT_S",
    "MIN_PASSWORD_LENGTH",
    "POLICY_DIR",
    "SERVICE_ROLES",
    "USER_ROLES",
    "ZONES",
    "AccessAnalytics",
    "AccessRequest",
    "AccessWatch",
    "AnalyticsConfig",
    "AuditSink",
    "CaseResult",
    "ClientIdentity",
    "Decision",
    "DecisionLog",
    "EnforcementPoint",
    "EntityRef",
    "FindingSink",
    "Grant",
    "GrantSource",
    "GrantStore",
    "IdentityStore",
    "LockoutPolicy",
    "PolicyBundle",
    "PolicyDecisionPoint",
    "Principal",
    "RequestContext",
    "SessionToken",
    "SiteCA",
    "TotpEnrolment",
    "access_finding",
    "area_entity",
    "batch_entity",
    "hash_password",
    "install_policy_set",
    "issue_token",
    "load_active_policy_set",
    "lockout_policy",
    "model_entity",
    "new_totp_secret",
    "plant_entities",
    "principal_entity",
    "read_analytics_mark",
    "record_entity",
    "role_entities",
    "run_policy_cases",
    "site_entity",
    "tag_entity",
    "unit_entity",
    "verify_client_certificate",
    "verify_password",
    "verify_token",
    "verify_totp",
]
