"""Quorum and adoption of a working group's decisions, as RULES.md reads seeds 000-003. Pure functions.

* Quorum: members taking part (in person or remote) × 2 ≥ members of the group ("не менее половины", seeds 000
  p. 13, 001 p. 3.3, 002 p. 14, 003 app. 3 p. 9). Absentees' written opinions count toward neither quorum nor
  votes. The fraction is a group setting.
* Adopted: quorum, and votes for > half of those taking part ("простым большинством голосов (от числа
  присутствующих)", seed 000 p. 14; 001 p. 3.2).
* Tie: when votes for equal votes against, the presiding member's vote decides ("решающим является голос
  председательствующего"): their vote for adopts, anything else rejects, abstentions notwithstanding.
* One reading beyond the letter, so that more support never loses: when the votes for outnumber the votes against
  but fall short of half of those taking part (abstentions), the presiding member's vote for still decides. Read
  literally, 1 for, 1 against, 1 abstaining would pass on the presiding member's vote while 2 for, 1 against,
  1 abstaining (one more supporter) would fail; the property tests hold the software to "adding a vote for never
  turns an adopted decision into a rejected one".
* Written poll: the same with ballots returned in place of those taking part and the chair's ballot as the
  presiding vote (seed 000 p. 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Choice(StrEnum):
    """A member's vote on one question."""

    for_ = "for"
    against = "against"
    abstain = "abstain"


CHOICE_NAMES = {Choice.for_: "за", Choice.against: "против", Choice.abstain: "воздержался"}

# Which branch of the rule decided, for the CLI's JSON and the minutes.
RULE_NO_QUORUM = "no_quorum"
RULE_MAJORITY = "majority"
RULE_PRESIDING = "presiding_vote"
RULE_NO_MAJORITY = "no_majority"

RULE_TEXTS = {
    RULE_NO_QUORUM: "нет кворума: решение не может быть принято",
    RULE_MAJORITY: "большинство голосов",
    RULE_PRESIDING: "при равенстве голосов решающим является голос председательствующего",
    RULE_NO_MAJORITY: "большинство не достигнуто",
}


@dataclass(frozen=True)
class Votes:
    """The counted votes on one question."""

    for_: int = 0
    against: int = 0
    abstain: int = 0

    @property
    def total(self) -> int:
        """Every vote cast."""
        return self.for_ + self.against + self.abstain


@dataclass(frozen=True)
class TallyResult:
    """The outcome on one question; ``rule`` names the branch that decided it."""

    quorum: bool
    adopted: bool
    rule: str

    def as_dict(self) -> dict[str, object]:
        """The CLI's JSON shape."""
        return {"quorum": self.quorum, "adopted": self.adopted, "rule": self.rule}

    @property
    def text(self) -> str:
        """The outcome in Russian, for the minutes."""
        verdict = "решение принято" if self.adopted else "решение не принято"
        return f"{verdict} ({RULE_TEXTS[self.rule]})"


def has_quorum(members: int, taking_part: int, num: int = 1, den: int = 2) -> bool:
    """Whether ``taking_part`` of ``members`` make a quorum: taking_part × den ≥ members × num."""
    if members < 0 or taking_part < 0:
        raise ValueError("counts cannot be negative")
    if taking_part > members:
        raise ValueError("more taking part than there are members")
    return members > 0 and taking_part * den >= members * num


def check_votes(taking_part: int, votes: Votes, presiding: Choice | None) -> None:
    """Refuse impossible input: negative counts, more votes than voters, a presiding vote nobody cast."""
    if min(votes.for_, votes.against, votes.abstain) < 0:
        raise ValueError("vote counts cannot be negative")
    if votes.total > taking_part:
        raise ValueError(f"{votes.total} votes cast but only {taking_part} taking part")
    counted = {Choice.for_: votes.for_, Choice.against: votes.against, Choice.abstain: votes.abstain}
    if presiding is not None and counted[presiding] < 1:
        raise ValueError(f"the presiding vote '{presiding.value}' is not among the votes counted")


def tally(
    members: int,
    taking_part: int,
    votes: Votes,
    presiding: Choice | None,
    *,
    quorum_num: int = 1,
    quorum_den: int = 2,
) -> TallyResult:
    """Quorum and adoption of one question (see the module docstring for the reading of each rule).

    ``taking_part`` is those present in person or remotely, or for a written poll the ballots returned;
    ``presiding`` the vote of the presiding member (the chair's ballot in a poll), None if they cast none.
    """
    check_votes(taking_part, votes, presiding)
    if not has_quorum(members, taking_part, quorum_num, quorum_den):
        return TallyResult(False, False, RULE_NO_QUORUM)
    if votes.for_ * 2 > taking_part:
        return TallyResult(True, True, RULE_MAJORITY)
    if votes.for_ >= votes.against:
        # A tie (or for ahead of against without an absolute majority): the presiding member's vote decides.
        return TallyResult(True, presiding is Choice.for_, RULE_PRESIDING)
    return TallyResult(True, False, RULE_NO_MAJORITY)
