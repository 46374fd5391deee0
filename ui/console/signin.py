"""Signing in to the console: a form when the catalog has users, a session that expires,
signing out. With no users the console is open (it listens on loopback only) and its
visitor acts as an admin, as before users existed."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from footage.access import NotAuthenticated, Principal, Role
from footage.db import Catalog
from footage.settings import Settings
from footage.users import any_users, current, login, record

OPEN = Principal("console", Role.ADMIN, None, "open")


def _source() -> str:
    """The visitor's address, as Streamlit saw it ("?" when it has none)."""
    address = st.context.ip_address
    return address[:64] if isinstance(address, str) and address else "?"


@st.cache_resource
def _closed() -> dict[str, bool]:
    """Per console process: once the catalog has had a user, the console never opens again
    (removing the last user must not open it to everyone)."""
    return {"closed": False}


def _forget(state: Any) -> None:
    """Everything of the session (answers, searches, SQL results): nothing of one user is
    left for the next who signs in in this browser."""
    for key in list(state.keys()):
        del state[key]


def signed_in(catalog: Catalog, settings: Settings) -> Principal:
    """The visitor; shows the sign-in form (and stops the page) until they sign in."""
    closed = _closed()
    if not closed["closed"]:
        if not any_users(catalog):
            return OPEN
        closed["closed"] = True
    state = st.session_state
    who: Principal | None = state.get("principal")
    if who is not None and time.monotonic() - state.get("signed_at", 0.0) > (
        settings.console_session_hours * 3600
    ):
        record(catalog, who.name, _source(), "logout", "the session expired")
        _forget(state)
        st.info("Your session expired: sign in again.")
        who = None
    if who is not None:  # as the catalog has them now: removed, or a new role or cameras
        who = current(catalog, who.name, who.via)
        if who is None:
            _forget(state)
            st.info("This account no longer exists.")
        else:
            state.principal = who
    if who is not None:
        side = st.sidebar
        side.caption(f"Signed in as **{who.name}** ({who.role.value})")
        if side.button("Sign out", key="sign_out"):
            record(catalog, who.name, _source(), "logout", "signed out")
            _forget(state)
            st.rerun()
        return who
    st.title("footage")
    with st.form("sign_in"):
        name = st.text_input("User", key="sign_in_user", max_chars=64)
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            who = login(catalog, name.strip(), password)
        except NotAuthenticated as exc:
            record(catalog, name.strip()[:64] or "?", _source(), "login", "console", "denied")
            st.error(str(exc))
        else:
            record(catalog, who.name, _source(), "login", "console")
            state.principal, state.signed_at = who, time.monotonic()
            state.pop("sign_in_password", None)
            st.rerun()
    st.stop()
    raise AssertionError("st.stop() returns only in tests")
