"""End users: who a team's app is serving, and the scope each gets when the team budgets
them apart (`end_user_budget_usd`), so one customer of an app cannot spend the team's all.

The end user is the JWT's user claim for a JWT caller (the identity provider vouches for
it, so a body cannot override it), else what the client names: OpenAI's `user`,
Anthropic's `metadata.user_id`. Its scope is namespaced by the team (`user:<team>:<who>`),
so two teams' "alice" never share a budget, and is counted with the key and team in the
same atomic admission.
"""

from __future__ import annotations

from llm_gateway.core.context import Call, Principal, Scope

MAX_END_USER = 200
"""Characters of an end user kept (the spend log's column): a longer name is cut, so a
client cannot make counter keys of any size."""


def end_user(principal: Principal, call: Call) -> str | None:
    """The end user a request is for, or None when nobody is named."""
    if principal.kind == "jwt":
        claimed = principal.metadata.get("user")
        if isinstance(claimed, str) and claimed:
            return claimed[:MAX_END_USER]
    user = call.body.get("user")
    if not isinstance(user, str):
        metadata = call.body.get("metadata")
        user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return user[:MAX_END_USER] if isinstance(user, str) and user else None


def end_user_scopes(principal: Principal, call: Call) -> tuple[Scope, ...]:
    """The request's end user's scope under each of the principal's scopes that limits end
    users (none, and nothing looked at, when no scope does or nobody is named)."""
    limiting = [(scope.id, scope.end_users) for scope in principal.scopes if scope.end_users is not None]
    user = end_user(principal, call) if limiting else None
    if user is None:
        return ()
    tag = user.replace("%", "%25").replace(":", "%3A")  # no ':' of its own: counter keys stay unambiguous
    return tuple(Scope("user", f"{owner}:{tag}", user, limits) for owner, limits in limiting)
