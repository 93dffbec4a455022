"""HTTP routes of the exception agent (spec 000 § Exception agent): parse → call one service → render.

Every route is OPS_SUPERVISOR+; every POST is idempotent with an Idempotency-Key (the platform's mixin).
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from agent import services
from agent.api.serializers import (
    PLAN_HASH_SCHEMA,
    REASON_MAX_LENGTH,
    AgentActionSerializer,
    ApproveRequestSerializer,
    RejectRequestSerializer,
    TriageRequestSerializer,
    TriageSerializer,
    agent_action_data,
    triages_data,
)
from nexa.platform.openapi import problem, urn_schema
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView

SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)

ACTION_URN_PARAMETER = OpenApiParameter(
    "agent_action_urn", urn_schema("agent-action"), OpenApiParameter.PATH, description="urn:nexa:agent-action:<uuid>"
)
_REASON_SCHEMA = {"type": "string", "minLength": 1, "maxLength": REASON_MAX_LENGTH, "pattern": r"[^\s\x1c-\x1f]"}

TRIAGE_BODY = {
    "application/json": {
        "type": "object",
        "description": "Exactly one of reviewUrn (that item) and caseUrn (each open item of the case).",
        "properties": {"reviewUrn": urn_schema("review"), "caseUrn": urn_schema("case")},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }
}
APPROVE_BODY = {
    "application/json": {
        "type": "object",
        "description": "The plan hash you were shown (a different one, or a plan the item no longer matches: 409).",
        "properties": {"planHash": PLAN_HASH_SCHEMA, "reason": _REASON_SCHEMA},
        "required": ["planHash"],
        "additionalProperties": False,
    }
}
REJECT_BODY = {
    "application/json": {
        "type": "object",
        "description": "Why the proposal is rejected (audited).",
        "properties": {"reason": _REASON_SCHEMA},
        "required": ["reason"],
        "additionalProperties": False,
    }
}
STATE_CONFLICT = (
    "agent-action-expired: past expiresAt (currentState EXPIRED); illegal-transition: not possible in the "
    "action's state (currentState, allowedTransitions)"
)


class AgentTriageView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="agent_triage",
        summary="Triage a stuck item or case",
        description=(
            "Classifies the failure cause and proposes the next best actions through the agent's allow-listed, "
            "read-only tools (hotel search inside and outside the policy, relaxation cost, failure "
            "classification). The top 3, ranked by viability (policy compliance, availability freshness, cost, "
            "distance), are written on the item's recommendations, and each is a PROPOSED agent action an "
            "operator may approve. Earlier proposals still PROPOSED expire. Audited (agent.triaged)."
        ),
        request=TRIAGE_BODY,
        responses={
            200: TriageSerializer,
            404: problem("The item or case is not your airline's, or does not exist."),
            409: problem("review-resolved: the item is RESOLVED."),
        },
    )
    def post(self, request):
        body = TriageRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "reviewUrn" in body.validated_data:
            triages = [services.agent_triage(principal=request.auth, review_urn=body.validated_data["reviewUrn"])]
        else:
            triages = services.agent_triage_case(principal=request.auth, case_urn=body.validated_data["caseUrn"])
        return Response(triages_data(triages))


class AgentActionApproveView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="agent_action_approve",
        summary="Approve an agent proposal",
        description=(
            "PROPOSED → APPROVED by you, quoting the planHash you saw. A different hash, or a plan the item no "
            "longer matches (a new attempt, another action taken, resolved), is a 409 plan-changed. Only you "
            "may then execute it. Audited (agent.action_approved)."
        ),
        parameters=[ACTION_URN_PARAMETER],
        request=APPROVE_BODY,
        responses={200: AgentActionSerializer, 409: problem("plan-changed (planHash); " + STATE_CONFLICT)},
    )
    def post(self, request, agent_action_urn: str):
        body = ApproveRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        action = services.agent_action_approve(
            principal=request.auth,
            agent_action_urn=agent_action_urn,
            plan_hash_seen=body.validated_data["planHash"],
            reason=body.validated_data.get("reason", ""),
        )
        return Response(agent_action_data(action))


class AgentActionRejectView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="agent_action_reject",
        summary="Reject an agent proposal",
        description="PROPOSED → REJECTED with your reason. Audited (agent.action_rejected).",
        parameters=[ACTION_URN_PARAMETER],
        request=REJECT_BODY,
        responses={200: AgentActionSerializer, 409: problem(STATE_CONFLICT)},
    )
    def post(self, request, agent_action_urn: str):
        body = RejectRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        action = services.agent_action_reject(
            principal=request.auth, agent_action_urn=agent_action_urn, reason=body.validated_data["reason"]
        )
        return Response(agent_action_data(action))


class AgentActionExecuteView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="agent_action_execute",
        summary="Execute an approved agent proposal",
        description=(
            "Only the approving operator (anyone else: 403 not-the-approver), only once APPROVED and before "
            "expiresAt (409). Runs the review service a human would call — rebook, relax, split or override — "
            "as you; the item is claimed for you first if you do not hold it (someone else's live claim: 409 "
            "review-claimed). The plan must still match the item (409 plan-changed). The review service "
            "refusing makes the action FAILED with the problem in result (200); success makes it EXECUTED "
            "with the item's new state in result. Audited (agent.action_executed / agent.action_failed)."
        ),
        parameters=[ACTION_URN_PARAMETER],
        request=None,
        responses={
            200: AgentActionSerializer,
            403: problem("not-the-approver: only the operator who approved it executes (approvedBy)."),
            409: problem("plan-changed; review-claimed; " + STATE_CONFLICT),
        },
    )
    def post(self, request, agent_action_urn: str):
        action = services.agent_action_execute(principal=request.auth, agent_action_urn=agent_action_urn)
        return Response(agent_action_data(action))
