"""The API's token authentication: DRF's, with its one query in SQL.

Why: every API request (a submission, each long-poll, a notebook's read) authenticates first, and the ORM's
`select_related("user").get(key=...)` cost 0.9 ms of CPU per request on this machine, about five times the query
itself (issue 14; config.sql says why the hot path's statements are SQL). Same answers as DRF's: the user and
the token, "Invalid token." for an unknown key, "User inactive or deleted." for an inactive user.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from . import sql


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user_model = get_user_model()
        query = (f"SELECT {sql.columns(Token, 't')}, {sql.columns(user_model, 'u')}"
                 f" FROM {sql.table(Token, 't')} JOIN {sql.table(user_model, 'u')}"
                 f" ON u.{sql.column(user_model, user_model._meta.pk.name)} = t.{sql.column(Token, 'user')}"
                 f" WHERE t.{sql.column(Token, 'key')} = %s")
        found = sql.fetch(query, [key])
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token_values, user_values, _rest = sql.split(found[0], Token, user_model)
        token = sql.instance(Token, token_values)
        token.user = user = sql.instance(user_model, user_values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token
