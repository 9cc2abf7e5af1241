"""Who may use the review web: bearer tokens, signed session cookies, CSRF, and the sign-in routes.

Password hashes and the sign-in throttle live in ``monitor.web.passwords``.
Why it is shaped this way:

* A session is a signed cookie (itsdangerous), not a server-side table: the
  daemon and ``bearwatch review`` keep no state to lose, and a per-start
  random secret simply signs everyone out on restart. The signature carries
  its own timestamp, so a session ends ``session_hours`` after sign-in,
  however active it is. What a signature cannot do is end early, so each
  session has an id that sign-out revokes server-side
  (``monitor.web.sessions``), and a password session carries a keyed
  fingerprint of the user's password hash: changing the password in the
  config ends every session signed in with the old one.
* Every state change carries a per-session CSRF token (form field or
  ``X-CSRF-Token`` header). Bearer-token clients are exempt: a browser never
  adds that header on its own, so a forged cross-site request cannot carry it.
* Without configured users (loopback only, enforced by the config) there is
  no sign-in, but there still is a session — for the CSRF token and for the
  reviewer name recorded on each verdict.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from monitor.config import AuthConfig
from monitor.web.passwords import LoginThrottle, dummy_hash, parse_password_hash, verify_password

# Re-exported: the hash-password command and the tests import it from monitor.web.auth.
from monitor.web.passwords import hash_password as hash_password
from monitor.web.sessions import SessionBook

logger = logging.getLogger(__name__)

SESSION_COOKIE = "bearwatch_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MAX_NAME_CHARS = 64
DEFAULT_SESSION_HOURS = 12.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request; ``via`` is ``password``, ``token`` or ``local`` (no auth configured)."""

    name: str
    role: str
    via: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Session:
    """What the signed cookie holds; ``user`` is None before sign-in (the token guards the form)."""

    user: str | None
    role: str
    via: str
    csrf: str
    sid: str = ""


class SignInRequired(Exception):
    """No valid session or token: pages redirect to /login, the API answers 401."""


class Access:
    """Sign-in, sessions and CSRF for one app.

    Args:
        auth: users and tokens; None (or none configured) means no sign-in, loopback only.
        local_name: the reviewer name a fresh session gets without sign-in (default: OS user).

    Raises:
        ValueError: when a configured password hash is malformed (names the user).
    """

    def __init__(
        self,
        auth: AuthConfig | None,
        local_name: str | None = None,
        sessions: SessionBook | None = None,
    ) -> None:
        self.enabled = auth is not None and auth.enabled
        self._users = {u.name: u for u in auth.users} if auth else {}
        for user in self._users.values():
            try:
                parse_password_hash(user.password_hash)
            except ValueError as exc:
                raise ValueError(f"web.auth.users[{user.name}].password_hash: {exc}") from None
        self._tokens = list(auth.tokens) if auth else []
        hours = auth.session_hours if auth else DEFAULT_SESSION_HOURS
        self.max_age_s = int(hours * 3600)
        secret = (auth.session_secret if auth else None) or secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(secret, salt="bearwatch.session")
        self._fingerprint_key = hashlib.sha256(b"bearwatch.password\0" + secret.encode()).digest()
        self.sessions = sessions or SessionBook(None)
        self.throttle = LoginThrottle()
        self.local_name = local_name or _os_user()

    def new_session(self, user: str | None, role: str, via: str) -> Session:
        return Session(
            user=user, role=role, via=via, csrf=secrets.token_urlsafe(32), sid=SessionBook.new_id()
        )

    def anonymous_session(self) -> Session:
        """A first visit's session: unsigned-in with auth, the local reviewer without."""
        if self.enabled:
            return self.new_session(None, "reviewer", "none")
        return self.new_session(self.local_name, "admin", "local")

    def session(self, request: Request) -> Session | None:
        """The request's valid, unexpired session, or None."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=self.max_age_s)
            session = Session(
                user=data["u"],
                role=str(data["r"]),
                via=str(data["v"]),
                csrf=str(data["c"]),
                sid=str(data["s"]),
            )
            fingerprint = str(data.get("p", ""))
        except (BadSignature, KeyError, TypeError, AttributeError):
            return None
        if session.via == "local" and self.enabled:
            return None  # minted before auth was configured: worth nothing now
        if session.via == "password" and session.user not in self._users:
            return None  # the user was removed from the config
        if session.via == "password" and not hmac.compare_digest(
            fingerprint, self._password_fingerprint(session.user)
        ):
            return None  # the password was changed since this sign-in
        if not session.sid or self.sessions.is_revoked(session.sid):
            return None  # signed out (here, or by another process on this store)
        return session

    def revoke(self, session: Session) -> None:
        """End a session server-side: its cookie is refused from now on, copies included."""
        self.sessions.revoke(session.sid, time.time() + self.max_age_s)

    def _password_fingerprint(self, user: str | None) -> str:
        """A keyed digest of the user's current password hash ("" for a user not configured)."""
        found = self._users.get(user or "")
        if found is None:
            return ""
        digest = hmac.new(self._fingerprint_key, found.password_hash.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        fingerprint = self._password_fingerprint(session.user) if session.via == "password" else ""
        value = self._signer.dumps(
            {
                "u": session.user,
                "r": session.role,
                "v": session.via,
                "c": session.csrf,
                "s": session.sid,
                "p": fingerprint,
            }
        )
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.max_age_s,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )

    def principal(self, request: Request) -> Principal | None:
        """Who the request is from: a bearer token, a session, or (without auth) the local reviewer.

        Raises:
            HTTPException: 401 for an ``Authorization`` header with an unknown token.
        """
        header = request.headers.get("authorization", "")
        if self.enabled and header:
            return self._token_principal(header)
        session = self.session(request)
        if session is not None and session.user:
            return Principal(session.user, session.role, session.via)
        if not self.enabled:
            return Principal(self.local_name, "admin", "local")
        return None

    def _token_principal(self, header: str) -> Principal:
        scheme, _, supplied = header.partition(" ")
        found = None
        if scheme.lower() == "bearer" and supplied:
            for token in self._tokens:  # compare with every token: no early exit to time
                if hmac.compare_digest(token.token.encode(), supplied.strip().encode()):
                    found = token
        if found is None:
            raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
        return Principal(found.name, found.role, "token")

    def check_csrf(self, request: Request, principal: Principal, supplied: str | None) -> None:
        """Refuse a state change whose token does not match the session's (token clients exempt).

        Raises:
            HTTPException: 403.
        """
        if principal.via == "token":
            return
        session = self.session(request)
        if (
            session is None
            or not supplied
            or not hmac.compare_digest(supplied.encode(), session.csrf.encode())
        ):
            raise HTTPException(403, "missing or invalid CSRF token; reload the page and retry")

    def is_user(self, name: str) -> bool:
        return name in self._users

    def sign_in(self, name: str, password: str) -> Principal | None:
        """Check a name and password; None when either is wrong (which one is not said)."""
        user = self._users.get(name)
        ok = verify_password(password, user.password_hash if user else dummy_hash())
        if user is None or not ok:
            return None
        return Principal(user.name, user.role, "password")


def _os_user() -> str:
    try:
        return getpass.getuser() or "reviewer"
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "reviewer"


def access_of(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


def current_user(request: Request) -> Principal:
    """FastAPI dependency: the signed-in principal.

    Raises:
        SignInRequired: without a valid session or token.
    """
    principal = access_of(request).principal(request)
    if principal is None:
        raise SignInRequired()
    return principal


def csrf_user(request: Request) -> Principal:
    """FastAPI dependency for JSON state changes: the principal, with the ``X-CSRF-Token`` checked."""
    principal = current_user(request)
    access_of(request).check_csrf(request, principal, request.headers.get(CSRF_HEADER))
    return principal


User = Annotated[Principal, Depends(current_user)]
CsrfUser = Annotated[Principal, Depends(csrf_user)]
FormText = Annotated[str, Form(max_length=4096)]

router = APIRouter()


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    new_session: Session | None = None,
) -> Response:
    """A page from the templates with the session's CSRF token; a first visit gets a session.

    Args:
        new_session: replaces the request's session (sign-in forms start afresh).
    """
    access = access_of(request)
    session = new_session or access.session(request)
    fresh = new_session is not None or session is None
    if session is None:
        session = access.anonymous_session()
    if "me" not in context:
        context = {**context, "me": access.principal(request)}
    full = {
        "csrf_token": session.csrf,
        "auth_enabled": access.enabled,
        "root": request.scope.get("root_path", ""),
        **context,
    }
    response: Response = request.app.state.templates.TemplateResponse(
        request, name, full, status_code=status_code, headers=headers
    )
    if fresh:
        access.set_cookie(request, response, session)
    response.headers["Cache-Control"] = "no-store"
    return response


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in: anything else (``//evil``, ``https:``) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    access = access_of(request)
    if not access.enabled or access.principal(request) is not None:
        return RedirectResponse(safe_next(next), 303)
    return render(request, "login.html", {"next": safe_next(next), "message": None, "me": None})


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=MAX_NAME_CHARS)] = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next: FormText = "/",
) -> Response:
    """Sign in; a wrong name or password says only that one of them is wrong."""
    access = access_of(request)
    if not access.enabled:
        return RedirectResponse("/", 303)
    session = access.session(request)
    target = safe_next(next)
    if session is None or not hmac.compare_digest(csrf_token.encode(), session.csrf.encode()):
        return _login_again(request, target, "The sign-in form expired. Please try again.", 403)
    client = request.client.host if request.client else "?"
    key = (name.strip().lower(), client)
    wait = access.throttle.retry_after(key)
    if wait > 0:
        message = f"Too many failed sign-ins. Try again in {int(wait) + 1} s."
        return _login_again(request, target, message, 429, {"Retry-After": str(int(wait) + 1)})
    principal = access.sign_in(name.strip(), password)
    if principal is None:
        access.throttle.failed(key)
        known = access.is_user(name.strip())
        # The typed name is logged only when it is a real user: a password typed
        # into the name field must not end up in the journal.
        logger.warning(
            "web: failed sign-in from %s (%s)", client, name.strip() if known else "unknown name"
        )
        return _login_again(request, target, "Wrong name or password.", 401)
    access.throttle.succeeded(key)
    logger.info("web: %s signed in from %s", principal.name, client)
    response = RedirectResponse(target, 303)
    # A new session (and CSRF token) at sign-in: a token planted before cannot be reused.
    access.set_cookie(
        request, response, access.new_session(principal.name, principal.role, "password")
    )
    return response


def _login_again(
    request: Request, target: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    return render(
        request, "login.html", {"next": target, "message": message, "me": None},
        status_code=status, headers=headers, new_session=access_of(request).anonymous_session(),
    )  # fmt: skip


@router.post("/logout")
def logout(request: Request, csrf_token: FormText = "") -> Response:
    access = access_of(request)
    principal = current_user(request)
    access.check_csrf(request, principal, csrf_token)
    session = access.session(request)
    if session is not None:
        access.revoke(session)  # a copy of the cookie is worth nothing from now on
        logger.info("web: %s signed out", principal.name)
    response = RedirectResponse("/login" if access.enabled else "/", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me")
def me_page(request: Request, next: str | None = None) -> Response:
    """Without sign-in: the form that sets the reviewer name recorded on verdicts."""
    if access_of(request).enabled:
        raise HTTPException(404, "not found")
    return render(request, "me.html", {"next": safe_next(next), "message": None})


@router.post("/me")
def set_reviewer(
    request: Request,
    reviewer: Annotated[str, Form(max_length=MAX_NAME_CHARS)] = "",
    csrf_token: FormText = "",
    next: FormText = "/",
) -> Response:
    access = access_of(request)
    if access.enabled:
        raise HTTPException(404, "not found")
    access.check_csrf(request, current_user(request), csrf_token)
    name = reviewer.strip()
    if not name or not name.isprintable():
        context = {"next": safe_next(next), "message": "Type a name."}
        return render(request, "me.html", context, status_code=422)
    response = RedirectResponse(safe_next(next), 303)
    access.set_cookie(request, response, access.new_session(name, "admin", "local"))
    return response
