"""HTTP API of feedback: every router the service serves."""

from __future__ import annotations

from services.feedback.entrypoints import agents, analysis, surveys, tickets

routers = [tickets.router, agents.router, surveys.router, analysis.router]
