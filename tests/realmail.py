"""Letters that look like real citizens' mail (issue 13), written for this project: every name, address and event
is invented. Telegraphic one-liners, no subject, HTML only with ``&nbsp;`` and an inline image, misspellings, long
angry letters, complaints with «?» and «Спасибо» at the end, «отписались» (a brush-off answer), letters about
other bodies' business (roads, housing, health, transport), and a few advertisements.

What each must become comes from the law (59-FZ art. 8 p. 2, 8-FZ art. 18): every person's letter is registered
with a number and an acknowledgement; only advertising with no request in it may be held, visibly.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.mailfactory import citizen_mail, html_mail


@dataclass(frozen=True)
class Letter:
    """One letter and what must become of it: ``registered`` or ``held``."""

    sender: str
    subject: str | None
    body: str
    expect: str = "registered"
    html: bool = False
    name: str = ""

    def raw(self) -> bytes:
        """The message as it would arrive."""
        if self.html:
            paragraphs = [p for p in self.body.split("\n") if p.strip()]
            return html_mail(sender=self.sender, name=self.name, subject=self.subject, paragraphs=paragraphs)
        return citizen_mail(sender=self.sender, name=self.name, subject=self.subject, body=self.body)


_ANGRY = (
    "Уважаемые господа чиновники! Пишу вам уже в четвёртый раз, и каждый раз получаю ответ ни о чём. "
    "В 2019 году я подал заявление на предоставление земельного участка многодетной семье, с тех пор прошло шесть "
    "лет, мой номер в очереди то растёт, то падает, а участки раздают где-то в чистом поле без дорог и света. "
    "Мне отписались, что «вопрос находится на контроле». На каком контроле? У кого? Я требую назвать фамилию "
    "ответственного сотрудника и конкретный срок, когда моей семье предоставят участок. Дети растут, мы живём "
    "в съёмной квартире, платим 25 000 рублей в месяц. Если ответа по существу не будет, я обращусь в прокуратуру "
    "и к губернатору. Прилагаю копии всех предыдущих ответов, где вы пишете одно и то же слово в слово. "
    "Сколько можно издеваться над людьми?! Когда наведут порядок!? Жду ответа в установленный законом срок.\n\n"
    "P.S. Отдельно прошу сообщить, сколько участков многодетным семьям предоставлено в 2024 и 2025 годах по "
    "Новосибирскому району, сколько из них обеспечены дорогой, электричеством и водой, и какие участки "
    "планируется сформировать в 2026 году. Эти сведения нужны мне, чтобы понимать, есть ли вообще надежда, или "
    "очередь существует только на бумаге. С уважением, многодетный отец, который устал ждать."
)
_LONG_ROADS = (
    "Здравствуйте. Обращаюсь по поводу состояния дороги по ул. Вокзальной в р.п. Краснообск. " * 6
    + "Ямы глубиной до полуметра, машины ломаются, автобус отказывается ездить. Кто будет ремонтировать? "
    + "Прошу передать обращение тем, кто за это отвечает, если это не вы. " * 4
)

LETTERS: list[Letter] = [
    # Telegraphic one-liners, many with no subject at all.
    Letter("r01@example.ru", None, "Оборваны провода"),
    Letter("r02@example.ru", "Ремонт дороги", ""),
    Letter("r03@example.ru", "", "???"),
    Letter("r04@example.ru", None, "Когда наведут порядок!?"),
    Letter("r05@example.ru", None, "Яма на дороге у дома 15 по ул. Садовой"),
    Letter("r06@example.ru", "Вода", "Нет воды третий день"),
    Letter("r07@example.ru", None, "мусор не вывозят"),
    Letter("r08@example.ru", "СВЕТ", "НА УЛИЦЕ НЕ ГОРИТ СВЕТ УЖЕ МЕСЯЦ"),
    Letter("r09@example.ru", None, "Помогите"),
    Letter("r10@example.ru", None, "Участок"),
    Letter("r11@example.ru", "Вопрос", "Где мой ответ"),
    Letter("r12@example.ru", None, "Спасибо, что ничего не делаете"),
    Letter("r13@example.ru", None, "Бездомные собаки у школы №12, страшно водить детей"),
    # Misspellings.
    Letter("r14@example.ru", "Здраствуйте", "прошу дать инфармацию про учаток на ул Ленена 5 кто владелиц"),
    Letter("r15@example.ru", None, "када будет аукцыон по зимле в Колывани и как учавствовать"),
    Letter("r16@example.ru", "аренда", "продлить аренду учаска скока стоит и какие документы нада"),
    # Rude, sarcastic, «отписались».
    Letter("r17@example.ru", "Отписка", "Ваш ответ — очередная отписка. Прошу рассмотреть по существу."),
    Letter("r18@example.ru", None, "Опять отписались, никто ничего не делает. Спасибо."),
    Letter("r19@example.ru", "Жалоба", "Мне отписались, что участок не сформирован. Сколько можно?"),
    Letter("r20@example.ru", None, "Вы там совсем обнаглели, третий месяц жду ответа"),
    Letter("r21@example.ru", "Спасибо за отписку!", "Спасибо за отписку! Ответа по существу так и нет."),
    Letter("r22@example.ru", "Отписаться", "Почему вы присылаете мне письма? Я ни на что не подписывался."),
    # History mentioned in passing.
    Letter("r23@example.ru", None, "Дайте историю переписки по моему делу и объясните, почему мне отказали в аренде."),
    Letter("r24@example.ru", "История", "Прошу историю моих обращений и объяснить, почему по ним нет ответа."),
    # Complaints with «?» and «Спасибо» at the end.
    Letter(
        "r25@example.ru",
        "Жалоба на специалиста",
        "Специалист отдела аренды не принял документы, сказал приходить через месяц. Это законно? Спасибо.",
    ),
    Letter(
        "r26@example.ru",
        None,
        "Почему на сайте нет плана приватизации на 2026 год? Обещали разместить ещё в январе. Заранее спасибо!",
    ),
    # Long angry letters.
    Letter("r27@example.ru", "ЖАЛОБА!!!", _ANGRY, name="Сидоров Пётр"),
    Letter("r28@example.ru", "Дорога", _LONG_ROADS),
    # HTML only, with &nbsp; and an inline image; some with no subject.
    Letter("r29@example.ru", None, "Добрый день!\nОборваны провода у дома 5 по ул. Мира.\nКогда починят?", html=True),
    Letter("r30@example.ru", "Запрос", "Прошу сообщить, кто арендует участок 54:35:000000:123.", html=True),
    Letter("r31@example.ru", "", "Спасибо за ответ, но я так ничего и не понял.\nЧто мне делать?", html=True),
    Letter("r32@example.ru", None, "Ремонт подъезда не делают десять лет\nУправляющая компания молчит", html=True),
    Letter("r33@example.ru", "Фото", "Вот фото свалки за гаражами", html=True),
    # Other bodies' business: roads, housing and utilities, health, transport.
    Letter("r34@example.ru", "Отопление", "В квартире +14, управляющая компания не реагирует. Что делать?"),
    Letter("r35@example.ru", None, "Автобус 45 не ходит по выходным, как добираться до больницы"),
    Letter("r36@example.ru", "Поликлиника", "Невозможно записаться к терапевту, телефон не отвечает."),
    Letter("r37@example.ru", "Тарифы ЖКХ", "Почему снова выросла плата за вывоз мусора? Кто это утвердил?"),
    Letter("r38@example.ru", None, "На участке дороги между Бердском и Искитимом нет разметки, ночью опасно."),
    Letter("r39@example.ru", "Пенсия", "Мне не пересчитали пенсию после переезда, куда обращаться?"),
    Letter("r40@example.ru", "Школа", "В школе №3 не работает столовая, дети голодные."),
    # Ordinary requests for information and appeals about the department's business.
    Letter("r41@example.ru", "Запрос информации", "Прошу сообщить, сколько участков сдано в аренду в 2025 году."),
    Letter("r42@example.ru", "Кадастровая стоимость", "Кадастровая стоимость моего участка завышена, как оспорить?"),
    Letter("r43@example.ru", "Торги", "Когда будут торги по продаже нежилого помещения на ул. Кирова, 3?"),
    Letter("r44@example.ru", None, "Прошу предоставить копию приказа № 1234 от 12.05.2025."),
    Letter("r45@example.ru", "Вакансии", "Есть ли вакансии юриста в департаменте?"),
    Letter("r46@example.ru", "Приём", "Подскажите часы приёма по вопросам аренды"),
    Letter("r47@example.ru", "Многодетные", "Сколько семей стоит в очереди на участки в Новосибирском районе?"),
    Letter("r48@example.ru", "ИЖС", "Хочу взять участок под ИЖС без торгов, я ветеран боевых действий. Как?"),
    Letter("r49@example.ru", "Re: ваш ответ", "Спасибо. Прошу также предоставить сведения за 2023 год."),
    Letter("r50@example.ru", "Выписка", "Нужна выписка из реестра госимущества на здание по ул. Фрунзе, 88"),
    Letter("r51@example.ru", "Благоустройство", "Предлагаю сделать сквер на пустыре у дома 7, жители готовы помочь"),
    Letter("r52@example.ru", "", "Не доставлено письмо в ваш адрес, отправляю повторно: прошу продлить договор аренды"),
    Letter("r53@example.ru", "срочно!!!", "Завтра снос гаражей, у меня договор аренды земли до 2030 года. Помогите!"),
    Letter("r54@example.ru", "Приватизация", "Прошу разъяснить порядок приватизации муниципальной квартиры"),
    Letter("r55@example.ru", None, "Подписался на рассылку, а новостей про торги нет. Где их смотреть?"),
    Letter("r56@example.ru", "Рассылка", "Подписку оформила на сайте, но письмо подтверждения не пришло, помогите"),
    Letter("r57@example.ru", "Отписались", "Отписались от меня формальным ответом, прошу пересмотреть"),
    # Advertising with no request in it: held in the staff queue, never silently.
    Letter(
        "promo@okna.example.com",
        "Скидки до 50% только до пятницы!",
        "Распродажа окон ПВХ со склада. Цены от 9 900 руб. Звоните! https://okna.example.com/sale",
        expect="held",
    ),
    Letter(
        "seo@promo.example.com",
        "Продвижение сайта",
        "SEO и продвижение сайтов под ключ, увеличим продажи в 3 раза. Прайс: https://seo.example.com/price",
        expect="held",
    ),
    Letter(
        "sale@shop.example.com",
        None,
        "Коммерческое предложение: канцтовары оптом по низким ценам. Бесплатная доставка! www.shop.example.com",
        expect="held",
        html=True,
    ),
]
