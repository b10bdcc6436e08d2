"""Routing by question: a single-fact question takes one search and one answer call (no planning call); a
multi-hop question is split into sub-questions answered one after the other, each hop's short answer filling
the next hop's query (self-ask, Press et al. 2022; IRCoT, Trivedi et al. 2023).

``route`` is a pure function of the question text; the reflector escalates a single-route question to the
multi-hop route when its answer is "not found" or not supported by the evidence.

Example: "Who directed the film that was shot in Leland in 1986?" -> "multi" (a relative clause describes the
entity asked about); "What is the rated output of the NW-200?" -> "single".
"""

from __future__ import annotations

import re
from functools import partial
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from agents.plan import Plan, PlanStep

Route = Literal["single", "multi"]

# a noun described by a relative clause ("the film that was shot in ...", "the county in which ...")
_RELATIVE = re.compile(r"\b(?:the|a|an)\s+(?:[\w'-]+\s+){0,3}?[\w'-]+,?\s+(?:(?:in|of|at|by|for|from|on|with)\s+)?"
                       r"(?:that|which|who|whom|whose|where|when)\s+\w+", re.I)
# an entity described by its role, then asked about ("did the author of X attend", "was the founder of X born")
_ROLE_SUBJECT = re.compile(r"\b(?:did|does|do|has|have|had)\s+(?:the|a|an)\s+[\w-]+\s+of\b", re.I)
_ROLE_EVENT = re.compile(r"\b(?:was|were|is|are)\s+(?:the|a|an)\s+[\w-]+\s+of\s+.{2,80}?\s+(?:born|founded|formed|"
                         r"created|established|released|published|located|based|built|married|died|buried)\b", re.I)
# possessive chains: "Hello Love's performer", "the author's father"
_POSSESSIVE_ROLE = re.compile(r"\w['\u2019]s\s+(?:[a-z]+\s+)?(?:performer|singer|author|writer|director|producer|"
                              r"composer|creator|founder|owner|father|mother|son|daughter|spouse|wife|husband|"
                              r"sibling|brother|sister|parent|child|employer|publisher|manufacturer|developer|"
                              r"headquarters|capital|birthplace|successor|predecessor)\b")


# a reduced relative clause ("the country Signmark is from", "the company Novair is part of") or a participle
# ("the country containing Nugegoda", "the book named after ...", "the film directed by ...")
_REDUCED = re.compile(r"\b(?:the|a|an)\s+[a-z][\w-]*\s+(?:[A-Z][\w.'-]*\s+){1,4}(?:is|was|are|were)\s+"
                      r"(?:from|in|part\s+of|a\s+part\s+of|located|based|a\s+member\s+of)\b")
_PARTICIPLES = (r"containing|named\s+after|(?:directed|written|produced|founded|owned|created|performed|sung|designed|"
                r"built|made|released|published|developed)\s+by")
_PARTICIPLE = re.compile(r"\b(?:the|a|an)\s+(?:[\w'-]+\s+){0,2}?[\w-]+\s+(?:" + _PARTICIPLES + r")\b", re.I)
# a place described by whose birthplace it is ("Corey Taylor's city of birth", "the birthplace of David Morse"),
# unless it is what the question asks for ("What is the birthplace of X?")
_BIRTH = r"birthplace|hometown|(?:city|place|country|town)\s+of\s+birth"
_BIRTHPLACE = re.compile(r"(?:\w['\u2019]s\s+(?:" + _BIRTH + r")|\bthe\s+(?:" + _BIRTH + r")\s+of)\b", re.I)
_ASKS_BIRTHPLACE = re.compile(r"^\s*(?:is|was)\s+the\s+(?:" + _BIRTH + r")\s+of\s+[^,]+$", re.I)


# an entity named by its role ("the composer of Aschenbrodel"): a hop when something else is asked about it
_PERSON_ROLES = (r"performer|singer|author|writer|director|producer|composer|creator|founder|spouse|wife|husband|"
                 r"father|mother")
_ROLE_NOUNS = _PERSON_ROLES + r"|owner|publisher|manufacturer|developer"
_ROLE_OF = re.compile(r"\bthe\s+(?:" + _ROLE_NOUNS + r")s?\s+of\b", re.I)
# ... unless the role is what is asked: "Who is the author of Alexander?", "Name the mother of X"
_ASKS_ROLE = re.compile(r"^\W*(?:(?:who|what)\s+(?:is|was|are|were)|name)\s+the\s+(?:" + _ROLE_NOUNS + r")s?\s+of\b",
                        re.I)


def depth(question: str) -> int:
    """How many descriptions stand in for entities the question does not name (relative clauses, reduced ones
    and participles, "the author of X", "X's performer", "X's city of birth"): 0 = a single-fact question; each
    one is a hop to resolve first."""
    q = question.strip()
    body = re.sub(r"^\W*(?:who|whom|whose|what|which|where|when|why|how)\b", "", q, flags=re.I)  # the wh-word
    cues = len(_RELATIVE.findall(body)) + len(_ROLE_SUBJECT.findall(body)) + len(_ROLE_EVENT.findall(body))
    cues += len(_POSSESSIVE_ROLE.findall(q)) + len(_REDUCED.findall(body)) + len(_PARTICIPLE.findall(body))
    if not _ASKS_BIRTHPLACE.match(body.rstrip("?. ")):
        cues += len(_BIRTHPLACE.findall(q))
    roles = len(_ROLE_OF.findall(body))
    if cues:
        cues += roles
    elif roles:  # "the author of X" alone: a hop unless the role is what is asked ("Who is the author of X?")
        cues = roles - bool(_ASKS_ROLE.match(q))
    return cues


def route(question: str) -> Route:
    """``multi`` when the question describes an entity instead of naming it (``depth`` >= 1), else ``single``."""
    return "multi" if depth(question) else "single"


# ---- the split read off the question's wording (no LLM) ------------------------------------------------------
_ROLES = (r"performer|singer|author|writer|director|producer|composer|creator|founder|owner|father|mother|son|"
          r"daughter|spouse|wife|husband|sibling|brother|sister|employer|publisher|manufacturer|developer|"
          r"headquarters|capital|successor|predecessor|team|" + _BIRTH)
# a description that runs to the end of the question: a relative clause, a participle or a reduced relative
_DESCRIPTION_AT_END = re.compile(
    r"\b(?:the|a|an)\s+(?:[\w'-]+\s+){0,2}?[\w'-]+(?:,?\s+(?:(?:in|of|at|by|for|from|on|with|to)\s+)?"
    r"(?:that|which|who|whom|whose|where|when)|\s+(?:" + _PARTICIPLES + r")|\s+(?:[A-Z][\w.'-]*\s+)"
    r"{1,4}(?:is|was|are|were)\s+(?:from|in|part\s+of|located|based|a\s+member\s+of))\b[^?]*?\s*\??\s*$")
# an entity named by whose role it plays: "Hello Love's performer", "Corey Taylor's city of birth"
_POSSESSED = re.compile(r"\b(?:[A-Z][\w.'-]*\s+){0,4}[A-Z][\w.'-]*['\u2019]s\s+(?:[a-z]+\s+)?(?:" + _ROLES + r")\b")
# a description in subject position ("When did the country that ... join", "... when the area where X is located
# became"): where its clause ends is unknown
_SUBJECT_SLOT = re.compile(r"\b(?:did|does|do|was|were|is|are|has|have|had|can|could|will|would|when|while|after|"
                           r"before|if|because|since|until|whether)\s+$", re.I)
_WH = re.compile(r"\b(?:what|which|who|whom|whose|where|when|how|why)\b", re.I)


def split_by_wording(question: str) -> list[str]:
    """Two hops read off the wording when one description stands in for an entity: hop 1 asks what the
    description names, hop 2 is the question with the description replaced by ``#1``. [] when no description
    has a clear extent (a relative clause must run to the end of the question; a possessive role is its noun).

    Example: "Who directed the film that was shot in Leland in 1986?" -> ["What is the film that was shot in
    Leland in 1986?", "Who directed #1?"]; "Which region is Corey Taylor's city of birth located in?" ->
    ["What is Corey Taylor's city of birth?", "Which region is #1 located in?"].
    """
    q = " ".join(question.split()).rstrip()
    m = _POSSESSED.search(q)
    if m is None:
        m = _DESCRIPTION_AT_END.search(q)
        if m is None or _SUBJECT_SLOT.search(q[:m.start()]):
            return _split_at_role(q)
    if not _WH.search(q[:m.start()]):  # a statement with the wh-word inside the description: it is what is asked
        return []
    span = m.group(0).strip().rstrip("?").strip()
    if _WH.fullmatch(span.split()[-1]):  # "the team that was formed in what year": the description is asked
        return []
    rest = q[m.end():] if m.re is _POSSESSED else "?"
    hop2 = (q[:m.start()] + "#1" + rest).strip()
    return [f"What is {span}?", hop2 if hop2.endswith("?") else hop2 + "?"]


# "the producer of The Jewel of the Nile": a role, then the name of what it is the role of (capitalised words and
# the small words and commas inside titles, or a quoted title); the name's extent is where the capitals end
_CAP = r"[A-Z0-9][\w.'\u2019-]*"
_NAME = (r"(?:[\"\u201c][^\"\u201d]{1,80}[\"\u201d]|" + _CAP + r"(?:(?:,\s+|\s+(?:(?:of|the|and|und|de|du|des|la|le|"
         r"les|von|van|der|in|for|on|a|an|to|with)\s+)*)" + _CAP + r")*)")
_ROLE_SPAN = re.compile(r"\b(?i:the)\s+(?P<role>(?i:" + _ROLE_NOUNS + r"))s?\s+of\s+" + _NAME)
_ASKS_IT = re.compile(r"\W*(?:who|what|which)\s+(?:is|was|are|were)\s+#1\W*", re.I)  # the hop would be the question


def _split_at_role(q: str) -> list[str]:
    """Two hops for an entity named by its role when something else is asked about it: "What country was the
    author of Brand a citizen of?" -> ["Who is the author of Brand?", "What country was #1 a citizen of?"]; []
    when the role is what is asked ("Who was the author of Brand?") or no role is followed by a name."""
    for m in _ROLE_SPAN.finditer(q):
        if not _WH.search(q[:m.start()]):
            continue
        hop2 = (q[:m.start()] + "#1" + q[m.end():]).strip()
        hop2 = hop2 if hop2.endswith("?") else hop2 + "?"
        if _ASKS_IT.fullmatch(hop2):
            continue
        who = "Who" if re.fullmatch(_PERSON_ROLES, m.group("role").lower()) else "What"
        return [f"{who} is {m.group(0)}?", hop2]
    return []


class Decomposition(BaseModel):
    """The planner's structured output for a multi-hop question (a trust boundary)."""

    questions: list[str] = Field(min_length=1, max_length=4)

    @field_validator("questions")
    @classmethod
    def _short(cls, v: list[str]) -> list[str]:
        out = [q.strip()[:300] for q in v if q and q.strip()]
        if not out:
            raise ValueError("no sub-questions")
        return out[:3]


HOP_REF = re.compile(r"#(\d)")


def _ref(m: re.Match[str], hop: int) -> str:
    """``#1`` in hop 2 -> ``{a1}`` (filled with hop 1's answer); a reference to a later hop stays as written."""
    return "{a" + m.group(1) + "}" if int(m.group(1)) < hop else m.group(0)


def chain_plan(question: str, subs: list[str], k: int) -> Plan:
    """The self-ask plan: a search on the whole question, then per sub-question a search whose query holds
    the earlier hops' answers (``#1`` -> ``{a1}``) and, except for the last hop, a short sub-answer.

    Example: ["Who designed the HP-7?", "Where was #1 born?"] ->
    s0 search(question), s1 search("Who designed the HP-7?"), a1 answer(s1), s2 search("Where was {a1} born?").
    The answerer then answers the whole question over all hops' evidence and the facts found.
    """
    steps = [PlanStep(id="s0", tool="search", input={"query": question, "k": k})]
    prev: list[str] = []
    for i, sub in enumerate(subs, start=1):
        q = HOP_REF.sub(partial(_ref, hop=i), sub)
        refs = sorted({f"a{m}" for m in HOP_REF.findall(sub) if int(m) < i})
        steps.append(PlanStep(id=f"s{i}", tool="search", input={"query": q, "k": k}, depends_on=refs or prev[-1:]))
        if i < len(subs):
            steps.append(PlanStep(id=f"a{i}", tool="answer", input={"question": q, "from": [f"s{i}", "s0"]},
                                  depends_on=[f"s{i}"]))
            prev = [f"a{i}"]
    return Plan.model_construct(steps=steps)
