"""Jiritsu's Datasette plugin for what datasette-dashboards does not do.

* ``prepare_connection``: SQL functions that format numbers for display (``money(x)``:
  ``1,494,684.97``; ``num(x, digits)``; ``pct(x, digits)``), so chart SQL shows numbers the way
  an operator reads them while the stored values stay exact.
* ``register_routes``:

  - ``/``: logged-in users land on the dashboards, not on Datasette's index;
  - ``/-/jiritsu/control`` (GET: the halt state and the buttons; POST: ``action`` halt | resume |
    flatten, optional ``bot``, ``reason``, ``confirm`` and Datasette's ``csrftoken``): the one
    write path. Only users listed by ``DashboardSettings.controllers()`` may POST; everyone else
    gets 403. It calls :mod:`jiritsu.usecases.control` against the configured database (not the
    read-only file being served). Absent when ``dashboard.controls_enabled`` is false;
  - ``/-/jiritsu/log`` and ``/-/jiritsu/log.json``: the tail of the day's log file
    (:mod:`jiritsu.dashboard.logtail`), refreshed by the page every few seconds;
  - ``/-/jiritsu/dashboard.css``: card text that wraps instead of being clipped.

The control and log routes need the server's configuration: :func:`attach` gives it to one
Datasette instance (``serve.build_datasette`` does). Registered by :mod:`jiritsu.dashboard.serve`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any

from datasette import hookimpl
from datasette.utils.asgi import Response

from jiritsu.clock import RealClock, wall_now
from jiritsu.dashboard.config import CONTROL_PATH
from jiritsu.dashboard.config import LOG_TAIL_PATH as LOG_PATH

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig

log = logging.getLogger(__name__)

CSS_PATH = "/-/jiritsu/dashboard.css"
LOG_REFRESH_SECONDS = 3
FLATTEN_WORD = "FLATTEN"

_CONFIGS: weakref.WeakKeyDictionary[Any, LoadedConfig] = weakref.WeakKeyDictionary()

CSS = """
.dashboard-card-chart > div[style*="flex"] { white-space: normal !important; }
.dashboard-card-chart > div[style*="flex"] > p {
  font-size: 1.6rem !important; text-align: center; overflow-wrap: anywhere; margin: 0;
}
.dashboard-card-chart table td, .dashboard-card-chart table th { white-space: nowrap; }
.jiritsu-log { font-size: 0.8rem; white-space: pre-wrap; background: #f8f8f8; padding: 0.5rem;
  max-height: 75vh; overflow: auto; }
.jiritsu-result { padding: 0.5rem 1rem; border-left: 4px solid #1a9850; background: #f3faf3; }
.jiritsu-error { padding: 0.5rem 1rem; border-left: 4px solid #d73027; background: #fdf3f2; }
.jiritsu-controls fieldset { margin-bottom: 1rem; }
"""


def attach(datasette: Any, loaded: LoadedConfig) -> None:
    """Give ``datasette`` the configuration its control and log pages act on."""
    _CONFIGS[datasette] = loaded


# --- number formatting -------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def money(value: Any) -> str | None:
    """``1494684.9655`` -> ``'1,494,684.97'``; NULL stays NULL."""
    number = _number(value)
    return None if number is None else f"{number:,.2f}"


def num(value: Any, digits: int = 2) -> str | None:
    number = _number(value)
    return None if number is None else f"{number:,.{int(digits)}f}"


def pct(value: Any, digits: int = 1) -> str | None:
    """A fraction as a percentage: ``0.4567`` -> ``'45.7%'``."""
    number = _number(value)
    return None if number is None else f"{100 * number:,.{int(digits)}f}%"


@hookimpl
def prepare_connection(conn: Any) -> None:
    conn.create_function("money", 1, money, deterministic=True)
    conn.create_function("num", 2, num, deterministic=True)
    conn.create_function("pct", 2, pct, deterministic=True)


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(CSS_PATH)]


@hookimpl
def menu_links(datasette: Any, actor: dict[str, Any] | None) -> list[dict[str, str]]:
    loaded = _CONFIGS.get(datasette)
    if actor is None or loaded is None:
        return []
    links = [{"href": datasette.urls.path("/-/dashboards"), "label": "Dashboards"}]
    links.append({"href": datasette.urls.path(LOG_PATH), "label": "Live log"})
    if loaded.settings.dashboard.controls_enabled:
        links.append({"href": datasette.urls.path(CONTROL_PATH), "label": "Controls"})
    return links


# --- routes --------------------------------------------------------------------------------


async def _css() -> Response:
    return Response(CSS, content_type="text/css; charset=utf-8")


async def _home(datasette: Any, request: Any) -> Response:
    if request.actor is None:
        return Response.redirect(datasette.urls.path("/-/login"))
    return Response.redirect(datasette.urls.path("/-/dashboards"))


def _now() -> datetime:
    """The server's clock: these pages show the live state, so it is the wall clock."""
    return wall_now()


async def _page(datasette: Any, request: Any, title: str, body: str, status: int = 200) -> Any:
    template = datasette.jinja_env.from_string(
        '{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}'
        "{% block content %}{{ body|safe }}{% endblock %}"
    )
    html = await datasette.render_template(
        template, {"title": title, "body": body}, request=request
    )
    return Response.html(html, status=status)


def _esc(value: Any) -> str:
    from markupsafe import escape

    return str(escape("" if value is None else str(value)))


# --- the live log ---------------------------------------------------------------------------


def _log_args(request: Any) -> tuple[int, str]:
    from jiritsu.dashboard.logtail import LEVELS

    try:
        lines = int(request.args.get("lines") or 200)
    except ValueError:
        lines = 200
    level = (request.args.get("level") or "DEBUG").upper()
    return lines, level if level in LEVELS else "DEBUG"


async def _log_tail(datasette: Any, request: Any) -> Response:
    from jiritsu.dashboard.logtail import LEVELS, tail

    await datasette.ensure_permissions(request.actor, ["view-instance"])
    loaded = _CONFIGS.get(datasette)
    if loaded is None:
        return Response.text("the log page needs the server's configuration", status=404)
    lines, level = _log_args(request)
    directory = loaded.settings.general.data_dir / "logs"
    result = await asyncio.to_thread(tail, directory, _now(), lines=lines, level=level)
    if request.path.endswith(".json"):
        return Response.json(
            {"file": result.file_name, "exists": result.exists, "lines": result.lines},
            headers={"cache-control": "no-store"},
        )
    options = "".join(
        f'<option value="{name}"{" selected" if name == level else ""}>{name}</option>'
        for name in LEVELS
    )
    missing = "" if result.exists else f"<p>{_esc(result.file_name)} has no lines yet.</p>"
    body = f"""
<h1>Live log</h1>
<p>The last lines of today's log file <code>{_esc(result.file_name)}</code> (times UTC), refreshed
every {LOG_REFRESH_SECONDS} seconds. <a href="/-/dashboards/log">Events</a> ·
<a href="/-/dashboards">Dashboards</a></p>
<form method="get" action="{LOG_PATH}">
  <label>Lines <input type="number" name="lines" min="1" max="2000" value="{lines}"></label>
  <label>Level at least <select name="level">{options}</select></label>
  <input type="submit" value="Show">
</form>
{missing}<pre id="jiritsu-log" class="jiritsu-log">{_esc(chr(10).join(result.lines))}</pre>
<script>
(function () {{
  const box = document.getElementById('jiritsu-log');
  const url = '{LOG_PATH}.json?lines={lines}&level={level}';
  async function refresh() {{
    try {{
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 5;
      const data = await (await fetch(url, {{cache: 'no-store'}})).json();
      box.textContent = data.lines.join('\\n');
      if (atEnd) box.scrollTop = box.scrollHeight;
    }} catch (e) {{ /* the next refresh tries again */ }}
  }}
  box.scrollTop = box.scrollHeight;
  setInterval(refresh, {LOG_REFRESH_SECONDS * 1000});
}})();
</script>"""
    return await _page(datasette, request, "Live log", body)


# --- the control buttons -------------------------------------------------------------------


def _state_table(states: list[Any]) -> str:
    if not states:
        return "<p>Nothing is halted: no halt switch has been set yet.</p>"
    rows = "".join(
        "<tr>"
        f"<td>{_esc(s.scope)}</td><td>{'HALTED' if s.halted else 'running'}</td>"
        f"<td>{_esc(s.reason if s.halted else '')}</td><td>{_esc(s.halted_by)}</td>"
        f"<td>{_esc(s.halted_at.strftime('%Y-%m-%d %H:%M:%S') if s.halted_at else '')}</td>"
        "</tr>"
        for s in states
    )
    return (
        "<table><thead><tr><th>scope</th><th>state</th><th>reason</th><th>by</th>"
        f"<th>since (UTC)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _report_table(result: Any) -> str:
    report = result.report
    if report is None:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(x.bot)}</td><td>{_esc(x.action)}</td><td>{_esc(x.symbol)}</td>"
        f"<td>{_esc(x.side)}</td><td>{_esc(x.qty)}</td><td>{_esc(x.status)}</td>"
        f"<td>{_esc(x.detail)}</td></tr>"
        for x in report.lines
    )
    return (
        "<table><thead><tr><th>bot</th><th>action</th><th>symbol</th><th>side</th><th>qty</th>"
        f"<th>status</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _control_form(loaded: LoadedConfig, token: str) -> str:
    bots = "".join(
        f'<option value="{_esc(name)}">{_esc(name)}</option>' for name in loaded.settings.bot_names
    )
    return f"""
<form method="post" action="{CONTROL_PATH}" class="jiritsu-controls">
  <input type="hidden" name="csrftoken" value="{_esc(token)}">
  <fieldset><legend>Scope</legend>
    <label>Bot <select name="bot"><option value="">everything (global)</option>{bots}</select>
    </label>
  </fieldset>
  <fieldset><legend>Halt or resume</legend>
    <label>Reason <input type="text" name="reason" size="50" placeholder="manual: why"></label>
    <button type="submit" name="action" value="halt">Halt</button>
    <button type="submit" name="action" value="resume">Resume</button>
  </fieldset>
  <fieldset><legend>Flatten: halt, cancel every open order, close every position at market
    </legend>
    <label>Type {FLATTEN_WORD} to confirm <input type="text" name="confirm" size="10"
      autocomplete="off"></label>
    <button type="submit" name="action" value="flatten">Flatten</button>
  </fieldset>
</form>"""


def _act(loaded: LoadedConfig, form: dict[str, str], requester: Any) -> Any:
    """Run the action against the configured database (in a worker thread)."""
    from jiritsu.db.engine import connect_configured
    from jiritsu.notify import notifier_from_config
    from jiritsu.usecases import control

    action, bot = form["action"], form["bot"] or None
    engine = connect_configured(loaded)
    try:
        common = {"bot": bot, "by": requester, "clock": RealClock()}
        notifier = notifier_from_config(loaded)
        if action == "halt":
            return control.halt(
                engine, loaded.settings, reason=form["reason"], notifier=notifier, **common
            )
        if action == "resume":
            return control.resume(engine, loaded.settings, notifier=notifier, **common)
        return control.flatten(engine, loaded, notifier=notifier, **common)
    finally:
        engine.dispose()


def _states(loaded: LoadedConfig) -> list[Any]:
    from jiritsu.db.engine import connect_configured
    from jiritsu.usecases import control

    engine = connect_configured(loaded)
    try:
        return control.halt_states(engine)
    finally:
        engine.dispose()


async def _control(datasette: Any, request: Any) -> Response:
    from jiritsu.errors import DatabaseUnavailable, UsageError
    from jiritsu.redact import redact
    from jiritsu.usecases import control

    loaded = _CONFIGS[datasette]
    if request.method == "POST":
        # asgi-csrf has checked the token when the request carries cookies; the route checks it
        # again so that a request without cookies (or with a bearer header) cannot slip by.
        form = dict(await request.post_vars())
        token = request.scope.get("csrftoken")
        if not token or form.get("csrftoken") != token():
            return Response.text("403 Forbidden: missing or wrong CSRF token\n", status=403)
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    user = (request.actor or {}).get("id")
    allowed = user in loaded.settings.dashboard.controllers()
    message, status, result = "", 200, None
    if request.method == "POST":
        if not allowed:
            return Response.text(
                f"403 Forbidden: {user or 'anonymous'} may not use the controls\n", status=403
            )
        form = {
            key: (form.get(key) or "").strip() for key in ("action", "bot", "reason", "confirm")
        }
        client = request.scope.get("client")
        requester = control.Requester(str(user), "dashboard", client[0] if client else None)
        if form["action"] not in control.ACTIONS:
            message, status = "choose halt, resume or flatten", 400
        elif form["action"] == "flatten" and form["confirm"] != FLATTEN_WORD:
            message, status = f"flatten not done: type {FLATTEN_WORD} to confirm", 400
        else:
            try:
                result = await asyncio.to_thread(_act, loaded, form, requester)
            except UsageError as exc:
                message, status = str(exc), 400
            except DatabaseUnavailable as exc:
                message, status = str(exc), 503
            except Exception as exc:  # shown to the operator, logged in full
                log.exception("dashboard %s failed", form["action"])
                message, status = redact(f"{form['action']} failed: {exc}"), 500
    try:
        states = await asyncio.to_thread(_states, loaded)
        state_html = _state_table(states)
    except DatabaseUnavailable as exc:
        state_html, status = f'<p class="jiritsu-error">{_esc(exc)}</p>', 503
    outcome = ""
    if result is not None:
        outcome = f'<div class="jiritsu-result"><p>{_esc(result.message)}</p>'
        outcome += f"{_report_table(result)}</div>"
    elif message:
        outcome = f'<p class="jiritsu-error">{_esc(message)}</p>'
    if allowed:
        buttons = _control_form(loaded, request.scope["csrftoken"]())
    else:
        buttons = f"<p>{_esc(user)} may look but not press: ask for <code>can_control</code>.</p>"
    body = f"""
<h1>Controls</h1>
<p>Halt stops new orders (open positions stay); resume lifts a halt; flatten halts, cancels every
open order and closes every position at market. Each press is recorded as an event with your
name and address and sent as an alert. <a href="/-/dashboards/intervention">Intervention page</a>
</p>
{outcome}
<h2>Halt state now</h2>
{state_html}
<h2>Act</h2>
{buttons}"""
    return await _page(datasette, request, "Controls", body, status)


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    routes: list[tuple[str, Any]] = [(r"^/$", _home), (rf"^{CSS_PATH}$", _css)]
    loaded = _CONFIGS.get(datasette)
    if loaded is not None:
        routes.append((rf"^{LOG_PATH}(\.json)?$", _log_tail))
        if loaded.settings.dashboard.controls_enabled:
            routes.append((rf"^{CONTROL_PATH}$", _control))
    return routes
