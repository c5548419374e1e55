"""``mailservice classify``: classify a text, train the model, measure quality.

Mounted by the root CLI; a bad argument (a missing file, wrong columns) prints one line and exits with code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mailservice.classify.engine import Classification, Classifier
    from mailservice.classify.model import Example

app = typer.Typer(
    help="Классификация запросов по типу, теме и срочности: проверка текста, обучение и оценка модели.",
    no_args_is_help=True,
)

EXIT_USAGE = 2

RulesOption = Annotated[Path | None, typer.Option("--rules", help="Файл правил (по умолчанию встроенный rules.yaml).")]
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Файл модели (по умолчанию data_dir/classify/model.joblib, если он есть)."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Ошибка: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


@contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn our input errors into one line on stderr and exit code 2."""
    # Imported here, not at module level: scikit-learn costs a second at every start of the `mailservice` command.
    from mailservice.classify.engine import Classifier, default_classifier, default_model_path  # noqa: F401
    from mailservice.classify.evaluate import (  # noqa: F401
        DatasetError,
        cross_validate,
        evaluate,
        format_report,
        read_datasets,
    )
    from mailservice.classify.model import ModelError, read_metadata, save, train  # noqa: F401
    from mailservice.classify.rules import RulesError, load_rules, load_taxonomy  # noqa: F401

    try:
        yield
    except (DatasetError, RulesError, ModelError) as exc:
        raise _fail(str(exc)) from None


def _classifier(rules: Path | None, model: Path | None, rules_only: bool = False) -> Classifier:
    # Imported here, not at module level: scikit-learn costs a second at every start of the `mailservice` command.
    from mailservice.classify.engine import Classifier, default_classifier, default_model_path  # noqa: F401
    from mailservice.classify.evaluate import (  # noqa: F401
        DatasetError,
        cross_validate,
        evaluate,
        format_report,
        read_datasets,
    )
    from mailservice.classify.model import ModelError, read_metadata, save, train  # noqa: F401
    from mailservice.classify.rules import RulesError, load_rules, load_taxonomy  # noqa: F401

    if model is not None and not model.is_file():
        raise _fail(f"файл модели не найден: {model}")
    if rules is not None and not rules.is_file():
        raise _fail(f"файл правил не найден: {rules}")
    if rules_only:
        return Classifier(load_rules(rules, load_taxonomy()))
    if rules is None and model is None:
        return default_classifier()
    return Classifier.load(rules_path=rules, model_path=model)


def _check_files(paths: list[Path]) -> None:
    for path in paths:
        if not path.is_file():
            raise _fail(f"файл не найден: {path}")


def _print_classification(result: Classification, axis_names: dict[str, str]) -> None:
    from mailservice.inforequests.lifecycle import review_note

    for axis in ("type", "topic", "urgency"):
        value = getattr(result, axis)
        typer.echo(f"{axis_names[axis]}: {value.name} ({value.label}), уверенность {value.confidence:.2f}")
        for reason in value.reasons:
            typer.echo(f"  - {reason}")
    if result.appeal_kind is not None:
        typer.echo(f"{axis_names['appeal_kind']}: {result.appeal_kind_name} ({result.appeal_kind})")
    note = review_note(result.needs_review, result.as_dict())
    typer.echo(f"Нужна проверка сотрудником: {note or 'нет'}")
    typer.echo(f"Версия: {result.version}")


@app.command("text")
def text_command(
    text: Annotated[str, typer.Argument(help="Текст письма.")],
    subject: Annotated[str, typer.Option("--subject", help="Тема письма.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Вывести один объект JSON.")] = False,
    rules: RulesOption = None,
    model: ModelOption = None,
) -> None:
    """Классифицировать текст и показать метки, уверенность и причины."""
    # Imported here, not at module level: scikit-learn costs a second at every start of the `mailservice` command.
    from mailservice.classify.engine import Classifier, default_classifier, default_model_path  # noqa: F401
    from mailservice.classify.evaluate import (  # noqa: F401
        DatasetError,
        cross_validate,
        evaluate,
        format_report,
        read_datasets,
    )
    from mailservice.classify.model import ModelError, read_metadata, save, train  # noqa: F401
    from mailservice.classify.rules import RulesError, load_rules, load_taxonomy  # noqa: F401

    with _usage_errors():
        classifier = _classifier(rules, model)
        result = classifier.classify(subject, text)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    names = {key: axis.name for key, axis in classifier.taxonomy.axes.items()}
    _print_classification(result, names)


@app.command("train")
def train_command(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="Размеченный файл CSV/TSV (можно несколько раз).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Куда сохранить модель (по умолчанию data_dir/classify).")
    ] = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести сведения о модели в JSON.")] = False,
    with_db: Annotated[
        bool, typer.Option("--with-db", help="Добавить к --data метки, подтверждённые сотрудниками в базе.")
    ] = False,
) -> None:
    """Обучить модель на размеченных письмах и сохранить её с описанием (JSON рядом с файлом)."""
    # Imported here, not at module level: scikit-learn costs a second at every start of the `mailservice` command.
    from mailservice.classify.engine import PACKAGED_SETS, Classifier, default_classifier, default_model_path  # noqa: F401
    from mailservice.classify.evaluate import (  # noqa: F401
        DatasetError,
        cross_validate,
        evaluate,
        format_report,
        read_datasets,
    )
    from mailservice.classify.model import ModelError, read_metadata, save, train  # noqa: F401
    from mailservice.classify.rules import RulesError, load_rules, load_taxonomy  # noqa: F401

    # Without --data: the packaged labelled sets plus every label staff confirmed in the database.
    paths = list(data or PACKAGED_SETS)
    _check_files(paths)
    with _usage_errors():
        rule_set = load_rules(rules, load_taxonomy())
        examples = read_datasets(paths, rule_set.taxonomy)
        if not data or with_db:
            examples += _confirmed_from_db()
        model = train(examples, rules_version=rule_set.version, trained_at=datetime.now(UTC))
        target = output or default_model_path()
        try:
            save(model, target)
        except OSError as exc:
            raise _fail(f"не удалось сохранить модель в {target}: {exc.strerror or exc}") from None
    default_classifier.cache_clear()
    metadata = read_metadata(target)
    if as_json:
        typer.echo(json.dumps({**metadata, "path": str(target)}, ensure_ascii=False))
        return
    typer.echo(f"Модель {model.model_id} обучена на {len(examples)} письмах и сохранена в {target}")
    for axis, counts in model.label_counts.items():
        typer.echo(f"  {axis}: " + ", ".join(f"{label} {count}" for label, count in counts.items()))


def _confirmed_from_db() -> list[Example]:
    from sqlalchemy.exc import SQLAlchemyError

    from mailservice.classify.corrections import confirmed_examples
    from mailservice.db import session_scope

    try:
        with session_scope() as session:
            return confirmed_examples(session)
    except SQLAlchemyError as exc:
        raise _fail(
            f"не удалось прочитать подтверждённые метки из базы ({type(exc).__name__}); mailservice db upgrade?"
        ) from None


@app.command("correct")
def correct_command(
    number: Annotated[str, typer.Argument(help="Регистрационный номер запроса")],
    actor: Annotated[str, typer.Option("--actor", help="Кто исправляет (e-mail сотрудника)")],
    type_: Annotated[str | None, typer.Option("--type", help="Тип")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Тема")] = None,
    urgency: Annotated[str | None, typer.Option("--urgency", help="Срочность")] = None,
    appeal_kind: Annotated[str | None, typer.Option("--appeal-kind", help="Вид обращения")] = None,
) -> None:
    """Исправить или подтвердить классификацию запроса; исправление становится обучающим примером."""
    from mailservice.config import get_settings
    from mailservice.db import session_scope, utcnow
    from mailservice.inforequests import service

    settings = get_settings()
    with session_scope(settings) as session:
        request = service.get_by_number(session, number)
        if request is None:
            raise _fail(f"запрос № {number} не найден")
        try:
            service.reclassify(
                session,
                settings,
                request,
                type_=type_ or request.type,
                topic=topic or request.topic,
                urgency=urgency or request.urgency,
                appeal_kind=appeal_kind or request.appeal_kind,
                actor=actor,
                now=utcnow(),
            )
        except service.RequestError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"№ {number}: {request.type} / {request.topic} / {request.urgency}")


@app.command("evaluate")
def evaluate_command(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Размеченный файл CSV/TSV (можно несколько раз; по умолчанию встроенные наборы)."),
    ] = None,
    held_out: Annotated[
        bool,
        typer.Option(
            "--held-out",
            help="Обучить модель на 4/5 писем и оценить на отложенной пятой части (без --data — всегда так).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести один объект JSON.")] = False,
    cv: Annotated[
        int,
        typer.Option(
            "--cv",
            help="Перекрёстная проверка: модель учится на K-1 частях из K и оценивается на оставшейся.",
            min=0,
        ),
    ] = 0,
    rules_only: Annotated[bool, typer.Option("--rules-only", help="Оценить только правила, без модели.")] = False,
    rules: RulesOption = None,
    model: ModelOption = None,
) -> None:
    """Точность, полнота, F1 по классам, macro-F1, матрица ошибок, доля писем на проверку и верных без неё."""
    # Imported here, not at module level: scikit-learn costs a second at every start of the `mailservice` command.
    from mailservice.classify.engine import PACKAGED_SETS
    from mailservice.classify.evaluate import cross_validate, evaluate, evaluate_held_out, format_report, read_datasets
    from mailservice.classify.rules import load_rules, load_taxonomy

    if not data:
        held_out = True
    paths = list(data or PACKAGED_SETS)
    _check_files(paths)
    if cv == 1:
        raise _fail("--cv: нужно хотя бы 2 части")
    if cv and held_out:
        raise _fail("--cv и --held-out вместе не применяются")
    with _usage_errors():
        if held_out and not cv:
            rule_set = load_rules(rules, load_taxonomy())
            report = evaluate_held_out(rule_set, read_datasets(paths, rule_set.taxonomy))
            taxonomy = rule_set.taxonomy
        elif cv:
            rule_set = load_rules(rules, load_taxonomy())
            examples = read_datasets(paths, rule_set.taxonomy)
            if len(examples) < cv:
                raise _fail(f"--cv {cv}: в файле меньше писем ({len(examples)}), чем частей")
            report = cross_validate(rule_set, examples, folds=cv)
            taxonomy = rule_set.taxonomy
        else:
            classifier = _classifier(rules, model, rules_only=rules_only)
            examples = read_datasets(paths, classifier.taxonomy)
            report = evaluate(classifier, examples)
            taxonomy = classifier.taxonomy
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    typer.echo(format_report(report, taxonomy))
