"""Slack messages of the rules: Block Kit ``blocks`` plus the plain-text fallback ``text``.

Limits (https://api.slack.com/reference/block-kit/blocks, https://api.slack.com/methods/chat.postMessage):
a section's text at most 3,000 characters, a field's 2,000, at most 10 fields, and
``text`` at most 40,000. Values from the payload are cut and escaped (``&``, ``<``, ``>``,
https://api.slack.com/reference/surfaces/formatting#escaping) before they go in, so a
100 KB traceback still gives valid blocks. Nothing here reads a secret: tenant-config
problems name fields, never values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hotglue_webhooks.display import escape_invisible
from hotglue_webhooks.redaction import redact_text
from hotglue_webhooks.rules.buy_orders import BuyOrderReport
from hotglue_webhooks.rules.model import IncidentMemberView, IncidentSnapshot, JobEvent, OpenAlert, Schedule

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
TEXT_LIMIT = 40_000
TRACEBACK_LINES = 10
"""How many first lines of a multi-line ``message`` the failure alert shows."""

NEVER_ARRIVED = (
    ":mag: The webhook for this failure never arrived: reconciliation found it in HotGlue's job list."
)
"""Added to the alert of a failure found by reconciliation (JobEvent.source ``reconciled``)."""

_VALUE_LIMIT = 200  # ids, names, timestamps: longer is noise, not information
_LINE_LIMIT = 1000  # the error line
_BULLET_LIMIT = 300
_TRACEBACK_HEADERS = (
    "Traceback (most recent call last)",
    "During handling of the above exception",
    "The above exception was the direct cause",
)


@dataclass(frozen=True)
class SlackMessage:
    """One ``chat.postMessage``: fallback ``text`` and Block Kit ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]

    def params(self, channel: str) -> dict[str, Any]:
        """Return the ``slack.post_message`` action params for ``channel``."""
        return {"channel": channel, "text": self.text, "blocks": self.blocks}


def failure_alert(
    event: JobEvent, *, buy_order_export: bool = False, report: BuyOrderReport | None = None
) -> SlackMessage:
    """Return the alert for a ``*_FAILED`` event.

    Carries tenant, flow, tap → target, job id, job name, status, when (``last_updated``),
    the telling line of ``message`` and its first :data:`TRACEBACK_LINES` lines. For a
    buy-order export it adds the buy-order count, or says it is unknown without a report.
    """
    status = _v(event.status)
    full_message = scrub(event.message or "")
    error = telling_line(full_message)
    text = (
        f":red_circle: {status} for tenant {_v(event.tenant)} on flow {_v(event.flow_id)} "
        f"({_connector(event)[1]}), job {_v(event.job_id)}"
    )
    text += f": {_v(error, _LINE_LIMIT)}" if error else "."
    if buy_order_export:
        text += f"\n{_buy_order_sentence(report)}"
    if event.reconciled:
        text += f"\n{NEVER_ARRIVED}"
    blocks = [
        _section(f":red_circle: *Job failed: {status}* for tenant *{_v(event.tenant)}*"),
        _job_fields(event),
        _section("*Error*\n" + (_code(error, SECTION_LIMIT - 10) if error else "HotGlue sent no message.")),
    ]
    if event.reconciled:
        blocks.insert(1, _context(NEVER_ARRIVED))
    lines = full_message.splitlines()
    if sum(1 for line in lines if line.strip()) > 1:
        shown = [line.rstrip()[:_BULLET_LIMIT] for line in lines[:TRACEBACK_LINES]]
        label = "*Traceback*"
        if len(lines) > TRACEBACK_LINES:
            label += f" (first {TRACEBACK_LINES} of {len(lines)} lines)"
        blocks.append(_section(label + "\n" + _code("\n".join(shown), SECTION_LIMIT - len(label) - 1)))
    if buy_order_export:
        blocks.extend(_buy_order_blocks(report))
    return _message(text, blocks)


def failure_repeat(event: JobEvent, count: int) -> SlackMessage:
    """Return the thread reply for the ``count``-th failure of an alert already in Slack."""
    error = telling_line(scrub(event.message or ""))
    when = _when(event.last_updated)
    text = f":repeat: Failed again ({_ordinal(count)} time): {_v(event.status)}, job {_v(event.job_id)} at {when}"
    text += f": {_v(error, _LINE_LIMIT)}" if error else "."
    return _message(text, [_section(escape(text))])


def repeat_count_update(alert: OpenAlert, count: int, event: JobEvent) -> SlackMessage:
    """Return the top-level alert as posted, with a line counting its repeats (``chat.update``)."""
    line = (
        f":repeat: Failed {count} times since {_when(alert.first_at.isoformat())}, "
        f"last at {_when(event.last_updated)} (job {_v(event.job_id)}). Details in the thread."
    )
    blocks = [dict(block) for block in alert.blocks if not _is_count_block(block)]
    blocks.append({**_context(line), "block_id": _COUNT_BLOCK_ID})
    base = alert.text.split("\n:repeat: ", 1)[0]
    return _message(f"{base}\n{line}", blocks)


SILENT_LISTED = 20
"""At most this many silent pairs are named in one message; the rest are counted."""


def pairs_silent(env_id: str | None, pairs: Sequence[Mapping[str, Any]]) -> SlackMessage:
    """Return the one message for every (tenant, flow) a reconciliation pass found silent.

    ``pairs``: ``[{"tenant", "flow_id", "why", "expected"}]`` (``expected``: ISO time of
    the run that should have come). Names the first :data:`SILENT_LISTED`, counts the rest.
    """
    count = len(pairs)
    head = (
        f":zzz: {count} tenant flow{'' if count == 1 else 's'} went silent in {_v(env_id)}: "
        "no finished job within 2 intervals of their rhythm (the webhooks and HotGlue's job list agree)."
    )
    lines = [
        f"tenant {_v(pair.get('tenant'))} on flow {_v(pair.get('flow_id'))}: {_v(pair.get('why'))}"
        + (f"; expected by {_when(pair.get('expected'))}" if pair.get("expected") else "")
        for pair in pairs[:SILENT_LISTED]
    ]
    if count > SILENT_LISTED:
        lines.append(f"… and {count - SILENT_LISTED} more (the tenants page lists them all)")
    text = head + "\n" + "\n".join(f"• {line}" for line in lines)
    blocks = [_section(escape(head)), _section(_fit(escape("\n".join(f"• {line}" for line in lines)), SECTION_LIMIT))]
    return _message(_fit(text, TEXT_LIMIT), blocks)


def pair_back(event: JobEvent, alert: OpenAlert) -> SlackMessage:
    """Return the thread reply saying a silent (tenant, flow) has a finished job again."""
    text = (
        f":white_check_mark: Back: tenant {_v(event.tenant)} on flow {_v(event.flow_id)} ended job "
        f"{_v(event.job_id)} with {_v(event.status)} at {_when(event.last_updated)}"
        f" (silent since {_when(alert.first_at.isoformat())})."
    )
    return _message(text, [_section(escape(text))])


def alert_resolved(event: JobEvent, alert: OpenAlert) -> SlackMessage:
    """Return the thread reply saying the tenant's flow ran successfully again."""
    times = "once" if alert.count == 1 else f"{alert.count} times"
    text = (
        f":white_check_mark: Resolved: job {_v(event.job_id)} of tenant {_v(event.tenant)} on flow "
        f"{_v(event.flow_id)} completed at {_when(event.last_updated)} (it had failed {times})."
    )
    return _message(text, [_section(escape(text))])


_COUNT_BLOCK_ID = "hotglue-webhooks-repeat-count"


def _is_count_block(block: Mapping[str, Any]) -> bool:
    return block.get("block_id") == _COUNT_BLOCK_ID


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def exact_token_401(
    event: JobEvent,
    line: str,
    turned_off: Sequence[tuple[str, str]],
    without_schedule: Sequence[str],
    not_turned_off: Sequence[tuple[str, str]],
) -> SlackMessage:
    """Return the message that the tenant's schedules were turned off because Exact refused its token.

    ``turned_off`` is ``(flow_id, expression)`` per schedule set to DISABLED,
    ``without_schedule`` the flows with nothing to turn off, ``not_turned_off``
    ``(flow_id, reason)`` for flows whose schedule could not be read.
    """
    tenant = _v(event.tenant)
    if turned_off:
        title = f"Schedules turned off for tenant {tenant}"
        text = (
            f":lock: {title}: Exact Online refused its refresh token. The customer must "
            f"reconnect Exact Online. Turned off: {', '.join(_v(f) for f, _ in turned_off)}."
        )
    else:
        title = f"Exact Online refused the refresh token of tenant {tenant}"
        text = f":lock: {title}; no schedule was turned off. The customer must reconnect Exact Online."
    blocks = [
        _section(
            f":lock: *{title}*\nExact Online answered `{_v(line, _LINE_LIMIT)}`: the tenant's "
            "refresh token is no longer valid. The customer must reconnect Exact Online; "
            "until then every job that talks to Exact fails."
        )
    ]
    parts = [
        ("*Turned off* (state DISABLED, expression kept)", [f"`{_v(f)}`: `{_v(e)}`" for f, e in turned_off]),
        ("*Without a schedule*", [f"`{_v(f)}`" for f in without_schedule]),
        ("*Not turned off*", [f"`{_v(f)}`: schedule unknown ({_v(why)})" for f, why in not_turned_off]),
    ]
    for header, items in parts:
        if items:
            blocks.append(_section(_bullets(header, items)))
    blocks.append(
        _context(
            f"{_v(event.status)} · flow {_v(event.flow_id)} · {_job_ref(event)} · {_when(event.last_updated)}"
        )
    )
    return _message(text, blocks)


def schedule_enabled(
    event: JobEvent,
    flow_id: str,
    expression: str,
    previous: Schedule | None,
    known: bool,
    why_unknown: str = "",
) -> SlackMessage:
    """Return the confirmation that the tenant's schedule of ``flow_id`` is ENABLED.

    ``previous`` is the schedule read before (None: the tenant had none); ``known`` False
    means it could not be read (``why_unknown``) and the default expression was written.
    """
    if not known:
        before = f"Its schedule could not be read ({_v(why_unknown)}), so the default expression was written."
    elif previous is None:
        before = "The tenant had no schedule for this flow; it was created with the default expression."
    elif not previous.schedule_expression:
        before = "The schedule had no expression; the default expression was written."
    elif (previous.state or "").upper() == "ENABLED":
        before = "It was already ENABLED."
    elif previous.state:
        before = f"It was {_v(previous.state)}."
    else:
        before = "Its previous state was not reported."
    head = f"for tenant {_v(event.tenant)} on flow {_v(flow_id)}"
    text = f":large_green_circle: Schedule enabled {head}: {_v(expression)}. {before}"
    blocks = [
        _section(
            f":large_green_circle: *Schedule enabled* for tenant *{_v(event.tenant)}* "
            f"on flow *{_v(flow_id)}*: `{_v(expression)}`\n{before}"
        ),
        _context(f"After {_full_sync_job(event)} finished at {_when(event.last_updated)}"),
    ]
    return _message(text, blocks)


def tenant_config_invalid(event: JobEvent, problems: Sequence[str]) -> SlackMessage:
    """Return the warning that the tenant config fails its schema; ``problems`` name fields only."""
    tenant = _v(event.tenant)
    text = f":warning: Invalid tenant config for tenant {tenant}: {_v('; '.join(problems), _LINE_LIMIT)}."
    blocks = [
        _section(
            f":warning: *Invalid tenant config* for tenant *{tenant}*\n"
            f"Checked after {_full_sync_job(event)} on flow {_v(event.flow_id)}. "
            "Fix these fields in the tenant's HotGlue config:"
        ),
        _section(_bullets("*Problems*", [_problem(p) for p in problems])),
    ]
    return _message(text, blocks)


def buy_order_report(event: JobEvent, report: BuyOrderReport) -> SlackMessage:
    """Return the message about failed buy orders of a finished export to Exact."""
    title = f"Export to Exact Online for tenant {_v(event.tenant)}"
    text = f":package: {title}: {_buy_order_sentence(report)}"
    blocks = [
        _section(f":package: *{title}*\n{_buy_order_sentence(report)}"),
        _job_fields(event),
        *_buy_order_blocks(report, with_count=False),
    ]
    return _message(text, blocks)


# --- a state-changing action that failed (issue 15) ------------------------------------
# The step texts below are plain (not escaped): they are stored with the planned report
# and escaped by action_failed when the report is posted.


def schedule_step(
    flow_id: str, state: str, previous: Schedule | None, known: bool
) -> tuple[str, str, str]:
    """Return (what, still true if it fails, done) for a schedule PUT to ``state`` of ``flow_id``.

    ``previous`` is the schedule read before the PUT (None: none), ``known`` whether it was read.
    """
    verb = "turn off" if state == "DISABLED" else "enable"
    if not known:
        still = f"the schedule of flow {flow_id} is as it was (it could not be read before)"
    elif previous is None:
        still = f"flow {flow_id} still has no schedule"
    elif previous.state:
        still = f"the schedule of flow {flow_id} is still {previous.state}"
    else:
        still = f"the schedule of flow {flow_id} is as it was (its state was not reported)"
    return f"{verb} the schedule of flow {flow_id}", still, f"the schedule of flow {flow_id} is {state}"


def link_step(target: str, flow_id: str) -> tuple[str, str, str]:
    """Return (what, still true if it fails, done) for linking ``target`` in ``flow_id``."""
    return (
        f"link {target} in flow {flow_id}",
        f"{target} is still not linked in flow {flow_id}",
        f"{target} is linked in flow {flow_id}",
    )


def start_job_step(job_name: str, flow_id: str) -> tuple[str, str, str]:
    """Return (what, still true if it fails, done) for starting ``job_name`` in ``flow_id``."""
    return (
        f"start job {job_name} in flow {flow_id}",
        f"flow {flow_id} has still not synced: no job of this receiver runs for it today",
        f"job {job_name} started in flow {flow_id}",
    )


def action_failed_title(rule: str, event: JobEvent) -> str:
    """Return the plain first line of the failure report of ``rule``'s actions for ``event``."""
    where = f"tenant {event.tenant or 'unknown'}, flow {event.flow_id or 'unknown'}"
    if rule == "exact_token_401":
        return (
            f"Exact Online refused the refresh token of {where}, and turning schedules off failed. "
            "The customer must still reconnect Exact Online"
        )
    return f"A step after job {event.job_id or 'unknown'} of {where} failed"


def action_failed(
    params: Mapping[str, Any],
    outcomes: Mapping[str, tuple[str, str | None]],
    event_id: int | None,
    public_url: str | None,
) -> dict[str, Any]:
    """Return the ``slack.post_message`` params of a planned ``slack.action_failed`` report.

    ``params`` are the report's (``channel``, ``title``, ``tenant``, ``flow_id``, ``steps``);
    ``outcomes[key]`` is each watched action's final (state, last error); ``params["buttons"]``
    (optional) are the Block Kit buttons the report carries (Replay). Failed (``dead``
    or ``skipped``) steps say what is still true and their last error; steps that worked
    are listed as done. The event is linked as ``{public_url}/events/{event_id}`` (the
    dashboard's event page) when ``public_url`` is set, else named by its id ("this
    event" when None: a preview).
    """
    steps: Sequence[Mapping[str, str]] = params.get("steps") or []
    failed, done = [], []
    for step in steps:
        state, error = outcomes.get(step["action_key"], ("unknown", None))
        if state in ("dead", "skipped"):
            failed.append((step, state, error or "no error recorded"))
        elif state in ("done", "dry_run"):
            done.append(step)
    title = escape(str(params.get("title") or "A state-changing action failed"))
    base = (public_url or "").rstrip("/")
    ref_text = f"event {event_id}" if event_id is not None else "this event"
    link = f"{base}/events/{event_id}" if base and event_id is not None else None
    ref = f"<{link}|{ref_text}>" if link else ref_text
    text = f":x: {title}."
    for step, state, error in failed:
        text += (
            f" Could not {escape(step['what'])} ({state}): {escape(step['still_true'])}. "
            f"Last error: {_v(error, _LINE_LIMIT)}."
        )
    if done:
        text += " Done: " + "; ".join(escape(step["done"]) for step in done) + "."
    text += f" See {link or ref_text}."
    items = [
        f"*Could not {escape(step['what'])}* ({state}): {escape(step['still_true'])}.\n"
        f"Last error: {_code(error, _LINE_LIMIT)}"
        for step, state, error in failed
    ]
    blocks = [_section(f":x: *{title}*"), _section(_bullets("*Still true*", items))]
    if done:
        blocks.append(_section(_bullets("*Done*", [escape(step["done"]) for step in done])))
    tenant, flow_id = params.get("tenant"), params.get("flow_id")
    blocks.append(_context(f"tenant {_v(tenant)} · flow {_v(flow_id)} · {ref}"))
    buttons = params.get("buttons")
    if isinstance(buttons, list) and buttons and failed:
        # Replay (rules/commands.py): only a report of something that failed offers it.
        blocks.append({"type": "actions", "block_id": "hgw_commands", "elements": [dict(b) for b in buttons]})
    message = _message(text, blocks)
    return {**message.params(str(params.get("channel"))), **({"pace": params["pace"]} if params.get("pace") else {})}


def telling_line(message: str | None) -> str | None:
    """Return the most telling line of HotGlue's ``message``: the last exception line of a traceback.

    That is the last non-empty, non-indented line that is not a traceback header
    (for chained exceptions, the final one); a one-line message is itself. None when empty.
    """
    lines = [line.rstrip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return None
    top = [line for line in lines if not line[0].isspace() and not line.startswith(_TRACEBACK_HEADERS)]
    return (top or lines)[-1].strip()


def scrub(text: str) -> str:
    """Return ``text`` with secret values redacted by the one rule set, :mod:`hotglue_webhooks.redaction`.

    HotGlue's ``message`` is free text: a connector that prints a config or a URL can leak
    a credential there (REFERENCE §4). It was redacted when stored; this is the same rule
    set again (a no-op on redacted text) for texts that did not pass through ingest.
    """
    return redact_text(text)


def escape(text: str) -> str:
    """Return ``text`` with Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- pieces ------------------------------------------------------------------------------


def _buy_order_sentence(report: BuyOrderReport | None) -> str:
    if report is None:
        return "Number of failed buy orders unknown: the export left no report."
    noun = "buy order" if report.orders == 1 else "buy orders"
    sentence = f"{report.failed} of {report.orders} {noun} failed"
    if report.extra_errors:
        errors = "error" if report.extra_errors == 1 else "errors"
        sentence += f", plus {report.extra_errors} {errors} not tied to a buy order"
    return sentence + "."


def _buy_order_blocks(report: BuyOrderReport | None, with_count: bool = True) -> list[dict[str, Any]]:
    blocks = []
    if with_count:
        blocks.append(_section(f"*Buy orders*\n{_buy_order_sentence(report)}"))
    if report is not None and report.errors:
        items = []
        for group in report.errors:
            error = f"`{_v(scrub(group.text), _BULLET_LIMIT)}`" if group.text else "(no error text)"
            item = f"{group.count}× {error}"
            if group.ids:
                item += " (ids: " + ", ".join(f"`{_v(i)}`" for i in group.ids[:10])
                item += f" and {len(group.ids) - 10} more)" if len(group.ids) > 10 else ")"
            items.append(item)
        blocks.append(_section(_bullets("*Errors*", items)))
    if report is not None:
        blocks.append(_context(f"Report read from the payload's `{_v(report.found_at)}`."))
    return blocks


def _problem(problem: str) -> str:
    """Return ``path: what`` as ```path`: what``; a problem without a path as is."""
    path, sep, what = problem.partition(": ")
    return f"`{_v(path, _BULLET_LIMIT)}`: {_v(what, _BULLET_LIMIT)}" if sep else _v(problem, _BULLET_LIMIT)


def _job_fields(event: JobEvent) -> dict[str, Any]:
    label, connector = _connector(event)
    fields = [
        ("Tenant", _v(event.tenant)),
        ("Flow", _v(event.flow_id)),
        (label, connector),
        ("Job id", _v(event.job_id)),
        ("Job name", _v(event.job_name)),
        ("Status", _v(event.status)),
        ("When", _when(event.last_updated)),
    ]
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _fit(f"*{name}*\n{value}", FIELD_LIMIT)} for name, value in fields
        ],
    }


def _connector(event: JobEvent) -> tuple[str, str]:
    """Return the label and value naming the job's connectors: V1 tap → target, V2 connector_id."""
    if event.tap or event.target or not event.connector_id:
        return "Tap → target", f"{_v(event.tap)} → {_v(event.target)}"
    return "Connector", f"{_v(event.connector_id)} ({_v(event.job_type)})"


def _full_sync_job(event: JobEvent) -> str:
    """Return "the full_sync job ID (`NAME`)", saying why an incremental job counts as a full sync."""
    phrase = f"the {_v(event.sync_type)} {_job_ref(event)}"
    if event.sync_type in ("auto_sync", "full_sync"):
        return phrase
    return phrase + ", named as a full sync,"


def _job_ref(event: JobEvent) -> str:
    return f"job {_v(event.job_id)} (`{_v(event.job_name)}`)"


def _when(value: str | None) -> str:
    """Return an ISO-8601 timestamp as ``YYYY-MM-DD HH:MM:SS UTC``; unparseable text as is."""
    if not value:
        return "unknown"
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # HotGlue's timestamps are UTC (REFERENCE §2)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError):
        return _v(value)


def _v(value: str | None, limit: int = _VALUE_LIMIT) -> str:
    """Return a payload value cut to ``limit`` characters and escaped (Slack's three control
    characters; invisible and bidi characters as ``\\uXXXX``); "unknown" when absent."""
    if value is None or value == "":
        return "unknown"
    value = escape_invisible(value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return escape(value)


def _fit(text: str, limit: int) -> str:
    """Cut already-escaped ``text`` to ``limit`` characters, never inside an ``&…;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _code(raw: str, limit: int) -> str:
    """Return ``raw`` as a code block of at most ``limit`` characters."""
    inner = escape(raw.replace("```", "'''"))
    return "```" + _fit(inner, limit - 6) + "```"


def _bullets(header: str, items: Sequence[str]) -> str:
    """Return ``header`` and one bullet per item, as many as fit in a section, then "…and N more"."""
    text = header
    for i, item in enumerate(items):
        line = f"\n• {item}"
        after = len(items) - i - 1
        reserve = len(f"\n…and {after} more") if after else 0
        if len(text) + len(line) + reserve > SECTION_LIMIT:
            return text + f"\n…and {len(items) - i} more"
        text += line
    return text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(text, SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _fit(text, SECTION_LIMIT)}]}


def _message(text: str, blocks: list[dict[str, Any]]) -> SlackMessage:
    return SlackMessage(text=_fit(text, TEXT_LIMIT), blocks=blocks)


def blocks_text(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return every text of ``blocks`` (section texts, fields, context elements), for checks."""
    texts: list[str] = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields", ()))
        texts.extend(e["text"] for e in block.get("elements", ()))
    return texts


# --- incidents, snoozes, the daily digest -----------------------------------------------------


def tenant_link(tenant: str, public_url: str | None) -> str:
    """Return the tenant as a Slack link to its dashboard page (``{HGW_PUBLIC_URL}/tenants/<id>``),
    or its escaped id without a public URL."""
    shown = _v(tenant)
    if not public_url:
        return shown
    return f"<{public_url.rstrip('/')}/tenants/{quote(tenant, safe='')}|{shown}>"


def message_link(channel: str, ts: str) -> str:
    """Return a link to a Slack message: ``https://slack.com/archives/{channel}/p{ts without the dot}``
    (Slack's message permalink form; slack.com forwards a signed-in member to the workspace)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def duration(seconds: float) -> str:
    """Return a duration as ``2 h 5 min``, ``12 min`` or ``40 s``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def incident_message(incident: IncidentSnapshot) -> SlackMessage:
    """Return the incident's top-level message (posted once, then ``chat.update``-d in place).

    Says what failed (stage, connector, the telling line), how many tenants, the first
    tenants by id, since when, how many recovered; *resolved* with its duration once every
    tenant's flow finished a job again, or *closed* when it expired idle.
    """
    n, r = incident.tenants, incident.recovered
    noun = "tenant" if n == 1 else "tenants"
    what = f"{_v(incident.stage)} on {_v(incident.connector)}"
    since = _when(incident.first_seen_at.isoformat())
    if incident.state == "resolved" and incident.resolved_at is not None:
        took = duration((incident.resolved_at - incident.first_seen_at).total_seconds())
        head = f":white_check_mark: *Resolved* after {took}: {what} for {n} {noun}, since {since}; all recovered."
    elif incident.state == "expired":
        head = (
            f":grey_question: *Closed*: {what} for {n} {noun} since {since}; {r} recovered, no new failure for "
            f"{duration(incident.expire_minutes * 60)}."
        )
    else:
        head = f":rotating_light: *Incident*: {what} is failing for {n} {noun} since {since}."
        if r:
            head += f" {r} of {n} recovered."
    first = ", ".join(_v(t) for t in incident.listed)
    more = n - len(incident.listed)
    tenants_line = f"*Tenants*: {first}" + (f" and {more} more" if more > 0 else "") + " (all in the thread)"
    error = incident.error_line or "HotGlue sent no message."
    blocks = [
        _section(head),
        _section("*Error*\n" + _code(error, SECTION_LIMIT - 10)),
        _section(_fit(tenants_line, SECTION_LIMIT)),
        _context(
            f"signature `{incident.signature}` · snooze it: `hotglue-webhooks snooze signature {incident.signature} --for 2h`"
        ),
    ]
    if incident.snoozed is not None:
        by, until = incident.snoozed
        blocks.append(_context(
            f":zzz: Snoozed by {_v(by, 80)} until {until:%Y-%m-%d %H:%M} UTC: new alerts with this signature are held"
        ))
    text = head.replace("*", "") + f" {_v(error, _LINE_LIMIT)}"
    return _message(text, blocks)


def incident_members(
    members: Sequence[IncidentMemberView], public_url: str | None, start: int, total: int
) -> SlackMessage:
    """Return one thread reply naming ``members`` (numbered from ``start``, of ``total`` so
    far), each linked to its dashboard page; one with its own alert links to it instead of
    being alerted again. Packed into as many sections as Slack's 3,000 characters need."""
    end = start + len(members) - 1
    head = f"Tenants {start}–{end} of {total} in this incident:" if len(members) > 1 else f"Tenant {start} of {total} in this incident:"
    lines = []
    for member in members:
        line = f"• {tenant_link(member.tenant, public_url)} on flow {_v(member.flow_id)}"
        if member.own_channel and member.own_ts:
            line += f" (<{message_link(member.own_channel, member.own_ts)}|its own alert>)"
        lines.append(line)
    blocks = [_section(escape(head))]
    chunk = ""
    for line in lines:
        if len(chunk) + len(line) + 1 > SECTION_LIMIT:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(_section(chunk))
    text = head + " " + ", ".join(_v(m.tenant) for m in members)
    return _message(text, blocks)


def snooze_summary(snooze: Mapping[str, Any], summary: Mapping[str, Any], public_url: str | None) -> SlackMessage:
    """Return the one message posted when a snooze ends: what it held and what happened meanwhile.

    ``snooze``: ``{"id", "scope", "target", "by", "reason", "created_at", "until", "held"}``;
    ``summary``: ``{"failures", "completed", "tenant_count", "tenants": [...], "statuses": {status: n}}``.
    """
    scope, target = str(snooze.get("scope")), str(snooze.get("target"))
    whom = f"tenant {tenant_link(target, public_url)}" if scope == "tenant" else f"signature `{_v(target)}`"
    took = _when(str(snooze.get("created_at"))) + " – " + _when(str(snooze.get("until")))
    held = int(snooze.get("held") or 0)
    head = f":alarm_clock: Snooze of {whom} by {_v(str(snooze.get('by')))} ended ({took})."
    lines = [f"{held} Slack alert{'' if held == 1 else 's'} held."]
    failures, completed = int(summary.get("failures") or 0), int(summary.get("completed") or 0)
    statuses = summary.get("statuses") or {}
    if failures:
        by_status = ", ".join(f"{count}× {_v(str(status))}" for status, count in sorted(statuses.items()))
        lines.append(f"{failures} failure{'' if failures == 1 else 's'} meanwhile ({by_status}).")
    else:
        lines.append("No failure meanwhile.")
    if completed:
        lines.append(f"{completed} job{'' if completed == 1 else 's'} completed.")
    tenants = [str(t) for t in summary.get("tenants") or []]
    count = int(summary.get("tenant_count") or len(tenants))
    if scope == "signature" and count:
        shown = ", ".join(tenant_link(t, public_url) for t in tenants)
        lines.append(f"Tenants: {shown}" + (f" and {count - len(tenants)} more" if count > len(tenants) else "") + ".")
    if snooze.get("reason"):
        lines.append(f"Reason given: {_v(str(snooze.get('reason')), _LINE_LIMIT)}")
    body = "\n".join(lines)
    return _message(f"{head}\n{body}".replace("*", ""), [_section(head), _section(_fit(body, SECTION_LIMIT))])


def daily_digest(day: str, digest: Mapping[str, Any], public_url: str | None, listed: int) -> SlackMessage:
    """Return the daily digest of ``day`` (UTC ``YYYY-MM-DD``) for one channel.

    ``digest``: ``{"failures": int, "incidents": [{"group" (its signature), "what", "tenants"}],
    "tenants": [{"tenant", "failures"}], "still_failing": [tenant], "dead_actions": int,
    "dead_by_kind": {kind: n}, "waiting": [{"tenant", "why"}]}``. Each list shows at most
    ``listed`` entries; the rest are counted and linked to the dashboard page that lists them.
    """
    base = (public_url or "").rstrip("/")

    def more(count: int, path: str, what: str) -> str:
        if count <= 0:
            return ""
        link = f"<{base}{path}|{count} more {what}>" if base else f"{count} more {what} (see the dashboard {path})"
        return f"\n…and {link}"

    def listing(header: str, items: Sequence[str], path: str, what: str, separator: str = "\n• ") -> dict[str, Any]:
        """``header`` and at most ``listed`` items, as many as fit in one section; the rest counted and linked."""
        text, shown = header, 0
        for item in items[:listed]:
            piece = (separator if shown or separator.startswith("\n") else "") + item
            reserve = len(more(len(items) - shown - 1, path, what)) + 1
            if len(text) + len(piece) + reserve > SECTION_LIMIT:
                break
            text += piece
            shown += 1
        return _section(text + more(len(items) - shown, path, what))

    failures = int(digest.get("failures") or 0)
    head = f":spiral_calendar_pad: Daily digest for {day} (UTC): {failures} failure{'s' if failures != 1 else ''}."
    sections = [_section(head)]
    incidents = list(digest.get("incidents") or [])
    if incidents:
        lines = [f"{_v(str(i.get('what')))}: {int(i.get('tenants') or 0)} tenants (`{_v(str(i.get('group')))}`)" for i in incidents]
        sections.append(listing("*Incidents*", lines, "/incidents", "incidents"))
    tenants = list(digest.get("tenants") or [])
    if tenants:
        lines = [f"{tenant_link(str(t.get('tenant')), public_url)}: {int(t.get('failures') or 0)}" for t in tenants]
        sections.append(listing("*Failures by tenant*", lines, "/tenants?sort=failures", "tenants"))
    still = [str(t) for t in digest.get("still_failing") or []]
    if still:
        links = [tenant_link(t, public_url) for t in still]
        sections.append(listing(f"*Still failing* ({len(still)})\n", links, "/tenants?sort=failures", "tenants", ", "))
    dead = int(digest.get("dead_actions") or 0)
    if dead:
        kinds = ", ".join(f"{n}× {_v(str(k))}" for k, n in sorted((digest.get("dead_by_kind") or {}).items()))
        link = f"<{base}/dead|the dead actions page>" if base else "the dead actions page (/dead)"
        sections.append(_section(_fit(f"*Dead actions*: {dead} ({kinds}); replay them from {link}.", SECTION_LIMIT)))
    waiting = list(digest.get("waiting") or [])
    if waiting:
        lines = [f"{tenant_link(str(w.get('tenant')), public_url)}: {_v(str(w.get('why')))}" for w in waiting]
        sections.append(listing("*Waiting for a human*", lines, "/tenants", "tenants"))
    if len(sections) == 1:
        sections.append(_section("Nothing failed, nothing is dead, nobody is waiting."))
    text = head + f" {len(still)} still failing, {dead} dead actions, {len(waiting)} waiting for a human."
    return _message(text, sections)
