"""The vendor fakes the EWS, Graph and Google connector tests run against, and how to reach them.

No Exchange, Microsoft 365 or Google service is reachable from the test machines, so each vendor
is its protocol-faithful fake from ``calmesh.fakes`` (EWS SOAP, Graph v1.0 JSON, Calendar API v3,
each with its OAuth2 token endpoint) served by uvicorn on 127.0.0.1, and the connectors speak to
it through their real client code (exchangelib, httpx).

A :class:`Vendor` is one started fake plus what differs between the three for the same contract
(how to throttle it, count its token grants, spoil its change tokens...), so that
``test_vendor_contract.py`` states each behaviour once (fixtures in ``conftest.py``).
"""

from __future__ import annotations

import json
from datetime import time
from typing import Any, ClassVar, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calmesh.connectors import registry
from calmesh.connectors.base import Connector
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.google import GoogleFake
from calmesh.fakes.graph import GraphFake
from calmesh.model import WorkingHours

ALICE, BOB, CAROL = "alice@sales.test", "bob@sales.test", "carol@sales.test"
"""Alice (Paris, works 9-17) and Bob (New York, works 8-16) are listed by ``calendars()``; Carol
(Paris) is only reachable by address."""
KINDS = ("ews", "graph", "google")
FakeT = TypeVar("FakeT", EWSFake, GraphFake)


class Vendor:
    """A started vendor fake and connectors to it. Each connector records the waits its retries
    asked for in ``conn.waits`` instead of sleeping."""

    kind: ClassVar[str]
    platform: ClassVar[str]
    """The platform name the connectors are registered under, as in a user's config."""
    refused: ClassVar[str]
    """Words the AuthenticationError for refused credentials carries."""
    conflict: ClassVar[str]
    """Words the PreconditionFailed for a stale ETag/ChangeKey carries."""
    check_first: ClassVar[str]
    """How the first line of ``check()`` starts."""
    not_found: ClassVar[str]
    """Words the free/busy error for an unknown person carries."""
    throttled: ClassVar[str]
    """Words the TransientError for throttling that never ends carries."""
    keeps_new_uids: ClassVar[bool] = True
    """Does an item calmesh creates keep its UID (Graph mints its own iCalUId)?"""
    keeps_deleted: ClassVar[bool] = True
    """Does the platform keep what a person deletes where calmesh can find it (Exchange's Deleted
    Items, Google's cancelled events)? Graph's calendar API lists no deleted events."""
    pages_windows: ClassVar[bool] = True
    """Is a listing of a time window paged (EWS's CalendarView is not)?"""
    canonical_rrules: ClassVar[bool] = False
    """Does an RRULE come back in icalendar's part order (Google stores iCalendar lines), not as written?"""
    one_refresh_per_expiry: ClassVar[bool] = True
    """Writers meeting one expired token share one new token (``AccessTokens(rejected=...)``);
    EWS's OAuth session is exchangelib's own, which may fetch one per thread."""
    fake: Any

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self._connectors: list[Connector] = []

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def connect(self, **settings: Any) -> Any:
        """A connector to the fake (``settings`` override the defaults); closed after the test."""
        connector = registry.create(self.platform, {**self.settings(), **settings})
        waits: list[float] = []
        connector.sleep = waits.append  # type: ignore[attr-defined]
        connector.waits = waits  # type: ignore[attr-defined]
        self._connectors.append(connector)
        return connector

    def close(self) -> None:
        for connector in self._connectors:
            connector.close()
        self.fake.stop()

    # ---- what differs between the vendors for one contract
    def throttle(self, count: int, seconds: int) -> None:
        """The next ``count`` requests are refused as "too busy, come back in ``seconds``"."""
        self.fake.fail_next(count, status=429, retry_after=seconds)

    def freebusy_calls(self) -> list[int]:
        """How many people each free/busy request so far asked about."""
        raise NotImplementedError

    def tokens_issued(self) -> int:
        raise NotImplementedError

    def listing_requests(self) -> int:
        """How many requests for a page of Alice's calendar were served so far."""
        raise NotImplementedError

    def oauth_connector(self) -> Any:
        """A connector that signs in with OAuth2 (tokens that expire)."""
        return self.connect()

    def refusing_connector(self) -> Any:
        """A connector whose credentials the fake refuses."""
        raise NotImplementedError

    def invalidate_change_tokens(self) -> None:
        raise NotImplementedError



def _with_mailboxes(fake: FakeT) -> FakeT:
    """An Exchange organisation (EWS or Graph fake) with the mailboxes of Alice, Bob and Carol."""
    fake.add_mailbox(ALICE, "Europe/Paris", WorkingHours.simple("Europe/Paris", time(9), time(17)))
    fake.add_mailbox(BOB, "America/New_York", WorkingHours.simple("America/New_York", time(8), time(16)))
    fake.add_mailbox(CAROL, "Europe/Paris")
    return fake


class EWSVendor(Vendor):
    one_refresh_per_expiry = False
    kind, platform = "ews", "exchange"
    refused, conflict, check_first = "credentials refused", "ErrorIrresolvableConflict", "EWS endpoint"
    not_found, throttled = "ErrorMailRecipientNotFound", "ErrorServerBusy"
    pages_windows = False
    fake: EWSFake

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.fake = _with_mailboxes(EWSFake())
        monkeypatch.setenv("CALMESH_TEST_EWS_PASSWORD", "svc-password")
        monkeypatch.setenv("CALMESH_TEST_EWS_SECRET", self.fake.client_secret)

    def settings(self) -> dict[str, Any]:
        return {"kind": "ews", "service_endpoint": self.fake.ews_url, "auth": "basic", "username": "calmesh-svc",
                "password_env": "CALMESH_TEST_EWS_PASSWORD", "mailboxes": [ALICE, BOB], "timezone": "Europe/Paris"}

    def throttle(self, count: int, seconds: int) -> None:
        self.fake.busy_next(count, back_off_ms=seconds * 1000)  # ErrorServerBusy, BackOffMilliseconds

    def freebusy_calls(self) -> list[int]:
        return [len(call) for call in self.fake.availability_calls]

    def tokens_issued(self) -> int:
        return self.fake.tokens_issued

    def listing_requests(self) -> int:
        return self.fake.operations.count("FindItem")

    def oauth_connector(self) -> Any:
        self.monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain http on loopback
        return self.connect(auth="oauth2", username=None, password_env=None, client_id=self.fake.client_id,
                            client_secret_env="CALMESH_TEST_EWS_SECRET", token_url=self.fake.token_url,
                            server_version="Exchange2016")

    def refusing_connector(self) -> Any:
        self.monkeypatch.setenv("CALMESH_TEST_EWS_WRONG_PASSWORD", "not-the-password")
        return self.connect(password_env="CALMESH_TEST_EWS_WRONG_PASSWORD")

    def invalidate_change_tokens(self) -> None:
        self.fake.invalidate_sync_states()


class GraphVendor(Vendor):
    keeps_deleted = False
    kind, platform = "graph", "m365"
    refused, conflict, check_first = "AADSTS7000215", "412", "token"
    not_found, throttled = "ErrorMailRecipientNotFound", "429"
    keeps_new_uids = False
    fake: GraphFake

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.fake = _with_mailboxes(GraphFake())
        monkeypatch.setenv("CALMESH_TEST_GRAPH_SECRET", self.fake.client_secret)

    def settings(self) -> dict[str, Any]:
        return {"kind": "graph", "tenant_id": "contoso", "client_id": self.fake.client_id,
                "client_secret_env": "CALMESH_TEST_GRAPH_SECRET", "mailboxes": [ALICE],
                "base_url": self.fake.graph_url, "token_url": self.fake.token_url, "timezone": "Europe/Paris"}

    def freebusy_calls(self) -> list[int]:
        return [len(call["schedules"]) for call in self.fake.schedule_calls]

    def tokens_issued(self) -> int:
        return self.fake.requests.count("POST /token")

    def listing_requests(self) -> int:
        return sum(r.startswith(f"GET /v1.0/users/{ALICE}/calendar/") for r in self.fake.requests)

    def refusing_connector(self) -> Any:
        self.monkeypatch.setenv("CALMESH_TEST_GRAPH_WRONG_SECRET", "not-the-secret")
        return self.connect(client_secret_env="CALMESH_TEST_GRAPH_WRONG_SECRET")

    def invalidate_change_tokens(self) -> None:
        self.fake.invalidate_delta()


class GoogleVendor(Vendor):
    """A Workspace domain (sales.test) whose service account key is generated per test; Alice has a
    second calendar, "Team"."""

    kind, platform = "google", "workspace"
    refused, conflict, check_first = "Invalid JWT Signature", "conditionNotMet", "token: service account"
    not_found, throttled = "notFound", "rateLimitExceeded"
    canonical_rrules = True
    fake: GoogleFake
    credentials_env = "CALMESH_TEST_GOOGLE_KEY"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.fake = GoogleFake(domain="sales.test")
        self.fake.add_user(ALICE, "Europe/Paris", extra_calendars=("Team",))
        self.fake.add_user(BOB, "America/New_York")
        self.fake.add_user(CAROL, "Europe/Paris")

    def settings(self) -> dict[str, Any]:
        return {"kind": "google", "credentials_env": self.credentials_env, "impersonate": True, "mailboxes": [ALICE],
                "base_url": self.fake.api_url, "token_url": self.fake.token_url, "timezone": "Europe/Paris"}

    def connect(self, credentials: str | None = None, **settings: Any) -> Any:
        """``credentials``: the key (JSON, or a path to it) the connector is given; default: the
        fake's own service account key."""
        self.monkeypatch.setenv(self.credentials_env,
                                credentials if credentials is not None else self.fake.credentials_json())
        return super().connect(**settings)

    def freebusy_calls(self) -> list[int]:
        return [len(call["items"]) for call in self.fake.freebusy_calls]

    def tokens_issued(self) -> int:
        return len(self.fake.token_claims)

    def listing_requests(self) -> int:
        return self.fake.requests.count(f"GET /calendar/v3/calendars/{ALICE}/events")

    def refusing_connector(self) -> Any:
        """The service account's key replaced by one Google does not know."""
        info = self.fake.service_account_info()
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        info["private_key"] = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode()
        return self.connect(credentials=json.dumps(info))

    def invalidate_change_tokens(self) -> None:
        self.fake.expire_sync_tokens()


VENDORS: dict[str, type[Vendor]] = {v.kind: v for v in (EWSVendor, GraphVendor, GoogleVendor)}
