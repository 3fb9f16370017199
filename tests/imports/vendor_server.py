"""A local HTTP server on 127.0.0.1 that answers like the vendors' APIs do: their documented paths,
pagination, 429 with Retry-After, and 401 for a revoked token. The objects are the vendors' own
sample payloads from ../shared/fixtures (or, for GitHub and Help Scout, built from their API
documentation), with ids and times varied per page."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedded.stores import free_port
from tests.connectors.connector_cases import HELPSCOUT_CONVERSATION

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "webhooks"
TOKEN = "good-token"


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class VendorState:
    """What the fake vendor does; tests change it between runs."""

    revoked_after: int | None = None  # answer 401 after this many requests
    throttle_first: bool = True  # the first request gets a 429 with Retry-After: 1
    requests: list[tuple[str, str]] = field(default_factory=list)
    served_at: list[float] = field(default_factory=list)


def _zendesk_ticket(n: int, status: str) -> dict[str, Any]:
    ticket = _fixture("zendesk/api_ticket.json")
    ticket.update(id=n, subject=f"Refund missing for order {n}", description=f"My refund for order {n} never came.")
    ticket.update(status=status, created_at=f"2026-01-0{n}T09:00:00Z", updated_at=f"2026-01-0{n}T10:00:00Z")
    ticket["url"] = f"https://acme.zendesk.com/api/v2/tickets/{n}.json"
    return dict(ticket)


def _zendesk_audit(n: int) -> dict[str, Any]:
    audit = _fixture("zendesk/api_ticket_audit.json")
    audit.update(ticket_id=n, created_at=f"2026-01-0{n}T09:30:00Z")
    audit["events"] = [
        *audit["events"],
        {"id": 9001, "type": "Change", "field_name": "status", "value": "solved", "previous_value": "open"},
    ]
    return dict(audit)


def _jira_issue(n: int) -> dict[str, Any]:
    issue = copy.deepcopy(_fixture("jira/jira_issue_created.json")["issue"])
    issue["id"] = str(10000 + n)
    issue["key"] = f"SUP-{n}"
    issue["fields"]["summary"] = f"Export button does nothing {n}"
    issue["fields"]["created"] = f"2026-01-0{n}T09:00:00.000+0000"
    issue["fields"]["updated"] = f"2026-01-0{n}T11:00:00.000+0000"
    issue["changelog"] = {
        "startAt": 0,
        "maxResults": 1,
        "total": 1,
        "histories": [
            {
                "id": str(500 + n),
                "created": f"2026-01-0{n}T10:00:00.000+0000",
                "items": [
                    {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1",
                     "fromString": "To Do", "to": "3", "toString": "In Progress"},
                ],
            }
        ],
    }  # fmt: skip
    return dict(issue)


def _github_issue(n: int, *, pull: bool = False) -> dict[str, Any]:
    # Fields of the REST "List repository issues" response (docs.github.com, Issues API).
    issue: dict[str, Any] = {
        "id": 9000 + n,
        "node_id": f"I_{n}",
        "number": n,
        "title": f"Add dark mode {n}",
        "body": "It would be great if the app had a dark mode.",
        "state": "closed" if n == 1 else "open",
        "state_reason": "completed" if n == 1 else None,
        "labels": [{"id": 1, "name": "enhancement"}],
        "user": {"login": f"user{n}", "id": 70 + n},
        "reactions": {"total_count": 3 * n},
        "html_url": f"https://github.com/acme/app/issues/{n}",
        "repository_url": "https://api.github.com/repos/acme/app",
        "created_at": f"2026-01-0{n}T09:00:00Z",
        "updated_at": f"2026-01-0{n}T12:00:00Z",
        "closed_at": f"2026-01-0{n}T11:00:00Z" if n == 1 else None,
        "comments": 0,
    }
    if pull:
        issue["pull_request"] = {"url": "https://api.github.com/repos/acme/app/pulls/99"}
    return issue


def _authorised(request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    if auth.startswith("Basic "):
        auth = base64.b64decode(auth[6:]).decode()
    return TOKEN in auth or request.headers.get("api-key") == TOKEN


def build_app(state: VendorState) -> Starlette:
    def guard(request: Request) -> Response | None:
        state.requests.append((request.method, request.url.path))
        state.served_at.append(time.monotonic())
        if state.throttle_first and len(state.requests) == 1:
            return JSONResponse({"error": "too many requests"}, status_code=429, headers={"Retry-After": "1"})
        revoked = state.revoked_after is not None and len(state.requests) > state.revoked_after
        if revoked or not _authorised(request):
            return JSONResponse({"error": "Couldn't authenticate you"}, status_code=401)
        return None

    base = ""

    async def zendesk_export(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if request.query_params.get("cursor") == "c3":  # nothing changed since the last run
            return JSONResponse({"tickets": [], "metric_sets": [], "after_cursor": "c3", "end_of_stream": True})
        if request.query_params.get("cursor") == "c2":
            return JSONResponse(
                {"tickets": [_zendesk_ticket(3, "open")], "metric_sets": [], "after_cursor": "c3",
                 "after_url": f"{base}/api/v2/incremental/tickets/cursor.json?cursor=c3", "end_of_stream": True}
            )  # fmt: skip
        metric = _fixture("zendesk/api_ticket_metric.json")
        metric.update(ticket_id=2, reopens=2)
        return JSONResponse(
            {"tickets": [_zendesk_ticket(1, "open"), _zendesk_ticket(2, "solved")], "metric_sets": [metric],
             "after_cursor": "c2", "after_url": f"{base}/api/v2/incremental/tickets/cursor.json?cursor=c2",
             "end_of_stream": False}
        )  # fmt: skip

    async def zendesk_audits(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        ticket_id = int(request.path_params["ticket_id"])
        return JSONResponse({"audits": [_zendesk_audit(ticket_id)], "next_page": None, "count": 1})

    async def freshdesk_tickets(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        page = int(request.query_params.get("page", "1"))
        ticket = _fixture("freshdesk/api_v2_ticket.json")
        ticket.update(id=page, subject=f"Cannot log in {page}", updated_at=f"2026-01-0{page}T10:00:00Z")
        ticket["description"] = f"<div>The login page spins forever ({page}).</div>"
        ticket["description_text"] = f"The login page spins forever ({page})."
        headers = {"link": f'<{base}/api/v2/tickets?page={page + 1}>; rel="next"'} if page == 1 else {}
        return JSONResponse([ticket], headers=headers)

    async def freshdesk_conversations(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return JSONResponse(_fixture("freshdesk/api_v2_ticket_conversations.json"))

    async def jira_search(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if request.query_params.get("nextPageToken") == "p2":
            return JSONResponse({"issues": [_jira_issue(2)], "isLast": True})
        return JSONResponse({"issues": [_jira_issue(1)], "nextPageToken": "p2", "isLast": False})

    async def github_issues(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        page = int(request.query_params.get("page", "1"))
        if page == 1:
            link = f'<{base}/repos/acme/app/issues?page=2>; rel="next"'
            return JSONResponse([_github_issue(1), _github_issue(5, pull=True)], headers={"link": link})
        return JSONResponse([_github_issue(2)])

    async def github_timeline(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return JSONResponse(
            [
                {"id": 1, "event": "closed", "created_at": "2026-01-01T10:00:00Z"},
                {"id": 2, "event": "reopened", "created_at": "2026-01-01T10:30:00Z"},
                {"id": 3, "event": "closed", "created_at": "2026-01-01T11:00:00Z"},
            ]
        )

    async def discourse_latest(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        page = int(request.query_params.get("page", "0"))
        topics = [{"id": 7, "created_at": "2026-01-01T09:00:00Z", "bumped_at": "2026-01-02T09:00:00Z"}]
        if page > 0:
            topics = [{"id": 8, "created_at": "2020-01-01T09:00:00Z", "bumped_at": "2020-01-02T09:00:00Z"}]
        return JSONResponse({"topic_list": {"topics": topics, "more_topics_url": f"/latest?page={page + 1}"}})

    async def discourse_topic(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        post = _fixture("discourse/post_created.json")["post"]
        post.update(topic_id=7, id=70, post_number=1)
        return JSONResponse({"id": 7, "post_stream": {"posts": [post], "stream": [70, 71]}})

    async def discourse_posts(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        post = _fixture("discourse/post_created.json")["post"]
        post.update(topic_id=7, id=71, post_number=2, raw="Same here, the export fails.")
        return JSONResponse({"post_stream": {"posts": [post]}})

    async def intercom_search(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        body = await request.json()
        after = body.get("pagination", {}).get("starting_after")
        conversation_id = "2" if after else "1"
        pages: dict[str, Any] = {"type": "pages", "page": 2 if after else 1, "per_page": 150, "total_pages": 2}
        if not after:
            pages["next"] = {"per_page": 150, "starting_after": "WzE3MDAwMDAwMDAsMV0="}
        return JSONResponse(
            {"type": "conversation.list", "conversations": [{"type": "conversation", "id": conversation_id}],
             "total_count": 2, "pages": pages}
        )  # fmt: skip

    async def intercom_conversation(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        conversation = _fixture("intercom/conversation.user.created.json")["data"]["item"]
        conversation["id"] = request.path_params["conversation_id"]
        message = conversation.pop("conversation_message", None) or {}
        conversation["source"] = message  # the REST object's name for the opening message
        return JSONResponse(conversation)

    async def helpscout_conversations(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        page = int(request.query_params.get("page", "1"))
        conversation = copy.deepcopy(HELPSCOUT_CONVERSATION)
        conversation["id"] = 10 + page
        return JSONResponse(
            {"_embedded": {"conversations": [conversation]},
             "page": {"size": 25, "totalElements": 2, "totalPages": 2, "number": page}}
        )  # fmt: skip

    routes = [
        Route("/api/v2/incremental/tickets/cursor.json", zendesk_export),
        Route("/api/v2/tickets/{ticket_id:int}/audits.json", zendesk_audits),
        Route("/api/v2/tickets", freshdesk_tickets),
        Route("/api/v2/tickets/{ticket_id:int}/conversations", freshdesk_conversations),
        Route("/rest/api/3/search/jql", jira_search),
        Route("/repos/acme/app/issues", github_issues),
        Route("/repos/acme/app/issues/{number:int}/timeline", github_timeline),
        Route("/latest.json", discourse_latest),
        Route("/t/{topic_id:int}.json", discourse_topic),
        Route("/t/{topic_id:int}/posts.json", discourse_posts),
        Route("/conversations/search", intercom_search, methods=["POST"]),
        Route("/conversations/{conversation_id}", intercom_conversation),
        Route("/v2/conversations", helpscout_conversations),
    ]
    return Starlette(routes=routes)


@contextmanager
def vendor_server(state: VendorState) -> Iterator[str]:
    """Serve the fake vendors on 127.0.0.1; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
