"""HTTP routes of the exception agent, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from agent.api import views

urlpatterns = [
    path("agent/triage", views.AgentTriageView.as_view(), name="agent-triage"),
    path("agent/<str:agent_action_urn>/approve", views.AgentActionApproveView.as_view(), name="agent-action-approve"),
    path("agent/<str:agent_action_urn>/reject", views.AgentActionRejectView.as_view(), name="agent-action-reject"),
    path("agent/<str:agent_action_urn>/execute", views.AgentActionExecuteView.as_view(), name="agent-action-execute"),
]
