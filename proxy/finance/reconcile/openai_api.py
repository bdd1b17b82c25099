"""`tollgate reconcile --from-api`: OpenAI's organization Costs API (by line item) and
Usage API for images (by model), read page by page with an Admin API key. The pages
are the same documents `--file` reads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx

from .provider_reports import ProviderReport, ReportError, add_pages

REPORTS = (
    ("organization/costs", {"group_by": "line_item", "limit": 180}),
    ("organization/usage/images", {"group_by": "model", "limit": 31}),
)
_MAX_PAGES = 100  # a year of daily buckets is 3 pages of costs and 12 of images


class FetchError(Exception):
    """The provider's reports could not be read; the message names the endpoint, never the key."""


def fetch_openai_reports(base_url: str, admin_key: str, start: dt.datetime, end: dt.datetime) -> ProviderReport:
    report = ProviderReport()
    where = httpx.URL(base_url).copy_with(username=None, password=None)  # shown in messages: no userinfo
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=f"{str(base_url).rstrip('/')}/", headers=headers, timeout=60) as client:
        for endpoint, options in REPORTS:
            params = {**options, "start_time": int(start.timestamp()), "end_time": int(end.timestamp())}
            add_pages(report, list(_pages(client, endpoint, params, f"{where}/{endpoint}")), f"GET {endpoint}")
    return report


def _pages(client: httpx.Client, endpoint: str, params: dict[str, Any], shown: str) -> Iterator[dict[str, Any]]:
    for _ in range(_MAX_PAGES):
        try:
            response = client.get(endpoint, params=params)
        except httpx.HTTPError as error:
            raise FetchError(f"cannot read {shown}: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise FetchError(f"{shown} answered {response.status_code}: {_message(response)}")
        try:
            page = json.loads(response.text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise ReportError(f"{shown} answered with something that is not JSON") from None
        yield page
        if not isinstance(page, dict) or not page.get("has_more"):
            return
        params = {**params, "page": page["next_page"]}
    raise FetchError(f"{shown} had more than {_MAX_PAGES} pages; reconcile a shorter period (--since, --until)")


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or response.reason_phrase)
    except (ValueError, AttributeError):
        return response.reason_phrase
