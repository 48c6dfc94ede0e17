"""``shieldwall`` — every command has ``--help``; every listing command has ``--json``."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from shieldwall import __version__
from shieldwall.cli.operator import operator_from, operator_options
from shieldwall.cli.table import table as _table
from shieldwall.config.schema import parse_duration
from shieldwall.errors import ConfigError, ShieldwallError, os_reason
from shieldwall.obs import setup_logging, tune_gc


def _fail(exc: ShieldwallError) -> click.ClickException:
    return click.ClickException(str(exc))


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value, "", "--duration")
    except ShieldwallError as exc:
        raise click.BadParameter(str(exc)) from exc


class LazyGroup(click.Group):
    """A group whose subcommands in ``lazy`` (name → "module:attribute") are imported when
    used: ``shieldwall agent`` and ``shieldwall council`` start without loading the drill,
    the rules tools or the list files (50 agents start on 2 cores)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = where.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(
    cls=LazyGroup,
    lazy={"drill": "shieldwall.cli.drill:drill", "rules": "shieldwall.cli.rules:rules"},
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="shieldwall")
def cli() -> None:
    """shieldwall — collective defense for servers: an attack on one member is an attack on all."""


# -- council and agent -----------------------------------------------------------------


_F = TypeVar("_F", bound=Callable[..., Any])


def _config_option(help_text: str) -> Callable[[_F], _F]:
    return click.option(
        "--config", "config_path", required=True, type=click.Path(dir_okay=False), help=help_text
    )


_log_level = click.option(
    "--log-level", default="info", show_default=True, help="debug, info, warning or error."
)


@cli.group(invoke_without_command=True)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Council config (TOML)."
)
@_log_level
@click.pass_context
def council(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """Run the council (embedded default: one SQLite file, no other service).

    `shieldwall council key --config council.toml` prints the council's public key, which
    members pin as council-key."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("Missing option '--config'.")
    from shieldwall.clock import SystemClock
    from shieldwall.config.load import load_council
    from shieldwall.council.api import create_app
    from shieldwall.council.auth import load_or_create_key, load_or_create_token
    from shieldwall.council.fanout import open_fanout
    from shieldwall.council.run import exposure_warning, serve
    from shieldwall.council.service import CouncilService
    from shieldwall.council.store import open_store
    from shieldwall.lockfile import DirLock
    from shieldwall.wire.signing import public_from_private

    setup_logging(log_level)
    try:
        cfg = load_council(config_path)
        lock = DirLock(cfg.data_dir, "council", cfg.origin, "data-dir")  # held while it runs
        _refuse_a_lost_database(cfg)
        store = open_store(cfg.store_url, cfg.origin)
        fanout = open_fanout(cfg.fanout, cfg.origin)
        token = _secret(cfg, load_or_create_token)
        private, created = _secret(cfg, load_or_create_key)
        service = CouncilService(
            store,
            cfg.treaty,
            SystemClock(),
            replay_window=cfg.replay_window,
            fanout=fanout,
            council_key=private,
        )
        app = create_app(service, token)
        if (warning := exposure_warning(cfg)) is not None:
            click.echo(warning, err=True)
            logging.getLogger("shieldwall.council").warning("council.exposed %s", warning)
        click.echo(
            f"council {'key made' if created else 'key'} (members' council-key): "
            f"{public_from_private(private)}",
            err=True,
        )
        click.echo(f"council listening on {cfg.url} (data in {cfg.data_dir})", err=True)
        tune_gc()
        serve(app, cfg)
        lock.close()
    except ShieldwallError as exc:
        raise _fail(exc) from exc


def _refuse_a_lost_database(cfg: Any) -> None:
    """An alliance's data-dir whose council.db is gone or empty would start as a new
    alliance in silence (no members, no decisions): refuse, and say what to do."""
    from shieldwall.council.auth import KEY_FILE

    url = cfg.store_url
    if not url.startswith("sqlite://") or not Path(cfg.data_dir, KEY_FILE).exists():
        return
    db = Path(url.removeprefix("sqlite://"))
    if str(db) == ":memory:" or (db.exists() and db.stat().st_size > 0):
        return
    raise ConfigError(
        cfg.origin,
        "store",
        f"{db} is {'empty' if db.exists() else 'missing'}, but {cfg.data_dir} held an "
        f"alliance ({KEY_FILE} is there): restore the database from a backup; to start a "
        f"new alliance on purpose, move {KEY_FILE} and operator.token away first",
    )


@council.command("key")
@_config_option("Council config (TOML).")
def council_key(config_path: str) -> None:
    """Print the council's public key (made now if the council never ran): what members
    pin as council-key in agent.toml."""
    from shieldwall.config.load import load_council
    from shieldwall.council.auth import load_or_create_key
    from shieldwall.wire.signing import public_from_private

    try:
        cfg = load_council(config_path)
        private, _ = _secret(cfg, load_or_create_key)
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    click.echo(public_from_private(private))


_S = TypeVar("_S")


def _secret(cfg: Any, load: Callable[[str], _S]) -> _S:
    """A secret of the data-dir, or a ConfigError naming it when it cannot be read or made."""
    try:
        return load(cfg.data_dir)
    except OSError as exc:
        where = exc.filename or cfg.data_dir
        raise ConfigError(cfg.origin, "data-dir", f"{where}: {os_reason(exc)}") from exc


@cli.group(invoke_without_command=True)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Agent config (TOML)."
)
@_log_level
@click.pass_context
def agent(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """Run a member's agent: tail logs, ban locally, report, enforce the alliance's decisions.

    `shieldwall agent unban ADDRESS --config agent.toml` lifts this member's own ban."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("Missing option '--config'.")
    from shieldwall.agent.run import run_agent
    from shieldwall.config.load import load_agent

    setup_logging(log_level)
    try:
        cfg = load_agent(config_path)
        tune_gc()
        run_agent(cfg)
    except ShieldwallError as exc:
        raise _fail(exc) from exc


@cli.command()
@_config_option("Agent config (TOML).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(config_path: str, as_json: bool) -> None:
    """Show an agent: whether it runs and follows its council, what it reads, its counters,
    and what it blocks (council decisions and local bans)."""
    from datetime import UTC, datetime

    from shieldwall.agent.state import AgentState
    from shieldwall.config.load import load_agent
    from shieldwall.lockfile import holder
    from shieldwall.model import scope_str

    try:
        cfg = load_agent(config_path)
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    if not Path(cfg.state_dir, "agent.db").exists():
        raise click.ClickException(
            f"{cfg.state_dir}: no agent state yet (the agent has never run with this config)"
        )
    state = AgentState(cfg.state_dir)
    try:
        running = holder(cfg.state_dir)
        seq, claims = state.view()
        now = datetime.now(UTC)
        health = state.health()
        local = state.local_bans(now)
        counters = state.counters()
        positions = {w.key: state.position(w.key) for w in cfg.watch}
        outbox = state.outbox_size()
    finally:
        state.close()
    stream = health.get("stream")
    blocks: list[dict[str, Any]] = [
        {"scope": scope_str(scope), "until": datetime.fromtimestamp(exp, UTC).isoformat(),
         "by": "council", "decision": did}
        for did, scope, exp in claims
        if exp > now.timestamp()
    ] + [
        {"scope": scope_str(scope), "until": until.isoformat(), "by": "local", "decision": None}
        for scope, until in local.items()
    ]  # fmt: skip
    watches = {w.key: health.get(f"watch:{w.key}", ("not read yet", now))[0] for w in cfg.watch}
    out: dict[str, Any] = {
        "member": cfg.member,
        "running": running is not None,
        "process": running,
        "council": cfg.council,
        "stream": None if stream is None else {"state": stream[0], "since": stream[1].isoformat()},
        "watches": watches,
        "seq": seq,
        "decisions": sum(1 for b in blocks if b["by"] == "council"),
        "local_bans": len(local),
        "outbox": outbox,
        "counters": counters,
        "positions": positions,
        "blocks": blocks,
    }
    if as_json:
        click.echo(json.dumps(out, sort_keys=True))
        return
    click.echo(f"agent {cfg.member}: " + (f"running ({running})" if running else "NOT running"))
    if stream is None:
        click.echo(f"council {cfg.council}: never connected")
    else:
        click.echo(f"council {cfg.council}: {stream[0]} since {stream[1]:%Y-%m-%d %H:%M:%S}Z")
    for key, what in watches.items():
        click.echo(f"watch {key}: {what}")
    click.echo(
        f"blocks {len(blocks)}: {out['decisions']} council decisions (seq {seq}), "
        f"{len(local)} local bans; {outbox} reports waiting to be sent"
    )
    if counters:
        click.echo(_table([[name, f"{n:,}"] for name, n in sorted(counters.items())],
                          ["COUNTER", "VALUE"]))  # fmt: skip
    if blocks:
        shown = sorted(blocks, key=lambda b: b["until"])[:SHOWN_BLOCKS]
        click.echo(_table([[b["scope"], b["until"][:19], b["by"]] for b in shown],
                          ["BLOCKED", "UNTIL", "BY"]))  # fmt: skip
        if len(blocks) > SHOWN_BLOCKS:
            click.echo(f"… and {len(blocks) - SHOWN_BLOCKS:,} more (--json lists them all)")


SHOWN_BLOCKS = 50


@agent.command("unban")
@click.argument("scope")
@_config_option("Agent config (TOML).")
def agent_unban(scope: str, config_path: str) -> None:
    """Lift this member's own ban on SCOPE (an address or network) at once: the running
    agent drops it from its enforcers. A council decision is lifted at the council
    (shieldwall unban), for every member."""
    from datetime import UTC, datetime

    from shieldwall.agent.control import ask
    from shieldwall.agent.state import AgentState
    from shieldwall.config.load import load_agent
    from shieldwall.errors import InvalidScope
    from shieldwall.model import parse_scope, scope_str

    try:
        cfg = load_agent(config_path)
        target = parse_scope(scope)
    except InvalidScope as exc:
        raise click.BadParameter(str(exc), param_hint="SCOPE") from exc
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    answer = ask(cfg.state_dir, {"op": "unban", "scope": scope_str(target)})
    if answer is None:  # not running: its database, which it enforces when it starts
        if not Path(cfg.state_dir, "agent.db").exists():
            raise click.ClickException(f"{cfg.state_dir}: no agent state (never ran)")
        state = AgentState(cfg.state_dir)
        try:
            held = scope_str(target) in {scope_str(s) for s in state.local_bans(datetime.now(UTC))}
            state.drop_local_ban(target)
        finally:
            state.close()
        what = "its local ban on {} was removed" if held else "it holds no local ban on {}"
        click.echo(
            f"the agent is not running: {what.format(scope_str(target))} (its enforcers are "
            "set from its state when it starts)"
        )
        return
    if "error" in answer:
        raise click.ClickException(f"the agent refused: {answer['error']}")
    lifted = int(answer.get("lifted", 0))
    click.echo(
        f"lifted {lifted} local ban(s) on {scope_str(target)}"
        if lifted
        else f"no local ban on {scope_str(target)}"
    )
    if answer.get("council"):
        click.echo(
            "a council decision blocks it too: lift it with `shieldwall unban "
            f"{scope_str(target)}` at the council (for every member)"
        )


@cli.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the private key here (mode 0600); the public key is printed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {private_key?, public_key}.")
def keygen(out: str | None, as_json: bool) -> None:
    """Make a member's Ed25519 key pair."""
    from shieldwall.wire.signing import generate

    private, public = generate()
    if out:
        if Path(out).exists():
            raise click.ClickException(f"{out} exists; refusing to overwrite a key")
        try:
            if not Path(out).parent.exists():  # made for keys: only its owner may enter
                Path(out).parent.mkdir(mode=0o700, parents=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            where = exc.filename or out
            raise click.ClickException(
                f"cannot write the key to {out}: {where}: {os_reason(exc)}"
            ) from exc
        with os.fdopen(fd, "w") as f:
            f.write(private + "\n")
    if as_json:
        click.echo(json.dumps({"public_key": public} | ({} if out else {"private_key": private})))
    elif out:
        click.echo(public)
    else:
        click.echo(f"private key: {private}\npublic key:  {public}")


# -- members -----------------------------------------------------------------------------


@cli.group()
def members() -> None:
    """Enroll, list, rekey and revoke alliance members."""


@members.command("add")
@click.argument("name")
@click.option("--public-key", required=True, help="The member's public key (shieldwall keygen).")
@click.option(
    "--address",
    "addresses",
    multiple=True,
    help="The member's own address or CIDR (repeatable); never decided against.",
)
@click.option(
    "--trust",
    type=click.Choice(["trusted", "member", "probation"]),
    default="member",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
@operator_options
def members_add(
    name: str, public_key: str, addresses: tuple[str, ...], trust: str, as_json: bool, **conn: Any
) -> None:
    """Enroll member NAME with its public key."""
    op = operator_from(**conn)
    status_code, body = op.call(
        "POST",
        "/v1/members",
        {"name": name, "public_key": public_key, "addresses": list(addresses), "trust": trust},
    )
    if status_code != 201:
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    click.echo(json.dumps(body) if as_json else f"enrolled {name} ({trust})")


@members.command("list")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def members_list(as_json: bool, **conn: Any) -> None:
    """List members."""
    _, body = operator_from(**conn).call("GET", "/v1/members")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [
        [
            m["name"],
            m["trust"],
            ",".join(m["addresses"]) or "-",
            "revoked" if m["revoked_at"] else "active",
            m["created"][:19],
        ]
        for m in body
    ]
    click.echo(_table(rows, ["NAME", "TRUST", "ADDRESSES", "STATE", "ENROLLED"]))


@members.command("revoke")
@click.argument("name")
@operator_options
def members_revoke(name: str, **conn: Any) -> None:
    """Revoke member NAME: its reports and reads are refused from now on, and its open
    streams end. The name may be enrolled again later, with a new key."""
    status_code, body = operator_from(**conn).call("POST", f"/v1/members/{name}/revoke")
    if status_code != 200:
        raise click.ClickException(f"{body.get('detail', body)}")
    click.echo(f"revoked {name}")


@members.command("rekey")
@click.argument("name")
@click.option("--public-key", required=True, help="The member's new public key (keygen).")
@operator_options
def members_rekey(name: str, public_key: str, **conn: Any) -> None:
    """Give member NAME a new public key: the old one is refused from now on (its open
    streams end); decisions, trust and addresses stay."""
    status_code, body = operator_from(**conn).call(
        "POST", f"/v1/members/{name}/rekey", {"public_key": public_key}
    )
    if status_code != 200:
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    click.echo(f"rekeyed {name}")


@members.command("flags")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def members_flags(as_json: bool, **conn: Any) -> None:
    """List members the treaty flagged (blast-radius cap reached, too many concerns)."""
    _, body = operator_from(**conn).call("GET", "/v1/flags")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [[f["at"][:19], f["member"], f["clause"], f["reason"][:70]] for f in body]
    click.echo(_table(rows, ["AT", "MEMBER", "CLAUSE", "REASON"]))


# -- decisions ---------------------------------------------------------------------------


@cli.command()
@click.argument("scope")
@click.option("--duration", help="How long, e.g. 30m, 4h, 7d (default: the treaty's).")
@click.option("--reason", default="operator ban", show_default=True)
@click.option("--force", is_flag=True, help="Override the protected-target check.")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def ban(
    scope: str, duration: str | None, reason: str, force: bool, as_json: bool, **conn: Any
) -> None:
    """Ban IP or CIDR alliance-wide."""
    payload: dict[str, Any] = {"scope": scope, "reason": reason, "force": force}
    if duration:
        payload["duration"] = _duration(duration)
    status_code, body = operator_from(**conn).call("POST", "/v1/decisions", payload)
    if status_code == 403:
        raise click.ClickException(f"refused: {body['reason']} (use --force to override)")
    if status_code not in (200, 201):
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    if as_json:
        click.echo(json.dumps(body))
    elif body["outcome"] == "unchanged":
        click.echo(f"{body['scope']} is already banned until {body['expires']} (id {body['id']})")
    else:
        verb = "extended the ban on" if body["outcome"] == "extended" else "banned"
        click.echo(f"{verb} {body['scope']} until {body['expires']} (id {body['id']})")


@cli.command()
@click.argument("target", required=False)
@click.option("--id", "by_id", is_flag=True, help="TARGET is a decision id, not a scope.")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Unban every address and network of this list (formats as for decisions import).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "plain", "csv", "json", "crowdsec"]),
    default="auto",
    show_default=True,
    help="With --file: the list's format.",
)
@click.option("--json", "as_json", is_flag=True)
@operator_options
def unban(
    target: str | None, by_id: bool, file: str | None, fmt: str, as_json: bool, **conn: Any
) -> None:
    """Revoke every active decision on IP/CIDR TARGET (or with id TARGET), or on every
    scope of a list (--file)."""
    if file is not None:
        if target is not None or by_id:
            raise click.UsageError("give TARGET or --file, not both")
        from shieldwall.cli.lists import unban_file

        unban_file(file, fmt, as_json, conn)
        return
    if target is None:
        raise click.UsageError("give TARGET (an IP, a CIDR or, with --id, a decision id) or --file")
    payload = {"id": target} if by_id else {"scope": target}
    status_code, body = operator_from(**conn).call("POST", "/v1/decisions/revoke", payload)
    if status_code != 200:
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    if as_json:
        click.echo(json.dumps(body))
    elif not body["revoked"]:
        if by_id:
            raise click.ClickException(f"no active decision {target}")
        click.echo(
            f"no active council decision on {target}; connected members lift their own "
            "local bans inside it"
        )
    else:
        click.echo(
            f"revoked {len(body['revoked'])} decision(s) on {target}; connected members lift "
            "their own local bans inside it too"
        )


@cli.group(
    cls=LazyGroup,
    lazy={
        "import": "shieldwall.cli.lists:decisions_import",
        "export": "shieldwall.cli.lists:decisions_export",
    },
)
def decisions() -> None:
    """Inspect the decision log; import and export lists of decisions."""


@decisions.command("list")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def decisions_list(as_json: bool, **conn: Any) -> None:
    """List active decisions."""
    _, body = operator_from(**conn).call("GET", "/v1/decisions")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [
        [
            d["scope"],
            d["action"],
            d["origin"],
            d["member"] or "-",
            d["expires"][:19],
            d["reason"][:60],
        ]
        for d in body["decisions"]
    ]
    click.echo(_table(rows, ["SCOPE", "ACTION", "ORIGIN", "MEMBER", "EXPIRES (UTC)", "REASON"]))
    click.echo(f"{len(rows)} active at seq {body['seq']}")


@decisions.command("refused")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def decisions_refused(as_json: bool, **conn: Any) -> None:
    """List decisions the treaty refused, and why."""
    _, body = operator_from(**conn).call("GET", "/v1/refusals")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [
        [r["at"][:19], r["scope"], r["reason"], r["member"] or "-", r["rule"] or "-"] for r in body
    ]
    click.echo(_table(rows, ["AT", "SCOPE", "REASON", "MEMBER", "RULE"]))


@decisions.command("explain")
@click.argument("decision_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def decisions_explain(decision_id: str, as_json: bool, **conn: Any) -> None:
    """Show why decision ID was made: its treaty clauses, members and exhibits (and why it
    was revoked, if it was)."""
    status_code, body = operator_from(**conn).call("GET", f"/v1/decisions/{decision_id}/explain")
    if status_code != 200:
        raise click.ClickException(f"{body.get('detail', body)}")
    if as_json:
        click.echo(json.dumps(body))
        return
    d = body["decision"]
    click.echo(f"decision {d['id']}: {d['action']} {d['scope']} ({body['state']})")
    click.echo(f"  created {d['created'][:19]}, expires {d['expires'][:19]}")
    click.echo(f"  reason  {d['reason']}")
    for title, chain in (("evidence", body["evidence"]), ("revoked", body["revoked"])):
        if chain is None:
            if title == "evidence":
                click.echo("  evidence: none recorded")
            continue
        click.echo(f"  {title}: {chain['summary']}")
        click.echo(f"    clauses: {', '.join(chain['clauses']) or '-'}")
        click.echo(f"    members: {', '.join(chain['members']) or '-'}")
        rows = [
            [
                x["at"][:19],
                x["member"] or "-",
                x["kind"],
                x["rule"] or "-",
                str(x["failures"]),
                str(x["successes"]),
                x["ref"] or "-",
            ]
            for x in chain["exhibits"]
        ]
        if rows:
            table = _table(rows, ["AT", "MEMBER", "KIND", "RULE", "FAILURES", "SUCCESSES", "REF"])
            click.echo("\n".join("    " + line for line in table.splitlines()))


@cli.command()
@click.argument("address")
@click.option("--reason", default="", help="Why the source is suspicious (kept in the audit).")
@click.option("--rule", help="The rule the suspicion is about, if any.")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def consult(address: str, reason: str, rule: str | None, as_json: bool, **conn: Any) -> None:
    """Raise a concern about ADDRESS (Article 4): every member searches its recent logs, and
    the source is decided if enough members saw failures from it (none a successful login)."""
    payload: dict[str, Any] = {"source": address, "reason": reason}
    if rule:
        payload["rule"] = rule
    status_code, body = operator_from(**conn).call("POST", "/v1/concerns", payload)
    if status_code not in (200, 403):
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    if as_json:
        click.echo(json.dumps(body))
        if status_code == 403:
            sys.exit(1)
        return
    concern = body.get("concern") or {}
    if body["status"] == "consulting":
        click.echo(
            f"concern {concern['id']} on {address}: members are consulted until "
            f"{concern['expires'][:19]} (UTC)"
        )
    elif body["status"] == "decided":
        click.echo(f"decided at once: {address} (decision {', '.join(body['decided'])})")
    elif body["status"] == "closed":
        click.echo(f"concern on {address} closed: {body['outcome']}")
    else:
        why = ", ".join(r["reason"] for r in body["refused"]) or "refused"
        raise click.ClickException(f"refused: {why}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@operator_options
def audit(as_json: bool, **conn: Any) -> None:
    """The audit trail: operators' decisions and revocations, membership changes."""
    _, body = operator_from(**conn).call("GET", "/v1/audit")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [
        [
            r["at"][:19],
            r["actor"],
            r["action"],
            r["outcome"],
            r["scope"] or r["subject"] or "-",
            str(len(r["decisions"])),
            (r["reason"] or r["detail"])[:50],
        ]
        for r in body
    ]
    click.echo(_table(rows, ["AT", "ACTOR", "ACTION", "OUTCOME", "TARGET", "DECISIONS", "REASON"]))


@cli.group()
def allowlist() -> None:
    """Addresses and networks the alliance never decides against (changes are audited)."""


@allowlist.command("list")
@click.option("--json", "as_json", is_flag=True)
@operator_options
def allowlist_list(as_json: bool, **conn: Any) -> None:
    """List the allowlist: entries of the council's config file and run-time additions."""
    _, body = operator_from(**conn).call("GET", "/v1/allowlist")
    if as_json:
        click.echo(json.dumps(body))
        return
    rows = [[s, "config"] for s in body["configured"]] + [[s, "added"] for s in body["added"]]
    click.echo(_table(rows, ["SCOPE", "FROM"]))


@allowlist.command("add")
@click.argument("scope")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@operator_options
def allowlist_add(scope: str, reason: str, **conn: Any) -> None:
    """Protect SCOPE (IP or CIDR) from now on; active decisions overlapping it are revoked."""
    status_code, body = operator_from(**conn).call(
        "POST", "/v1/allowlist", {"scope": scope, "action": "add", "reason": reason}
    )
    if status_code != 200:
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    click.echo(f"allowlisted {body['added']}; revoked {len(body['revoked'])} decision(s)")


@allowlist.command("remove")
@click.argument("scope")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@operator_options
def allowlist_remove(scope: str, reason: str, **conn: Any) -> None:
    """Stop protecting SCOPE (run-time entries only; config entries live in council.toml)."""
    status_code, body = operator_from(**conn).call(
        "POST", "/v1/allowlist", {"scope": scope, "action": "remove", "reason": reason}
    )
    if status_code != 200:
        raise click.ClickException(f"refused ({status_code}): {body.get('detail', body)}")
    click.echo(f"removed {body['removed']} from the allowlist")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@operator_options
def stats(as_json: bool, **conn: Any) -> None:
    """Council counters: reports accepted and refused (by reason), decisions, streams."""
    _, body = operator_from(**conn).call("GET", "/v1/stats")
    if as_json:
        click.echo(json.dumps(body, sort_keys=True))
        return
    click.echo(_table([[k, str(v)] for k, v in sorted(body.items())], ["COUNTER", "VALUE"]))


# -- demo -------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--members",
    "n_members",
    default=5,
    show_default=True,
    type=click.IntRange(2, 200),
    help="How many member agents to start.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only a summary object.")
@click.option("--keep", is_flag=True, help="Keep the temporary directory.")
def demo(n_members: int, as_json: bool, keep: bool) -> None:
    """Start a council and N member agents on loopback and watch an attack on member 1 get
    blocked by every member. No root, no other service."""
    from shieldwall.loopback.demo import run_demo

    summary = run_demo(n_members, live=not as_json, keep=keep)
    if as_json:
        click.echo(json.dumps(summary))
    if not summary["blocked_everywhere"]:
        sys.exit(1)


def main() -> None:
    cli(prog_name="shieldwall")


if __name__ == "__main__":
    main()
