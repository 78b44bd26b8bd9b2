"""The glue between django-lti / PyLTI1p3 and this project: how a launch is checked, and how we call
a platform's services. Every check of a launch is the library's, plus three it lacks:

- a nonce is used once: PyLTI1p3 only asks whether the nonce was issued, so a replayed launch (the
  same form posted again, or a new token carrying an old nonce) would pass; here the nonce is taken
  out of the shared cache (Redis) atomically when the launch is accepted;
- an unknown deployment is refused: django-lti records an inactive deployment for any deployment id
  it has not seen (for an administrator to approve) and stores the launch's user and course before
  it looks at whether the deployment is active; here only active, registered deployments pass and
  nothing is written for a refused launch;
- a token addressed to several audiences must name us as its authorized party (`azp`), as OpenID
  Connect requires.

Outgoing calls (the platform's keys, its token, AGS and NRPS endpoints) have a timeout, so a platform
that hangs cannot hold a web request or a worker.
"""
from __future__ import annotations

import logging
from typing import Any

import requests
from django.http import HttpRequest
from lti_tool.models import Key, LtiDeployment, LtiLaunch, LtiRegistration
from lti_tool.utils import DjangoToolConfig
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch
from pylti1p3.contrib.django.session import DjangoSessionService
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.service_connector import ServiceConnector

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = (5, 15)  # seconds: connect, read
USER_AGENT = "autograd-quiz-lti"


class _TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout (PyLTI1p3 sets none)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(*args, **kwargs)


def http_session() -> requests.Session:
    session = _TimeoutSession()
    session.headers["User-Agent"] = USER_AGENT
    return session


def signing_key_ensure() -> Key:
    """The tool's current signing key, made on first use (`manage.py rotate_keys` makes the next one)."""
    key = Key.objects.active().order_by("-datetime_created", "-id").first()
    return key if key is not None else Key.objects.generate()


class ToolConfig(DjangoToolConfig):
    """django-lti's registry of platforms, answering only for active, registered deployments."""

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> Any:
        signing_key_ensure()  # the registration signs with the newest active key: there must be one
        return super().find_registration_by_params(iss, client_id, *args, **kwargs)

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        signing_key_ensure()
        return super().find_registration_by_issuer(iss, *args, **kwargs)

    def _active_deployment(self, **lookups: Any) -> Deployment | None:
        if self.registration_uuid is not None:
            lookups["registration__uuid"] = self.registration_uuid
        self.deployment = (LtiDeployment.objects.active().select_related("registration")
                           .filter(registration__is_active=True, **lookups).first())
        if self.deployment is None:
            return None
        return Deployment().set_deployment_id(self.deployment.deployment_id)

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self._active_deployment(registration__issuer=iss, deployment_id=deployment_id)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str, *args: Any,
                                  **kwargs: Any) -> Deployment | None:
        return self._active_deployment(registration__issuer=iss, registration__client_id=client_id,
                                       deployment_id=deployment_id)


class LaunchStorage(DjangoCacheDataStorage):
    """PyLTI1p3's cache storage (Django's cache: Redis, shared by every process), with a take-once read."""

    def pop_value(self, key: str) -> bool:
        """Delete the key; True only for the one caller that found it (Redis DEL is atomic)."""
        return bool(self._get_cache().delete(self._prepare_key(key)))


class LaunchSessionService(DjangoSessionService):
    def consume_nonce(self, nonce: str) -> bool:
        return self.data_storage.pop_value(self._get_key("nonce", nonce))  # type: ignore[attr-defined]  # our storage's method


class MessageLaunch(DjangoMessageLaunch):
    """PyLTI1p3's launch (state, signature, expiry, issuer and audience, deployment, message), plus the
    one-time nonce and the `azp` check."""

    def __init__(self, request: HttpRequest, tool_config: ToolConfig, session_service: Any = None,
                 cookie_service: Any = None, launch_data_storage: Any = None, requests_session: Any = None) -> None:
        super().__init__(request, tool_config, session_service=session_service or LaunchSessionService(request),
                         cookie_service=cookie_service, launch_data_storage=launch_data_storage or LaunchStorage(),
                         requests_session=requests_session or http_session())

    def validate_registration(self) -> MessageLaunch:
        super().validate_registration()
        aud = self._get_jwt_body().get("aud")
        if isinstance(aud, list) and len(aud) > 1 and self._get_jwt_body().get("azp") != self.get_client_id():
            raise LtiException("The token names several audiences but not us as its authorized party (azp)")
        return self

    def save_launch_data(self) -> MessageLaunch:
        # Last step of validate(): every other check passed, so the nonce is spent only by a genuine launch.
        nonce = self._get_jwt_body()["nonce"]
        if not self._session_service.consume_nonce(nonce):
            raise LtiException("This launch was already used (its nonce was spent): launches cannot be replayed")
        super().save_launch_data()
        return self


def launch_validate(request: HttpRequest) -> LtiLaunch:
    """Check a launch posted by a platform; raises pylti1p3's LtiException with the reason when refused."""
    message_launch = MessageLaunch(request, ToolConfig())
    message_launch.validate()
    return LtiLaunch(message_launch)


def launch_restore(request: HttpRequest, launch_id: str) -> LtiLaunch:
    """A launch accepted earlier in this session, from the cache (for the deep-linking answer)."""
    message_launch = MessageLaunch.from_cache(launch_id, request, ToolConfig())
    return LtiLaunch(message_launch)


def service_connector(registration: LtiRegistration) -> ServiceConnector:
    """A client for a platform's services (AGS, NRPS): an OAuth2 token per call, asked for with a JWT
    signed by our newest key."""
    signing_key_ensure()
    return ServiceConnector(registration.to_registration(), requests_session=http_session())


class PlatformUnavailable(Exception):
    """The platform could not be reached, or answered 5xx or 429: worth trying again later."""


def platform_error(exc: Exception, doing: str) -> Exception:
    """Sort a failed platform call: PlatformUnavailable for infrastructure faults (to retry), else the
    error itself (a 4xx answer or a missing scope will not get better by retrying)."""
    if isinstance(exc, requests.RequestException):
        return PlatformUnavailable(f"{doing}: {exc}")
    response = getattr(exc, "response", None)
    if isinstance(exc, LtiException) and response is not None and (response.status_code >= 500
                                                                   or response.status_code == 429):
        return PlatformUnavailable(f"{doing}: the platform answered {response.status_code}")
    return exc
