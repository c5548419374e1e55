"""Commands that run the service's processes: poller, receiver, outbox worker, web app, and all of them at once."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer

from mailservice.config import Settings, get_settings, local_url

log = logging.getLogger(__name__)


def _wait_for_signal(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def poll(once: Annotated[bool, typer.Option("--once", help="Один проход и выход")] = False) -> None:
    """Забирать письма из папки IMAP в приём (IDLE, если сервер умеет)."""
    from mailservice.mail.imap import poll_once, run_poller

    settings = get_settings()
    if not settings.imap_host:
        raise typer.BadParameter("не задан адрес сервера IMAP (MAILSERVICE_IMAP_HOST)", param_hint="настройки")
    if once:
        import imaplib

        from imap_tools.errors import ImapToolsError

        from mailservice.cli import fail

        try:
            result = poll_once(settings)
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as exc:
            # One line, as every refusal of the CLI (the long-running poller logs it and tries again).
            where = f"{settings.imap_host}:{settings.imap_port}"
            raise fail(f"не удалось забрать почту с сервера IMAP {where}: {type(exc).__name__}: {exc}") from exc
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(result.outcomes.items())) or "нет писем"
        typer.echo(f"Получено писем: {result.fetched} ({outcomes}); перемещено: {result.moved}")
        return
    stop = threading.Event()
    thread = threading.Thread(target=run_poller, args=(settings, stop), daemon=True)
    thread.start()
    _wait_for_signal(stop)
    thread.join(timeout=35)


def receive() -> None:
    """Принимать почту по SMTP (или LMTP) и передавать её в приём."""
    from mailservice.mail.receiver import start_receiver

    settings = get_settings()
    controller = start_receiver(settings)
    kind = "LMTP" if settings.receiver_lmtp else "SMTP"
    typer.echo(f"Приём почты ({kind}) на {settings.receiver_host}:{settings.receiver_port}")
    stop = threading.Event()
    _wait_for_signal(stop)
    controller.stop()


def worker(once: Annotated[bool, typer.Option("--once", help="Отправить то, что пора, и выйти")] = False) -> None:
    """Отправлять письма из очереди по SMTP (--once: то, что пора, и выйти)."""
    from mailservice.outbox import drain_once

    settings = get_settings()
    _warn_without_head(settings)
    if once:
        from mailservice.mailings.sender import send_due

        result = asyncio.run(drain_once(settings))
        typer.echo(f"Отправлено: {result.sent}, отложено: {result.deferred}, не доставлено: {result.failed}")
        mailed = asyncio.run(send_due(settings))
        typer.echo(f"Писем рассылок отправлено: {mailed}")
        return
    asyncio.run(_worker_until_signal(settings))


async def _worker_until_signal(settings: Settings) -> None:
    from mailservice.outbox import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, stop=stop)


def sink(
    folder: Annotated[Path, typer.Option(help="Куда складывать письма")] = Path("var/sink"),
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 1025,
) -> None:
    """Приёмник исходящей почты для разработки: хранит каждое письмо."""
    from mailservice.mail.sink import start_sink

    controller = start_sink(folder, host, port)
    typer.echo(f"Почтовый приёмник для разработки на {host}:{port}, письма в {folder}")
    stop = threading.Event()
    _wait_for_signal(stop)
    controller.stop()


def serve(
    host: Annotated[str | None, typer.Option(help="Адрес")] = None,
    port: Annotated[int | None, typer.Option(help="Порт")] = None,
) -> None:
    """Веб-приложение: публичные страницы и консоль сотрудников."""
    import uvicorn

    from mailservice.web.app import create_app
    from mailservice.web.security import server_options

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.web_host,
        port=port or settings.web_port,
        **server_options(settings),
    )


def _warn_without_head(settings: Settings) -> None:
    """Say at the start of every process that sends the staff's mail when nobody heads it in production: the
    reminders of requests nobody was assigned (every new one) and the monthly report go to that address."""
    if settings.environment != "production" or settings.head_of_department_email.strip():
        return
    typer.echo(
        "Внимание: не задан MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL (адрес руководителя): ежемесячный отчёт и "
        "напоминания о запросах без исполнителя и подразделения получают администраторы консоли (если их нет, "
        "никто: об этом остаются запись в истории запроса и предупреждение в журнале работы).",
        err=True,
    )


def _check_ports(settings: Settings, *, sink: bool) -> None:
    """Stop with a readable message before anything starts: a busy port, or outgoing mail aimed past the sink."""
    wanted = [("MAILSERVICE_WEB_PORT", settings.web_host, settings.web_port)]
    wanted.append(("MAILSERVICE_RECEIVER_PORT", settings.receiver_host, settings.receiver_port))
    if sink:
        wanted.append(("MAILSERVICE_SINK_PORT", settings.sink_host, settings.sink_port))
        if (settings.smtp_host, settings.smtp_port) != (settings.sink_host, settings.sink_port):
            typer.echo(
                f"Внимание: исходящая почта идёт на {settings.smtp_host}:{settings.smtp_port} "
                f"(MAILSERVICE_SMTP_HOST/PORT), а локальный приёмник слушает {settings.sink_host}:{settings.sink_port} "
                "(MAILSERVICE_SINK_HOST/PORT): письма попадут не в него. Задайте одинаковые значения.",
                err=True,
            )
    for variable, host, port in wanted:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
            except OSError as exc:
                typer.echo(
                    f"Ошибка: порт {host}:{port} недоступен ({exc.strerror}). Возможно, он занят другой программой; "
                    f"задайте другой в {variable}.",
                    err=True,
                )
                raise typer.Exit(2) from None


def prepare_classifier() -> None:
    """Train the classifier's seed model at install or upgrade, so that the first letter does not wait for it."""
    from mailservice.classify.engine import ensure_seed_model

    if ensure_seed_model():
        typer.echo("Начальная модель классификатора обучена на наборах писем из пакета.")


def run(
    no_sink: Annotated[bool, typer.Option("--no-sink", help="Не запускать локальный приёмник исходящей почты")] = False,
) -> None:
    """Миграции и всё сразу в одном процессе: приём, очередь, IMAP, веб."""
    import uvicorn

    from mailservice.db import upgrade
    from mailservice.mail.imap import run_poller
    from mailservice.mail.receiver import start_receiver
    from mailservice.mail.sink import start_sink
    from mailservice.web.app import create_app
    from mailservice.web.security import server_options

    settings = get_settings()
    _check_ports(settings, sink=not no_sink)
    _warn_without_head(settings)
    upgrade(settings)
    prepare_classifier()
    controllers = []
    if not no_sink:
        controllers.append(start_sink(settings.data_dir / "sink", settings.sink_host, settings.sink_port))
    controllers.append(start_receiver(settings))
    stop = threading.Event()
    threads = []
    if settings.imap_host:
        threads.append(threading.Thread(target=run_poller, args=(settings, stop), daemon=True, name="imap"))

    def outbox_thread() -> None:
        from mailservice.outbox import run_worker

        async def main() -> None:
            event = asyncio.Event()

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.5)
                event.set()

            await asyncio.gather(run_worker(settings, interval=1.0, stop=event), watch())

        asyncio.run(main())

    threads.append(threading.Thread(target=outbox_thread, daemon=True, name="outbox"))
    for thread in threads:
        thread.start()
    listening = local_url(settings.web_host, settings.web_port)
    typer.echo(
        "\n".join(
            [
                "mailservice запущен.",
                f"  веб-приложение:      {listening}"
                + ("" if settings.public_url == listening else f" (адрес в ссылках писем: {settings.public_url})"),
                f"  приём писем (SMTP):  {settings.receiver_host}:{settings.receiver_port}",
                f"  исходящая почта:     {settings.smtp_host}:{settings.smtp_port}"
                + ("" if no_sink else f" -> {settings.data_dir / 'sink'}"),
                f"  IMAP:                {settings.imap_host or 'не настроен (MAILSERVICE_IMAP_HOST)'}",
            ]
        )
    )
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.web_host,
            port=settings.web_port,
            log_level="info",
            **server_options(settings),
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for controller in controllers:
            controller.stop()


# The root CLI mounts each of these as a command of its own (mailservice.cli.LAZY_COMMANDS).
app = typer.Typer(add_completion=False)
for _function in (poll, receive, worker, sink, serve, run):
    app.command(_function.__name__)(_function)
