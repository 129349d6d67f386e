"""HTTP API of feedback: every router the service serves."""

from __future__ import annotations

from services.feedback.entrypoints import agents, analysis, contacts, survey_page, surveys, tickets

routers = [tickets.router, agents.router, surveys.router, analysis.router, contacts.router, survey_page.router]
