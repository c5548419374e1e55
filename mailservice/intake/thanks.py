"""Is this letter only a thank-you? (pure)

A short «Спасибо за ответ!» in reply to our answer is feedback: it joins the answered request and opens no new
8-FZ request and no new clock. But «спасибо» is everywhere in real mail: at the end of a complaint, before a new
question, in sarcasm («Спасибо за отписку!», where «отписка» is a brush-off answer), in «спасибо, но ...». Such a
letter asks for something and must be registered as today. So a letter is only thanks when every sentence of its
own text (greetings, sign-off and signature aside) is thanks or a kind word, at least one is thanks, none asks,
objects or complains, and the whole is short.
"""

from __future__ import annotations

import re

from mailservice.intake.wording import normalise, says_more, segments, strip_reply_prefix

__all__ = ["MAX_THANKS_CHARS", "is_only_thanks"]

# Longer than this, a letter is saying more than thank you: staff read it as a request.
MAX_THANKS_CHARS = 300

_THANKS = re.compile(r"\b(спасиб\w*|благодар\w*|thanks?|thank you|мерси)\b")
# The same words on raw text, for the quick "is there any thanks at all" look.
_THANKS_ANYWHERE = re.compile(r"спасиб|благодар|thank|мерси", re.IGNORECASE)
# Kind words that may stand beside the thanks without asking anything.
_KIND = re.compile(
    r"^(всего (вам )?(доброго|хорошего)|хорошего (вам )?(дня|вечера)|удачи|вопрос (решен|снят|закрыт)|"
    r"(ответ|информаци\w*|документ\w*|письмо) (получен\w*|получил\w*)|(все|всю информацию|ответ) получил\w*|"
    r"(вы )?(очень )?(помогли|выручили)|(отличн\w+|хорош\w+|прекрасн\w+) (работа|ответ)|молодцы|"
    r"(всех|вас) благ|будьте здоровы|ok|ок|хорошо|понятно|ясно|договорились|принято)$"
)
# A subject of its own (not "Re:" of ours) must itself be thanks, a review, or nothing.
_THANKS_SUBJECT = re.compile(r"^(благодарность|спасибо|отзыв|thanks|thank you)(\s.*)?$")


def is_only_thanks(subject: str, text: str) -> bool:
    """Whether ``text`` (the letter's own text, without the quoted part) says only thank you."""
    if not _THANKS_ANYWHERE.search(subject) and not _THANKS_ANYWHERE.search(text, 0, MAX_THANKS_CHARS * 4):
        return False  # most letters: no word of thanks at all
    topic, is_reply = strip_reply_prefix(subject)
    plain_topic = normalise(topic)
    if plain_topic and not is_reply:
        if not _THANKS_SUBJECT.match(plain_topic) or says_more(topic, plain_topic):
            return False
    parts = segments(text)
    if not parts.body:
        return bool(plain_topic) and not is_reply and _THANKS.search(plain_topic) is not None
    if sum(len(original) for original, _plain in parts.body) > MAX_THANKS_CHARS:
        return False
    thanked = False
    for original, plain in parts.body:
        if says_more(original, plain):
            return False
        if _THANKS.search(plain):
            thanked = True
        elif not _KIND.match(plain):
            return False
    return thanked
