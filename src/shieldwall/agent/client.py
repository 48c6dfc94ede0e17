"""The agent's council client (httpx): signed reports and concerns, the decision snapshot
and stream (with live consultations)."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import msgspec
from httpx_sse import aconnect_sse
from nacl.signing import VerifyKey

from shieldwall.blocklist import Claim
from shieldwall.clock import Clock
from shieldwall.errors import CouncilError, ShieldwallError, SignatureError, WireError
from shieldwall.model import LogEvent
from shieldwall.tls import client_context
from shieldwall.wire import signing
from shieldwall.wire.messages import (
    ConcernRequest,
    Report,
    Snapshot,
    WireAlert,
    WireAnswer,
    WireConsult,
    WireLift,
    WireProtect,
    WireSighting,
    claims_from_wire,
    decode_batch,
    decode_consult,
    decode_lift,
    decode_page,
    decode_protect,
    decode_snapshot,
    encode,
    events_from_wire,
)
from shieldwall.wire.signing import sign_request
from shieldwall.wire.stream import signed_message, split_signature

_EVENTS = frozenset({"batch", "snapshot", "consult", "protect", "lift"})


class ForgedStream(CouncilError):
    """A stream message the pinned council key did not sign: refused, and the stream is
    dropped (the agent resumes from its last sequence number, from the council's store)."""


def _reason(body: bytes) -> str | None:
    """The council's refusal reason (``{"error": …}``), if the body says one."""
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    reason = data.get("error") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else None


def new_report_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """The council's active set as of ``seq``, assembled from the stream's snapshot pages."""

    seq: int
    claims: list[Claim]
    malformed: int = 0


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """Decision-log events the council committed together, in order; ``raw``: the message
    as it came (what the agent's journal keeps)."""

    events: list[LogEvent]
    malformed: int = 0
    raw: str | None = None


class CouncilClient:
    def __init__(
        self,
        url: str,
        member: str,
        private_key: str,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        council_key: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``council_key``: the council's public key; every stream message must be signed
        by it (None: nothing is checked until :meth:`pin` is called). ``tls``: the context
        the council's certificate is verified with (None: the system's CAs)."""
        self.url = url.rstrip("/")
        self.council_key: VerifyKey | None = None
        if council_key is not None:
            self.pin(council_key)
        self.member = member
        self._key_b64 = private_key
        self._key = signing.signing_key(private_key)
        self.clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "shieldwall-agent"},
            verify=tls or client_context(),
        )

    def pin(self, public_key: str) -> None:
        """Check every stream message against ``public_key`` from now on."""
        self.council_key = signing.verify_key(public_key)

    async def presented_key(self) -> str:
        """The public key the council presents (``GET /v1/council``): what an agent with no
        ``council-key`` pins on first contact."""
        try:
            resp = await self._http.get("/v1/council")
        except httpx.HTTPError as exc:
            raise CouncilError(f"council unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise CouncilError(
                f"the council presents no key (GET /v1/council: {resp.status_code}): is it "
                "older than this agent?",
                resp.status_code,
            )
        try:
            key = str(resp.json()["public_key"])
            signing.verify_key(key)
        except (ValueError, KeyError, TypeError, ShieldwallError) as exc:
            raise CouncilError(f"the council presents a malformed key: {exc}") from exc
        return key

    def _payload(self, event: str, data: str) -> str:
        """A stream message's payload once its signature is checked against the pinned key;
        ForgedStream when it is unsigned or signed by another key."""
        payload, sig = split_signature(data)
        key = self.council_key
        if key is None:
            return payload
        if sig is None:
            raise ForgedStream(f"a {event} message without the council's signature")
        try:
            signing.verify(key, signed_message(event, payload.encode()), sig)
        except SignatureError as exc:
            raise ForgedStream(f"a {event} message not signed by the pinned council key") from exc
        return payload

    async def close(self) -> None:
        await self._http.aclose()

    def _signed_headers(self, method: str, target: str) -> dict[str, str]:
        headers = sign_request(self._key_b64, method, target, self.clock.now())
        headers["X-Shieldwall-Member"] = self.member
        return headers

    async def _post_signed(self, path: str, body: bytes) -> httpx.Response:
        """POST a body signed with the member's key; transport errors are CouncilError."""
        headers = {
            "Content-Type": "application/json",
            "X-Shieldwall-Signature": signing.sign(self._key, body),
        }
        try:
            return await self._http.post(path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CouncilError(f"council unreachable: {exc}") from exc

    async def _get_signed(self, target: str) -> httpx.Response:
        """A member-signed read; anything but 200 is a CouncilError."""
        try:
            resp = await self._http.get(target, headers=self._signed_headers("GET", target))
        except httpx.HTTPError as exc:
            raise CouncilError(f"council unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise CouncilError(f"{resp.status_code} {resp.text}", resp.status_code)
        return resp

    async def send_report(
        self,
        report_id: str,
        alerts: list[WireAlert],
        sightings: Sequence[WireSighting] = (),
        answers: Sequence[WireAnswer] = (),
    ) -> dict[str, object]:
        """Sign and send one report. 409 (already received) counts as delivered.

        Raises CouncilError with ``status`` None for transport errors (retry later).
        """
        report = Report(
            id=report_id,
            member=self.member,
            sent_at=self.clock.now(),
            alerts=alerts,
            sightings=list(sightings),
            answers=list(answers),
        )
        resp = await self._post_signed("/v1/reports", encode(report))
        if resp.status_code == 409:
            return {"replayed": True}
        if resp.status_code != 200:
            raise CouncilError(
                f"report refused: {resp.status_code} {resp.text}",
                resp.status_code,
                _reason(resp.content),
            )
        out: dict[str, object] = resp.json()
        return out

    async def raise_concern(
        self, source: str, reason: str = "", rule: str | None = None
    ) -> tuple[int, dict[str, object]]:
        """Article 4: a signed concern about ``source`` (``POST /v1/concerns``).
        Returns the status code and the council's answer."""
        request = ConcernRequest(
            id=new_report_id(),
            member=self.member,
            sent_at=self.clock.now(),
            source=source,
            reason=reason,
            rule=rule,
        )
        resp = await self._post_signed("/v1/concerns", encode(request))
        out: dict[str, object] = resp.json()
        return resp.status_code, out

    async def explain(self, decision_id: str) -> dict[str, object]:
        """A decision's evidence chain (a member-signed read)."""
        resp = await self._get_signed(f"/v1/decisions/{decision_id}/explain")
        out: dict[str, object] = resp.json()
        return out

    async def snapshot(self) -> Snapshot:
        resp = await self._get_signed("/v1/decisions")
        return decode_snapshot(resp.content)

    async def stream(
        self, since: int | None
    ) -> AsyncIterator[StreamSnapshot | StreamBatch | WireConsult | WireProtect | WireLift]:
        """Decision events from the council, a batch at a time; a snapshot first when
        ``since`` is None (or ahead of the council's log). Consultations (live, outside the
        log) come as :class:`WireConsult`. A malformed event or decision is skipped and
        counted in its batch's ``malformed``."""
        target = "/v1/decisions/stream" + ("" if since is None else f"?since={since}")
        headers = self._signed_headers("GET", target)
        timeout = httpx.Timeout(10.0, read=40.0)  # heartbeats come every 15 s
        pages: list[Claim] = []
        bad_pages = 0
        try:
            async with aconnect_sse(
                self._http, "GET", target, headers=headers, timeout=timeout
            ) as source:
                if source.response.status_code != 200:
                    await source.response.aread()
                    raise CouncilError(
                        f"stream refused: {source.response.status_code} {source.response.text}",
                        source.response.status_code,
                        _reason(source.response.content),
                    )
                async for sse in source.aiter_sse():
                    if sse.event not in _EVENTS:
                        continue
                    data = self._payload(sse.event, sse.data)
                    if sse.event == "batch":
                        events, bad = events_from_wire(decode_batch(data))
                        yield StreamBatch(events, bad, data)
                    elif sse.event == "snapshot":
                        page = decode_page(data)
                        claims, bad = claims_from_wire(page)
                        pages += claims
                        bad_pages += bad
                        if page.last:
                            yield StreamSnapshot(page.seq, pages, bad_pages)
                            pages, bad_pages = [], 0
                    elif sse.event == "protect":
                        yield decode_protect(data)
                    elif sse.event == "lift":
                        yield decode_lift(data)
                    else:
                        yield decode_consult(data)
        except httpx.HTTPError as exc:
            raise CouncilError(f"stream broken: {exc}") from exc
        except (WireError, msgspec.ValidationError) as exc:
            raise CouncilError(f"bad stream data: {exc}") from exc
