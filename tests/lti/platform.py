"""An LMS platform emulator for the LTI tests: a real HTTP server on 127.0.0.1 (a thread of the test
process) with its own RSA key, speaking LTI 1.3 as a platform does.

- `GET /jwks`: the platform's public keys (the tool checks launch tokens against them);
- `GET /auth`: the OIDC authorization endpoint: checks the tool's login redirect (client id, redirect
  URI, state, nonce, the launch it refers to) and answers with a form that posts a signed id_token
  to the tool's launch URL;
- `POST /token`: OAuth2 client_credentials with a JWT client assertion, verified against the tool's
  own /lti/jwks/ (fetched over HTTP, so key rotation is exercised for real);
- `GET|POST /contexts/<id>/lineitems`, `GET /contexts/<id>/lineitems/<n>`,
  `POST /contexts/<id>/lineitems/<n>/scores`: Assignment and Grade Services, checking the bearer token
  and its scopes and recording every score received;
- `GET /contexts/<id>/memberships`: Names and Role Provisioning Services;
- `POST /deep-link-return`: takes the tool's deep-linking response, verifies it against the tool's
  JWKS and places the chosen resource link (with its line item) in the course;
- `GET /start/<hint>`: where a browser test begins: redirects to the tool's login initiation.

Tests build launch tokens with `claims(...)` and `id_token(...)`, overriding any claim, so they can
forge what a hostile platform would send (another key, another audience, an expired token, an
unknown deployment, a spent nonce).
"""
from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from jwcrypto import jwk

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DEEP_LINKING_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"

SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES = {SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_RESULT_READ, SCOPE_NRPS}

ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_ADMINISTRATOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator"
ROLE_TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
ROLE_INSTITUTION_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
SCORE_FIELDS = {"userId", "scoreGiven", "scoreMaximum", "activityProgress", "gradingProgress", "timestamp"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class SigningKey:
    """An RSA key pair with a key id: the platform's own, or another one to forge with."""

    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex
        self._key = jwk.JWK.generate(kty="RSA", size=2048, kid=self.kid)
        self.private_pem = self._key.export_to_pem(private_key=True, password=None)
        self.public_jwk = {**json.loads(self._key.export_public()), "alg": "RS256", "use": "sig"}

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": kid or self.kid})


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the (first) auto-posting form of a page."""
    action = re.search(r'<form[^>]*action="([^"]*)"', page)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    assert action, f"no form in {page[:300]!r}"
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


@dataclass
class ScoreReceived:
    line_item: str
    body: dict[str, Any]


@dataclass
class Recorded:
    """Everything the platform saw, for tests to check."""

    scores: list[ScoreReceived] = field(default_factory=list)
    score_answers: list[int] = field(default_factory=list)  # status of every score POST, in order
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified client assertions: kid, claims
    deep_links: list[dict[str, Any]] = field(default_factory=list)  # verified deep-linking responses
    refused: list[str] = field(default_factory=list)  # every request the platform refused, and why


@dataclass
class PlacedLink:
    context_id: str
    resource_link_id: str
    title: str
    url: str
    custom: dict[str, str]
    line_item: str | None


class Refused(Exception):
    def __init__(self, status: int, message: str, error: str = "invalid_request") -> None:
        super().__init__(message)
        self.status, self.error = status, error


class Platform:
    """One emulated LMS with one tool registration (client id) and one deployment of it."""

    def __init__(self, *, tool_url: str, tool_jwks_url: str | None = None, url_host: str = "127.0.0.1",
                 client_id: str = "autograd-quiz-tool", deployment_id: str = "deployment-1") -> None:
        self.tool_url = tool_url.rstrip("/")
        self.tool_jwks_url = tool_jwks_url
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.key = SigningKey()
        self.recorded = Recorded()
        self.fail_scores: list[int] = []  # statuses to answer the next score posts with, one each
        self.line_items: dict[str, dict[str, Any]] = {}  # by URL
        self.members: dict[str, list[dict[str, Any]]] = {}  # by context id
        self._launches: dict[str, dict[str, Any]] = {}  # lti_message_hint -> claims awaiting the OIDC step
        self._deep_link_contexts: dict[str, str] = {}  # deep-linking `data` -> the course it was asked in
        self.placed: list[PlacedLink] = []  # resource links made from the tool's deep-linking responses
        self._tokens: dict[str, set[str]] = {}
        self._jtis: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://{url_host}:{self._server.server_address[1]}"
        self.issuer = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="lti-platform", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # Addresses -------------------------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return f"{self.url}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    @property
    def tool_launch_url(self) -> str:
        return f"{self.tool_url}/lti/launch/"

    @property
    def tool_login_url(self) -> str:
        return f"{self.tool_url}/lti/login/"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.url}/contexts/{context_id}/lineitems"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.url}/contexts/{context_id}/memberships"

    # The tool's side of the registration, as an administrator enters it --------------------------------
    def register(self, *, deployment_active: bool = True) -> Any:
        """Register this platform with the tool (django-lti's LtiRegistration and its deployment)."""
        from lti_tool.models import LtiDeployment, LtiRegistration

        registration = LtiRegistration.objects.create(
            name="Emulated LMS", issuer=self.issuer, client_id=self.client_id, auth_url=self.auth_url,
            token_url=self.token_url, keyset_url=self.jwks_url)
        LtiDeployment.objects.create(registration=registration, deployment_id=self.deployment_id,
                                     is_active=deployment_active)
        return registration

    # Courses on the platform -------------------------------------------------------------------------
    def line_item_create(self, context_id: str, *, label: str, resource_link_id: str = "",
                         score_maximum: float = 100, resource_id: str = "") -> str:
        with self._lock:
            url = f"{self.lineitems_url(context_id)}/{len(self.line_items) + 1}"
            self.line_items[url] = {"id": url, "label": label, "scoreMaximum": score_maximum,
                                    "resourceLinkId": resource_link_id, "resourceId": resource_id}
        return url

    def scores_for(self, sub: str) -> list[dict[str, Any]]:
        return [s.body for s in self.recorded.scores if s.body.get("userId") == sub]

    # Launch tokens -----------------------------------------------------------------------------------
    def claims(self, *, sub: str, roles: Iterable[str] = (ROLE_LEARNER,), deep_linking: bool = False,
               context_id: str = "course-101", context_title: str = "Deep learning 101",
               resource_link_id: str = "link-1", custom: dict[str, str] | None = None,
               line_item: str | None = None, ags: bool = True, nrps: bool = True,
               given_name: str | None = "Ada", family_name: str | None = "Lovelace",
               email: str | None = "ada@example.edu", **overrides: Any) -> dict[str, Any]:
        """A launch's claims (without iat, exp and nonce, added when signed); `overrides` win."""
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": sub,
            LTI + "deployment_id": self.deployment_id,
            LTI + "message_type": "LtiDeepLinkingRequest" if deep_linking else "LtiResourceLinkRequest",
            LTI + "version": "1.3.0",
            LTI + "roles": list(roles),
            LTI + "context": {"id": context_id, "label": context_id.upper(), "title": context_title,
                              "type": [COURSE_OFFERING]},
            LTI + "target_link_uri": self.tool_launch_url,
            LTI + "tool_platform": {"guid": "emulated-lms", "name": "Emulated LMS", "product_family_code": "tests"},
        }
        if deep_linking:
            data = f"opaque-{secrets.token_hex(4)}"
            self._deep_link_contexts[data] = context_id
            claims[DEEP_LINKING_SETTINGS] = {
                "deep_link_return_url": f"{self.url}/deep-link-return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": False,
                "data": data}
        else:
            claims[LTI + "resource_link"] = {"id": resource_link_id, "title": "Autograd quiz"}
        if custom:
            claims[LTI + "custom"] = custom
        if ags:
            claims[AGS] = {"scope": [SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_RESULT_READ],
                           "lineitems": self.lineitems_url(context_id)}
            if line_item:
                claims[AGS]["lineitem"] = line_item
        if nrps:
            claims[NRPS] = {"context_memberships_url": self.memberships_url(context_id), "service_versions": ["2.0"]}
        for name, value in (("given_name", given_name), ("family_name", family_name), ("email", email)):
            if value is not None:
                claims[name] = value
        if given_name or family_name:
            claims["name"] = " ".join(n for n in (given_name, family_name) if n)
        claims.update(overrides)
        return claims

    def id_token(self, claims: dict[str, Any], *, nonce: str, key: SigningKey | None = None, kid: str | None = None,
                 expires_in: int = 300, issued_at: int | None = None) -> str:
        """The signed id_token of a launch: the platform's key unless another is given, under its own key id
        unless `kid` says otherwise (another key under the platform's kid: a forged signature)."""
        now = int(time.time()) if issued_at is None else issued_at
        return (key or self.key).sign({"iat": now, "exp": now + expires_in, "nonce": nonce, **claims}, kid=kid)

    def login_params(self, claims: dict[str, Any]) -> dict[str, str]:
        """Start a launch: the OIDC login initiation the platform sends the tool (the claims wait for
        the tool's authorization request, keyed by lti_message_hint)."""
        hint = secrets.token_urlsafe(12)
        with self._lock:
            self._launches[hint] = claims
        return self._initiation(hint, claims)

    def _initiation(self, hint: str, claims: dict[str, Any]) -> dict[str, str]:
        return {"iss": self.issuer, "login_hint": claims["sub"], "target_link_uri": self.tool_launch_url,
                "lti_message_hint": hint, "client_id": self.client_id,
                "lti_deployment_id": claims.get(LTI + "deployment_id", self.deployment_id)}

    def start_url(self, claims: dict[str, Any]) -> str:
        """Where a browser begins a launch (the link a learner clicks in the course)."""
        params = self.login_params(claims)
        return f"{self.url}/start/{params['lti_message_hint']}"

    # OIDC authorization ------------------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> str:
        """The answer to the tool's authorization request: a form posting the id_token to the tool."""
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                    "prompt": "none", "client_id": self.client_id}
        for name, value in expected.items():
            if query.get(name) != value:
                raise Refused(400, f"{name} must be {value!r}, not {query.get(name)!r}")
        if query.get("redirect_uri") != self.tool_launch_url:
            raise Refused(400, f"redirect_uri {query.get('redirect_uri')!r} is not registered for this tool")
        if not query.get("state") or not query.get("nonce"):
            raise Refused(400, "state and nonce are required")
        with self._lock:
            claims = self._launches.pop(query.get("lti_message_hint", ""), None)
        if claims is None or query.get("login_hint") != claims["sub"]:
            raise Refused(400, "unknown lti_message_hint or login_hint")
        token = self.id_token(claims, nonce=query["nonce"])
        return auto_post_form(query["redirect_uri"], {"id_token": token, "state": query["state"]})

    # OAuth2 and the tool's keys ----------------------------------------------------------------------------
    def tool_keys(self) -> dict[str, Any]:
        assert self.tool_jwks_url, "this platform has no address for the tool's JWKS"
        with urllib.request.urlopen(self.tool_jwks_url, timeout=10) as response:  # noqa: S310 - loopback only
            return json.loads(response.read())

    def verify_tool_jwt(self, token: str, *, audience: str) -> dict[str, Any]:
        """A JWT the tool signed, checked against the keys the tool publishes (matched by kid)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise Refused(400, f"not a JWT: {exc}", "invalid_client") from exc
        key = next((k for k in self.tool_keys()["keys"] if k.get("kid") == kid), None)
        if key is None:
            raise Refused(401, f"the tool's JWKS has no key {kid!r}", "invalid_client")
        try:
            claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.InvalidTokenError as exc:
            raise Refused(401, f"the tool's JWT does not verify: {exc}", "invalid_client") from exc
        return {"kid": kid, **claims}

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            raise Refused(400, "client_credentials with a JWT client assertion only", "unsupported_grant_type")
        assertion = self.verify_tool_jwt(form.get("client_assertion", ""), audience=self.token_url)
        if assertion.get("iss") != self.client_id or assertion.get("sub") != self.client_id:
            raise Refused(401, "the assertion's iss and sub must be the client id", "invalid_client")
        with self._lock:
            if not assertion.get("jti") or assertion["jti"] in self._jtis:
                raise Refused(401, "the assertion's jti is missing or was used before", "invalid_client")
            self._jtis.add(assertion["jti"])
            self.recorded.assertions.append(assertion)
            scopes = set(form.get("scope", "").split()) & ALL_SCOPES
            access_token = secrets.token_urlsafe(24)
            self._tokens[access_token] = scopes
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(scopes)}

    def check_bearer(self, authorization: str, *accepted: str) -> None:
        scheme, _, token = authorization.partition(" ")
        scopes = self._tokens.get(token) if scheme == "Bearer" else None
        if scopes is None:
            raise Refused(401, "missing or unknown bearer token", "invalid_token")
        if not scopes & set(accepted):
            raise Refused(403, f"the token lacks the scope ({' or '.join(accepted)})", "insufficient_scope")

    # Assignment and Grade Services, NRPS, deep linking ---------------------------------------------------
    def lineitems(self, context_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
        prefix = self.lineitems_url(context_id) + "/"
        items = [i for u, i in self.line_items.items() if u.startswith(prefix)]
        if query.get("resource_link_id"):
            items = [i for i in items if i.get("resourceLinkId") == query["resource_link_id"]]
        return items

    def score(self, line_item_url: str, body: dict[str, Any]) -> int:
        with self._lock:
            if self.fail_scores:
                status = self.fail_scores.pop(0)
                self.recorded.score_answers.append(status)
                return status
        if line_item_url not in self.line_items:
            raise Refused(404, f"no line item {line_item_url}")
        missing = SCORE_FIELDS - set(body)
        if missing:
            raise Refused(400, f"a score needs {sorted(missing)}")
        if not 0 <= body["scoreGiven"] <= body["scoreMaximum"]:
            raise Refused(400, "scoreGiven must be between 0 and scoreMaximum")
        with self._lock:
            self.recorded.scores.append(ScoreReceived(line_item_url, body))
            self.recorded.score_answers.append(200)
        return 200

    def deep_link_return(self, form: dict[str, str]) -> dict[str, Any]:
        claims = self.verify_tool_jwt(form.get("JWT", ""), audience=self.issuer)
        if claims.get("iss") != self.client_id or claims.get(LTI + "message_type") != "LtiDeepLinkingResponse":
            raise Refused(400, "not a deep-linking response from our tool")
        if claims.get(LTI + "deployment_id") != self.deployment_id:
            raise Refused(400, "wrong deployment id")
        context_id = self._deep_link_contexts.get(claims.get(DEEP_LINKING_DATA, ""))
        if context_id is None:
            raise Refused(400, "the response does not echo the request's data claim")
        self.recorded.deep_links.append(claims)
        for item in claims.get(CONTENT_ITEMS, []):
            if item.get("type") != "ltiResourceLink":
                continue
            link_id = f"placed-{len(self.placed) + 1}"
            line_item = item.get("lineItem")
            url = self.line_item_create(context_id, label=line_item.get("label", ""), resource_link_id=link_id,
                                        score_maximum=line_item["scoreMaximum"],
                                        resource_id=line_item.get("resourceId", "")) if line_item else None
            self.placed.append(PlacedLink(context_id=context_id, resource_link_id=link_id, title=item.get("title", ""),
                                          url=item.get("url", ""), custom=item.get("custom") or {}, line_item=url))
        return claims

    def placed_link_claims(self, placed: PlacedLink, **claims: Any) -> dict[str, Any]:
        """The launch of a link the tool placed: its custom parameters and its line item, as LMSs send."""
        return self.claims(context_id=placed.context_id, resource_link_id=placed.resource_link_id,
                           custom=placed.custom, line_item=placed.line_item, **claims)


def auto_post_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return (f'<!doctype html><html><body><form id="post" method="post" action="{html.escape(action)}">{inputs}'
            '<noscript><button type="submit">Continue</button></noscript></form>'
            "<script>document.getElementById('post').submit();</script></body></html>")


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read platform.recorded
            pass

        def _send(self, status: int, body: Any = b"", content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            if not isinstance(body, bytes):
                body = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _form(self) -> dict[str, str]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _json(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
            bearer = self.headers.get("Authorization", "")
            try:
                if method == "GET" and path == "/jwks":
                    return self._send(200, {"keys": [platform.key.public_jwk]})
                if method == "GET" and path == "/favicon.ico":
                    return self._send(204)
                if method == "GET" and path.startswith("/start/"):
                    hint = path.rsplit("/", 1)[1]
                    if hint not in platform._launches:
                        raise Refused(404, "no such launch")
                    params = platform._initiation(hint, platform._launches[hint])
                    return self._send(302, headers={"Location": f"{platform.tool_login_url}?{urlencode(params)}"})
                if method == "GET" and path == "/auth":
                    return self._send(200, platform.authorize(query), "text/html; charset=utf-8")
                if method == "POST" and path == "/token":
                    return self._send(200, platform.token(self._form()))
                if method == "POST" and path == "/deep-link-return":
                    claims = platform.deep_link_return(self._form())
                    titles = ", ".join(i.get("title", "") for i in claims.get(CONTENT_ITEMS, []))
                    return self._send(200, f"<!doctype html><title>Content added</title><h1>Added: "
                                      f"{html.escape(titles)}</h1>", "text/html; charset=utf-8")
                match = re.fullmatch(r"/contexts/([^/]+)/(lineitems|memberships)(?:/(\d+))?(/scores)?", path)
                if match:
                    return self._services(method, match, query, bearer)
                raise Refused(404, f"no {method} {path} here")
            except Refused as exc:
                platform.recorded.refused.append(f"{method} {path}: {exc}")
                return self._send(exc.status, {"error": exc.error, "error_description": str(exc)})

        def _services(self, method: str, match: re.Match[str], query: dict[str, str], bearer: str) -> None:
            context_id, service, number, scores = match.groups()
            if service == "memberships" and method == "GET" and not number:
                platform.check_bearer(bearer, SCOPE_NRPS)
                return self._send(200, {"id": platform.memberships_url(context_id), "context": {"id": context_id},
                                        "members": platform.members.get(context_id, [])},
                                  "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
            if service != "lineitems":
                raise Refused(405, "not allowed")
            url = f"{platform.lineitems_url(context_id)}/{number}" if number else ""
            if scores and method == "POST":
                platform.check_bearer(bearer, SCOPE_SCORE)
                if self.headers.get("Content-Type") != "application/vnd.ims.lis.v1.score+json":
                    raise Refused(415, "scores are application/vnd.ims.lis.v1.score+json")
                status = platform.score(url, self._json())
                return self._send(status, {} if status < 300 else {"error": "unavailable"})
            if number and method == "GET":
                platform.check_bearer(bearer, SCOPE_LINEITEM, SCOPE_LINEITEM_READ)
                if url not in platform.line_items:
                    raise Refused(404, f"no line item {url}")
                return self._send(200, platform.line_items[url], "application/vnd.ims.lis.v2.lineitem+json")
            if not number and method == "GET":
                platform.check_bearer(bearer, SCOPE_LINEITEM, SCOPE_LINEITEM_READ)
                return self._send(200, platform.lineitems(context_id, query),
                                  "application/vnd.ims.lis.v2.lineitemcontainer+json")
            if not number and method == "POST":
                platform.check_bearer(bearer, SCOPE_LINEITEM)
                body = self._json()
                created_url = platform.line_item_create(
                    context_id, label=body.get("label", ""), resource_link_id=body.get("resourceLinkId", ""),
                    score_maximum=body.get("scoreMaximum", 100), resource_id=body.get("resourceId", ""))
                return self._send(201, platform.line_items[created_url], "application/vnd.ims.lis.v2.lineitem+json")
            raise Refused(405, "not allowed")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

    return Handler
