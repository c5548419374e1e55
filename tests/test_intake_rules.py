"""The pure rules of register-first intake (issue 13): commands only in their strict forms, "only thanks", and
which advertising may wait unregistered. Table tests of real-looking texts; the expected values come from the
issue and the README, not from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailservice.intake.commands import REST_LIMIT, Command, CommandAddresses, recognise
from mailservice.intake.spam import asks_something, hold_reasons
from mailservice.intake.thanks import is_only_thanks
from mailservice.intake.wording import own_subject

TOKEN = "WzEsImFiYyJd.AbCdEfGhIjKlMnOpQrStUvWxYz0"  # the shape of an itsdangerous token (27-character signature)

# (subject, text) -> command: the forms the README lists, with case, punctuation, «ё» and greetings tolerated.
COMMANDS = [
    ("Подписаться", "", Command.subscribe),
    ("подписаться на рассылку!", "", Command.subscribe),
    ("", "Подпишите меня на рассылку новостей департамента.", Command.subscribe),
    ("Подписка", "Хочу подписаться на рассылку новостей.", Command.subscribe),
    ("Подписка на рассылку", "Здравствуйте!\nПрошу включить меня в рассылку.\nС уважением, Анна", Command.subscribe),
    ("Отписаться от рассылки", "", Command.unsubscribe),
    ("ОТПИСАТЬСЯ", "", Command.unsubscribe),
    ("Рассылка", "Прошу отписать меня от рассылки.", Command.unsubscribe),
    ("", "Добрый день, уважаемые коллеги!\nОтпишите меня, пожалуйста, от рассылки. Спасибо.", Command.unsubscribe),
    ("Re: Новости департамента за март", "Отписаться\n\nОтправлено с iPhone", Command.unsubscribe),
    ("", "Больше не присылайте мне рассылку.", Command.unsubscribe),
    ("Отказ от рассылки", "Иванов И. И.", Command.unsubscribe),
    (f"unsubscribe {TOKEN}", "", Command.unsubscribe),
    ("Прошу предоставить историю моих обращений", "", Command.history),
    (
        "Прошу историю взаимодействия",
        "Прошу направить мне всю историю взаимодействия с департаментом.",
        Command.history,
    ),
    (
        "",
        "Здравствуйте.\nПрошу предоставить историю моих обращений.\n\nС уважением,\nПётр Сидоров\n+7 913 000-00-00",
        Command.history,
    ),
    ("Запрос истории обращений", "", Command.history),
    # The command's own words around its form, or a reason for it, ask nothing besides.
    ("История обращений", "Прошу направить мне на почту историю моих обращений.", Command.history),
    ("История обращений", "Прошу предоставить историю моих обращений и направить её мне на почту.", Command.history),
    ("Отписаться", "Отпишите меня от рассылки, она мне больше не нужна.", Command.unsubscribe),
    ("Отписаться", "Отпишите меня от рассылки, пожалуйста, когда-то подписывался на сайте.", Command.unsubscribe),
    ("Подписаться", "Хочу подписаться на рассылку, мне это нужно для работы.", Command.subscribe),
]

# Letters that mention a command in passing, or ask something besides: registered (None).
NOT_COMMANDS = [
    ("Жалоба", "Опять отписались, никто ничего не делает. Спасибо."),
    ("Отписка", "Ваш ответ № 2026-000012 — очередная отписка. Прошу рассмотреть по существу."),
    ("", "Мне отписались, что участок не сформирован. Прошу разобраться."),
    ("", "Дайте историю переписки по моему делу и объясните, почему мне отказали в аренде участка."),
    ("История", "Прошу предоставить историю моих обращений и объяснить, почему по ним нет ответа."),
    ("Отписаться", "Почему вы присылаете мне письма? Я ни на что не подписывался."),
    ("Подписаться?", ""),
    ("", "Как подписаться на рассылку?"),
    ("Подписка договора", "Прошу разъяснить порядок подписки договора аренды"),
    ("Отписаться", "Подписаться"),  # two commands: staff decide
    ("Отписаться от рассылки", "Также прошу сообщить, когда будут торги по участку на ул. Ленина, 5 " * 3),
    ("Оборваны провода", ""),
    ("", "Отписался от вашей рассылки, а письма всё равно приходят. Прошу разобраться."),
    ("Fwd: Отписаться", "Пересылаю письмо соседа, он просил узнать, куда обращаться по поводу участка"),
    # A request in the same sentence as the command (citizen-side tryout of 7 December: all three were carried out
    # as commands, and the questions never registered).
    (
        "Отписаться",
        "Здравствуйте. Хочу отписаться от рассылки, а также прошу сообщить, когда будут торги по ул. Ленина.",
    ),
    ("История обращений", "Прошу предоставить историю моих обращений и сообщить, когда будет ответ по гаражу."),
    ("Подписаться", "Подписаться на рассылку и сообщить мне дату ближайших торгов."),
    ("Подписка", "Сообщите дату торгов и подпишите меня на рассылку."),
    ("Отписаться", "Отпишите меня от рассылки и объясните, откуда у вас мой адрес."),
]


@pytest.mark.parametrize(("subject", "text", "expected"), COMMANDS)
def test_command_forms(subject: str, text: str, expected: Command) -> None:
    assert recognise(subject, text) is expected


@pytest.mark.parametrize(("subject", "text"), NOT_COMMANDS)
def test_mentions_are_not_commands(subject: str, text: str) -> None:
    assert recognise(subject, text) is None


def test_the_rest_of_a_command_letter_is_short() -> None:
    said = "Иванов Иван Иванович, Новосибирск"
    assert recognise("Отписаться", said) is Command.unsubscribe
    long_rest = "Иванов " * (REST_LIMIT // 7 + 1)
    assert len(long_rest.strip()) > REST_LIMIT
    assert recognise("Отписаться", long_rest) is None


def test_dedicated_addresses() -> None:
    addresses = CommandAddresses(subscribe="join@dizo.test", unsubscribe="Leave@dizo.test", history="")
    # Whatever the text says, mail to a dedicated address is its command ...
    assert (
        recognise("Новости", "Хочу получать ваши письма, спасибо", ["join@dizo.test"], addresses) is Command.subscribe
    )
    assert recognise("", "", ["info@dizo.test", "leave@DIZO.test"], addresses) is Command.unsubscribe
    # ... unless the text is the opposite command, or it went to two command addresses: staff decide.
    assert recognise("Отписаться", "", ["join@dizo.test"], addresses) is None
    assert recognise("", "", ["join@dizo.test", "leave@dizo.test"], addresses) is None
    # Empty addresses (the default) are no addresses: a message to nobody in particular stays a request.
    assert recognise("Новости", "Текст", ["info@dizo.test"], CommandAddresses()) is None


README_REST_LIMIT = 120  # README, "Commands by e-mail": "is at most 120 characters and asks nothing"
QUESTION_AND_COMMAND = "Прошу сообщить, когда будут торги в Бердске, и не присылать мне больше рассылку."


@pytest.mark.parametrize(
    "recipients",
    [
        ["info@dizo.test", "leave@dizo.test"],  # the main address by the dedicated one's domain
        ["reception@dizo.test", "leave@dizo.test"],  # any department address at that domain
        ["main@department.example", "leave@dizo.test"],  # one of `others` (FROM_ADDRESS, IMAP_USER, ...)
        ["leave@dizo.test", "MAIN@department.example"],  # order and case do not matter
    ],
)
def test_a_letter_to_a_dedicated_address_and_another_of_ours_that_asks_is_a_request(recipients: list[str]) -> None:
    """README, "Commands by e-mail": with another of our addresses, a letter asking something of its own is
    registered (tryout G11); a short one asking nothing is still the command."""
    addresses = CommandAddresses(unsubscribe="leave@dizo.test", others=("main@department.example",))
    assert recognise("Торги", QUESTION_AND_COMMAND, recipients, addresses) is None
    assert recognise("Вопрос", "Когда торги?", recipients, addresses) is None  # a «?»
    assert recognise("Когда будут торги?", "", recipients, addresses) is None  # the subject asks
    assert recognise("Торги", "Сообщите дату торгов.", recipients, addresses) is None  # an imperative
    # Even the command's form itself does not hide a question beside it.
    assert recognise("Отписаться", "Отпишите меня от рассылки. Когда торги?", recipients, addresses) is None
    # Saying nothing of its own, it is the command whichever of our addresses it went to as well.
    assert recognise("", "", recipients, addresses) is Command.unsubscribe
    assert recognise("Рассылка", "Надоело. Иванов И. И.", recipients, addresses) is Command.unsubscribe
    assert recognise("Re: Новости департамента", "Надоело.", recipients, addresses) is Command.unsubscribe
    # More than 120 characters of its own is a matter of its own, even without a question.
    long_text = "Иванов " * (README_REST_LIMIT // 7 + 1)
    assert recognise("", long_text, recipients, addresses) is None
    assert recognise("", long_text[: README_REST_LIMIT - 8], recipients, addresses) is Command.unsubscribe


def test_a_letter_to_a_dedicated_address_alone_among_ours_is_the_command_whatever_it_says() -> None:
    addresses = CommandAddresses(unsubscribe="leave@dizo.test", others=("main@department.example",))
    # Another person's address in Cc is not ours: the dedicated address is still the only one of ours.
    for recipients in (["leave@dizo.test"], ["leave@dizo.test", "friend@example.ru"]):
        assert recognise("Торги", QUESTION_AND_COMMAND, recipients, addresses) is Command.unsubscribe


THANKS = [
    ("Re: [№ 2026-000001] Статус обращения: дан ответ", "Спасибо за ответ!"),
    ("Re: ответ", "Большое спасибо! Всё получил.\n\nС уважением,\nИван Петров"),
    ("", "Благодарю за оперативный ответ. Всего доброго!"),
    ("Благодарность", "Выражаю благодарность специалисту Петровой О. В. за помощь в оформлении документов."),
    ("Спасибо", ""),
    ("Re: ответ", "Здравствуйте! Спасибо, вопрос решён."),
    ("Re: ответ", "Спасибо, извините за беспокойство."),
]
NOT_THANKS = [
    ("Re: ответ", "Спасибо за ответ. А когда будет готов договор?"),  # thanks + question
    ("Re: ответ", "Спасибо. Прошу также предоставить сведения за 2023 год."),  # thanks + new request
    ("", "Третий месяц не вывозят мусор с площадки у дома, никто не реагирует. Спасибо."),  # thanks at the end
    ("Re: ответ", "Спасибо за отписку!"),  # sarcasm: «отписка» is a brush-off answer
    ("Re: ответ", "Спасибо, но ответа по существу я так и не получил."),
    ("Re: ответ", "спасибо конечно но это не ответ"),
    ("Жалоба", "Спасибо."),  # a subject of its own that is not thanks
    ("Re: ответ", "Спасибо. Направьте, пожалуйста, копию приказа."),
    ("Re: ответ", "Спасибо за ответ, но почему так долго"),
    ("Re: ответ", "Оборваны провода"),
    ("Re: ответ", ""),
    ("Re: ответ", "Спасибо! " + "Очень помогли. " * 30),  # too long to be only thanks
]


@pytest.mark.parametrize(("subject", "text"), THANKS)
def test_only_thanks(subject: str, text: str) -> None:
    assert is_only_thanks(subject, text)


@pytest.mark.parametrize(("subject", "text"), NOT_THANKS)
def test_thanks_with_more(subject: str, text: str) -> None:
    assert not is_only_thanks(subject, text)


# Citizens' letters, however short, rude or odd: never held.
CITIZENS = [
    ("", "Оборваны провода"),
    ("Ремонт дороги", ""),
    ("", "???"),
    ("", "Когда наведут порядок!?"),
    ("", "Вы там совсем обнаглели, сколько можно ждать ответа"),
    ("", "Заплатил 5000 руб за справку, а её так и не выдали, фото квитанции https://disk.example.ru/abc"),
    ("Участок", "Продаю участок 10 соток, цена 500 000 руб. Как оформить сделку? https://avito.example.ru/1"),
    ("", "Скидки на проезд для пенсионеров отменили, это безобразие, примите меры"),
    ("Вопрос", "Где купить бланк заявления? На сайте https://dizo.example.ru не нашёл. Цены от 100 руб?"),
]
ADVERTISING = [
    ("Скидки до 50%!", "Распродажа окон ПВХ. Цены от 9 900 руб. Звоните! https://okna.example.com", {}),
    ("Продвижение сайта", "SEO и продвижение сайтов, увеличим продажи в 3 раза. https://seo.example.com", {}),
    ("Коммерческое предложение", "Оптом со склада, прайс по ссылке www.example.com/price", {}),
    ("Новинки", "Смотрите новинки сезона на нашем сайте https://shop.example.com", {"X-Campaign-ID": "8842"}),
    ("Новинки", "Смотрите каталог: https://shop.example.com", {"X-Mailer": "UniSender 2.0"}),
]


@pytest.mark.parametrize(("subject", "text"), CITIZENS)
def test_citizens_letters_are_never_held(subject: str, text: str) -> None:
    assert hold_reasons(subject, text, None, {}) == ()


@pytest.mark.parametrize(("subject", "text", "headers"), ADVERTISING)
def test_advertising_is_held_with_reasons(subject: str, text: str, headers: dict[str, str]) -> None:
    reasons = hold_reasons(subject, text, None, {k.lower(): v for k, v in headers.items()})
    assert reasons, "advertising with strong signals is held"
    assert all(isinstance(r, str) and r for r in reasons)


def test_one_signal_is_not_enough() -> None:
    # Links alone, an advertising word alone, a mass mailer's header alone: registered.
    assert hold_reasons("", "Посмотрите фото: https://disk.example.ru/1 " + "текст " * 50, None, {}) == ()
    assert hold_reasons("", "Бесплатно отдам рассаду соседям. " + "текст " * 50, None, {}) == ()
    assert hold_reasons("", "Текст письма " * 30, None, {"x-campaign-id": "1"}) == ()
    # Links in the HTML part count: the same advertisement as HTML only.
    html = '<p>Распродажа!</p><a href="https://shop.example.com">Скидки</a>'
    assert hold_reasons("", "Распродажа! Скидки " + "товары " * 40, html, {}) != ()


def _readme_forms() -> list[tuple[Command, str]]:
    """Every command form the README lists, with its optional (parenthesised) words left out and put in."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = " ".join(readme.split("**Commands by e-mail**", 1)[1].split("Mail to a dedicated address", 1)[0].split())
    forms: list[tuple[Command, str]] = []
    for command in Command:
        listed = section.split(f"- {command.value}:", 1)[1].split(";", 1)[0]
        for form in re.findall(r"«([^»]+)»", listed):
            forms.append((command, re.sub(r"\s*\([^)]*\)", "", form)))
            forms.append((command, re.sub(r"[()]", "", form)))
    return forms


README_FORMS = _readme_forms()


def test_the_readme_lists_forms_of_every_command() -> None:
    assert {command for command, _form in README_FORMS} == set(Command)
    assert len(README_FORMS) >= 30


@pytest.mark.parametrize(("command", "form"), README_FORMS)
def test_every_form_in_the_readme_is_recognised(command: Command, form: str) -> None:
    assert recognise(form, "") is command  # as the subject
    assert recognise("", f"Здравствуйте!\n{form}.\nС уважением, Иванов И. И.") is command  # as the first line
    assert recognise("", f"{form}. А когда будут торги?") is None  # and a question besides: registered


# ------------------------------------------------------------------------------------------------------------------
# Tryout T: a question is asking (README "Register first": list mail that asks waits for staff, a letter that asks
# is never held as advertising), and a command letter with a request of its own is a request.
# ------------------------------------------------------------------------------------------------------------------

# Letters that ask without «прошу», «жалоба» or an address: a question is asking too.
QUESTIONS = [
    ("Аренда", "Подскажите, как оформить аренду земельного участка под огород?"),
    ("", "Подскажите порядок оформления аренды земельного участка"),
    ("Участок", "Многодетная семья. Как быть и куда идти"),
    ("", "Нужна консультация по выкупу арендуемого участка"),
    ("", "Хочу оформить участок под ИЖС, с чего начать"),
    ("Договор", "Можно ли продлить договор аренды без торгов"),
    ("", "Куда обращаться за справкой об отсутствии задолженности"),
]


@pytest.mark.parametrize(("subject", "text"), QUESTIONS)
def test_a_question_asks_something(subject: str, text: str) -> None:
    assert asks_something(subject, text)


def test_a_newsletter_without_a_question_asks_nothing() -> None:
    assert not asks_something("Дайджест недели", "Главные новости недели: открыт новый сквер, стартовал фестиваль.")


def test_a_question_beside_prices_and_a_link_is_never_held() -> None:
    text = (
        "Здравствуйте. Хочу купить земельный участок бесплатно как многодетная семья, на сайте https://torgi.gov.ru "
        "цены от 100 000 руб., а в объявлениях пишут про скидки. Как быть и куда идти? Нужна консультация, заранее "
        "благодарю за ответ."
    )
    assert hold_reasons("Участок", text, None, {}) == ()
    # The same advertising words and link without the question: held (two terms with a link and prices).
    assert hold_reasons("Участок", "Купить участок бесплатно, скидки, цены от 100 000 руб. https://x.example", None, {})


# A command's form beside a request, a question or an objection of its own: registered (staff may convert it).
COMMANDS_WITH_A_REQUEST = [
    ("История обращений", "Прошу направить копию ответа на моё обращение об аренде участка на ул. Ленина, 5."),
    ("Отписаться от рассылки", "Также прошу сообщить, когда будут торги по аренде участков."),
    ("Отписаться", "Пришлите копию приказа о торгах."),
    ("Подписаться на рассылку", "Нужна консультация по аренде"),
    ("", "Прошу предоставить историю моих обращений.\nКроме того, сообщите номер моего обращения."),
    ("Вопрос по рассылке", "Отписаться"),
]


@pytest.mark.parametrize(("subject", "text"), COMMANDS_WITH_A_REQUEST)
def test_a_command_with_a_request_of_its_own_is_a_request(subject: str, text: str) -> None:
    assert recognise(subject, text) is None


def test_a_reply_subject_is_ours_and_asks_nothing() -> None:
    # The subject of our newsletter under «Re:» is our wording, not the citizen's question.
    assert recognise("Re: Где получить субсидию на газификацию", "Отписаться") is Command.unsubscribe


OURS = ["[№ 2026-000022] Статус обращения: дан ответ", "[№ 2026-000022] Ваше обращение зарегистрировано"]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        # Our notice's subject, whatever prefixes the mail program added: nothing of the citizen's own is left.
        ("Re: [№ 2026-000022] Статус обращения: дан ответ", "Спасибо! А в пятницу приём есть?"),
        ("RE: Re[2]: Fwd: [№ 2026-000022] Статус обращения: дан ответ", "Спасибо! А в пятницу приём есть?"),
        ("Ответ: [№ 2026-000022] ваше обращение ЗАРЕГИСТРИРОВАНО", "Спасибо! А в пятницу приём есть?"),
        ("Re: [№ 2026-000022]", "Спасибо! А в пятницу приём есть?"),
        ("", "Спасибо! А в пятницу приём есть?"),
        # A topic of the citizen's own stays, without the prefixes and our number.
        ("Re: [№ 2026-000022] Приём в пятницу", "Приём в пятницу"),
        ("Re: Приём в пятницу", "Приём в пятницу"),
    ],
)
def test_a_linked_requests_subject_is_its_own(subject: str, expected: str) -> None:
    """README, "Replies to finished requests" (tryout G9)."""
    text = "Здравствуйте!\nСпасибо! А в пятницу приём есть?\n\nС уважением,\nПетрова Анна"
    assert own_subject(subject, OURS, text) == expected


def test_a_linked_requests_subject_from_its_text_is_its_first_ten_words() -> None:
    text = "Раз два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать"
    subject = own_subject("Re: [№ 2026-000022] Статус обращения: дан ответ", OURS, text)
    assert subject.rstrip("…").split() == text.split()[:10]
    assert "одиннадцать" not in subject
