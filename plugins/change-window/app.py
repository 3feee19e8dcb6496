"""change-window: a bluegreen pre-deploy plugin in Python. It blocks deploys
inside freeze windows and says when the window ends.

Settings:
  windows   freeze windows, separated by `;`, each `DAY HH:MM - DAY HH:MM`
            (weekdays mon..sun; a window may wrap the week, e.g.
            `fri 16:00 - mon 08:00`)
  timezone  an IANA name (`Europe/Berlin`: grant the tz database read-only,
            `grant_dirs: [/usr/share/zoneinfo]`) or an offset (`+02:00`);
            default UTC
  now       an ISO-8601 time to judge instead of the clock (dry runs, tests)
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEK = 7 * 24 * 60


def setting(deploy, key, default=None):
    for k, v in deploy.settings:
        if k == key:
            return v
    return default


def minute_of_week(spec):
    """`fri 16:00` -> minutes since Monday 00:00."""
    parts = spec.split()
    if len(parts) != 2 or parts[0][:3].lower() not in DAYS:
        raise ValueError(f"`{spec}`: expected a weekday and a time, like `fri 16:00`")
    hours, _, minutes = parts[1].partition(":")
    h, m = int(hours), int(minutes or 0)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"`{spec}`: {parts[1]} is not a time of day")
    return DAYS.index(parts[0][:3].lower()) * 24 * 60 + h * 60 + m


def parse_windows(text):
    windows = []
    for raw in filter(None, (w.strip() for w in text.split(";"))):
        start, sep, end = raw.partition(" - ")
        if not sep:
            raise ValueError(f"`{raw}`: expected `DAY HH:MM - DAY HH:MM`")
        windows.append((raw, minute_of_week(start), minute_of_week(end)))
    return windows


def zone(name):
    if name in (None, "", "UTC", "utc"):
        return timezone.utc
    if name[0] in "+-":
        sign = 1 if name[0] == "+" else -1
        hours, _, minutes = name[1:].partition(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    try:
        return ZoneInfo(name)
    except Exception:
        raise ValueError(
            f"time zone `{name}` not found: grant the tz database "
            "(`grant_dirs: [/usr/share/zoneinfo]`) or use an offset like `+01:00`"
        )


def minutes_until_end(now_minute, start, end):
    """Minutes left in the window, or None when `now_minute` is outside it."""
    length = (end - start) % WEEK
    into = (now_minute - start) % WEEK
    return length - into if into < length else None


class PreDeploy(exports.PreDeploy):
    def handle(self, d: types.Deploy) -> types.Outcome:
        try:
            windows = parse_windows(setting(d, "windows", ""))
            tz = zone(setting(d, "timezone"))
            fixed = setting(d, "now")
            now = datetime.fromisoformat(fixed) if fixed else datetime.now(timezone.utc)
            if now.tzinfo is None:
                now = now.replace(tzinfo=timezone.utc)
        except Exception as e:  # a bad setting is the plugin's error, not a veto
            raise Err(f"change-window settings: {e}")
        local = now.astimezone(tz)
        minute = local.weekday() * 24 * 60 + local.hour * 60 + local.minute
        for raw, start, end in windows:
            left = minutes_until_end(minute, start, end)
            if left is not None:
                ends = (local + timedelta(minutes=left)).replace(second=0, microsecond=0)
                when = ends.strftime("%a %Y-%m-%d %H:%M %Z").strip()
                hours, mins = divmod(left, 60)
                return types.Outcome(
                    verdict=types.Verdict_Block(
                        f"deploys are frozen ({raw}, {tz}) until {when} (in {hours}h {mins:02d}m)"
                    ),
                    findings=[],
                )
        return types.Outcome(
            verdict=types.Verdict_Proceed(),
            findings=[
                types.Finding(
                    severity=types.Severity.INFO,
                    rule="change-window-open",
                    message=f"no freeze window at {local.strftime('%a %H:%M %Z')}",
                    file=None,
                    line=None,
                    fix=None,
                )
            ],
        )
