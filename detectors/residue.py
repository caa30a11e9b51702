"""Chatbot residue: phrases that only a chat assistant writes, left in text pasted from a chat.

A match is hard evidence, so every phrase is chosen for precision, not recall: self-
descriptions of a language model, knowledge-cutoff disclaimers, refusals, chat-interface
text and the preambles an assistant puts before a rewrite. Phrases that people also write
were left out although assistants use them a lot: "I hope this helps" and "Let me know if
you'd like me to" (forum answers, e-mails), "I'm sorry, but I can't" alone (dialogue in
fiction: refusals here name what is refused), "as an AI," alone (stories told by a
robot), "In conclusion", "It's important to note" (essays), "[Your Name]" (letter
templates), "Copy code" (code blocks on web pages). Each kept phrase fired on none of
the 12,484 human texts of ../shared/data/detector (train + dev) and on none of 519
Common Crawl pages from 2020 (../shared/data/web).

Texts are expected folded by `textnorm.fold_for_detection` (homoglyphs and invisible
characters undone, whitespace runs single): a space in a phrase matches one space or
newline. Apostrophes may be straight, curly or look-alikes; case does not matter.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

# (canonical phrase, anchors, pattern). In a pattern, "'" stands for any apostrophe and " "
# for one whitespace character; a match starts and ends at word boundaries. Every match contains
# one of its phrase's "|"-separated anchors (lowercase, "'" again any apostrophe): a cheap
# substring search finds the few places worth trying the pattern at.
_PHRASES: tuple[tuple[str, str, str], ...] = (
    # the model describing itself
    ("as an AI language model", "language model", r"as an ai language model"),
    ("as an AI assistant, I", "as an ai", r"as an ai assistant,? (?:i|created|developed|made|trained|built|designed)"),
    ("as an AI model, I", "as an ai", r"as an ai model,? i"),
    ("as an AI developed by", "as an ai", r"as an ai,? (?:created|developed|made|trained|built|designed) by"),
    ("as a large language model, I", "language model", r"as a large language model,? (?:i|created|developed|trained|built)"),
    ("as a language model, I", "language model", r"as a language model,? i"),
    ("I'm just an AI language model", "language model", r"i(?:'m| am) (?:just |only |merely )?an ai language model"),
    ("I am a large language model", "language model", r"i(?:'m| am) (?:just |only |merely )?a (?:large )?language model"),
    ("as a text-based AI", "text-based", r"as an? text-based (?:ai|model|assistant)"),
    ("I am ChatGPT", "chatgpt", r"i(?:'m| am) chatgpt"),
    ("I'm Claude, an AI", "claude", r"i(?:'m| am) claude,? an ai"),
    # knowledge cutoff and no browsing
    ("as of my last knowledge update", "as of my", r"as of my (?:last|latest|most recent) knowledge update"),
    ("as of my last update", "as of my", r"as of my (?:last|latest|most recent) (?:training )?(?:update|training)"),
    ("my knowledge cutoff", "my knowledge|my training", r"my (?:knowledge|training) cut-?off"),
    ("as of my training data", "as of my", r"as of my training data"),
    ("my training data only goes up to", "my training", r"my training data (?:only )?(?:goes|extends|runs) (?:up )?(?:to|until)"),
    ("my training data includes information up to", "my training", r"my training data (?:only )?includes information (?:up )?(?:to|until)"),
    ("I don't have real-time information", "real-time", r"i (?:do not|don't) have (?:access to )?real-time (?:information|data|updates|access)"),
    ("I don't have browsing capabilities", "browsing",
     r"i (?:do not|don't) have (?:internet |web )?browsing (?:capabilities|capability|abilities|access)"),
    ("I don't have the ability to browse", "ability to", r"i (?:do not|don't) have the (?:ability|capability) to browse"),
    # no inner life
    ("I don't have personal opinions", "personal",
     r"i (?:do not|don't) (?:have|possess|hold) personal (?:opinions|beliefs|preferences|emotions)"),
    ("I don't have the ability to feel", "ability to|capacity to", r"i (?:do not|don't) have the (?:ability|capacity) to (?:feel|experience emotions)"),
    # refusals that name what is refused
    ("I cannot fulfill that request", "request",
     r"i (?:cannot|can't|can not|am unable to|'m unable to|am not able to|'m not able to) (?:fulfill|comply with) (?:that|this|your|the) request"),
    ("I can't assist with that request", "request",
     r"i (?:cannot|can't|can not|am unable to|'m unable to) assist with (?:that|this|your) request"),
    ("I'm sorry, but I can't assist with that", "sorry",
     r"i(?:'m| am) sorry,? but i (?:cannot|can't|can not|am unable to|'m unable to|won't be able to) (?:assist|generate|fulfill|comply|produce)"),
    ("I'm sorry, but as an AI", "sorry", r"i(?:'m| am) sorry,? but as an ai"),
    ("I cannot generate content that", "content that|response",
     r"i (?:cannot|can't|can not|am unable to|'m unable to|won't) (?:generate|create|produce|write) (?:content|responses?) that"),
    ("I'm sorry, but I don't understand the prompt", "sorry", r"i(?:'m| am) sorry,? but i (?:don't|do not) understand (?:the|your|this) (?:prompt|request)"),
    ("I'm unable to produce a full essay", "able to",
     r"i(?:'m| am) (?:unable|not able) to (?:produce|generate|write|create|provide) (?:a|an|the) (?:full|complete|entire) (?:essay|story|article|response)"),
    ("I apologize, but I do not feel comfortable", "apologize", r"i apologize,? but i (?:do not|don't) feel comfortable"),
    ("I apologize, but as an AI", "apologize", r"i apologize,? but as an ai"),
    ("as an AI, I cannot provide", "as an ai", r"as an ai,? i (?:cannot|can't|am unable to|am not able to) (?:provide|generate|create|browse|access)"),
    ("OpenAI's content policy", "openai|anthropic", r"(?:openai|anthropic)'s (?:content|usage|use[- ]case) polic(?:y|ies)"),
    ("this content may violate our content policies", "may violate", r"this content may violate our (?:content|usage) polic(?:y|ies)"),
    ("goes against my programming", "against my", r"(?:goes|go) against my (?:programming|guidelines|ethical guidelines)"),
    ("within my ethical guidelines", "ethical guidelines", r"(?:within|violate|against) my ethical guidelines"),
    # chat interface text
    ("Regenerate response", "regenerate", r"regenerate response"),
    ("ChatGPT can make mistakes", "chatgpt", r"chatgpt can make mistakes"),
    ("ChatGPT may produce inaccurate information", "chatgpt", r"chatgpt may (?:produce|give) inaccurate information"),
    # preambles before the requested text, at the start of a line
    ("Certainly! Here's", "certainly|absolutely|of course", r"^(?:certainly|absolutely|of course)[!,] (?:here(?:'s| is| are)|below is|i'd be happy)"),
    ("Sure! Here's", "sure!", r"^sure! (?:here(?:'s| is| are)|below is|i'd be happy)"),
    ("Here is a revised version", "here is|here's",
     r"^(?:(?:sure|certainly|absolutely|of course)[,!] )?here(?:'s| is) (?:a|an|the|my) "
     r"(?:revised|rewritten|enhanced|polished|paraphrased|rephrased|refined|reworded|improved|humanized|more [\w-]{1,24}) "
     r"(?:version|draft|rewrite)[^\n]{0,120}:"),
    ("Here is a 500-word story", "here is|here's", r"here(?:'s| is) (?:a|an|the|your) (?:approximately |roughly )?\d[\d,]{0,8}[- ]words?"),
    ("Here's a story of approximately 500 words", "here is|here's", r"here(?:'s| is) (?:a|an) (?:story|essay|poem|response) of (?:approximately|roughly|about) \d[\d,]{0,8} words"),
    ("I'd be happy to write a story based on", "be happy to|be glad to",
     r"i(?:'d| would) be (?:happy|glad) to (?:write|craft|compose|generate) (?:a|an|the) (?:[\w-]{1,24} )?(?:story|essay|poem|response) based on"),
    ("I hope this revised version", "i hope th", r"i hope this (?:revised|rewritten|enhanced|polished|refined|improved) version"),
    ("I hope this story meets your expectations", "i hope th", r"i hope (?:this|the) (?:story|essay|poem|response) meets your (?:expectations|requirements|needs)"),
)
_APOSTROPHE = "['\u2019\u2018\u02bc\u2032`\u00b4]"


def _branch(pattern: str) -> str:
    # One whitespace character per space: the texts are folded, so runs never occur.
    return r"(?<!\w)" + pattern.replace("'", _APOSTROPHE).replace(" ", r"\s") + r"(?!\w)"


def _longest(pattern: str) -> int:
    """The most characters a phrase pattern can match (all are bounded), from the regex
    parser's width bounds (re._parser since Python 3.11)."""
    return re._parser.parse(_branch(pattern)).getwidth()[1]


def _anchor_patterns() -> dict[str, tuple[re.Pattern, int]]:
    """Anchor -> (one case-insensitive alternation of the phrases containing it, each
    branch a named group p<index> that says which phrase matched; their longest match)."""
    branches: dict[str, list[str]] = {}
    longest: dict[str, int] = {}
    for index, (_, anchors, pattern) in enumerate(_PHRASES):
        for anchor in anchors.split("|"):
            for variant in sorted({anchor.replace("'", a) for a in _APOSTROPHE[1:-1]}):
                branches.setdefault(variant, []).append(f"(?P<p{index}>{_branch(pattern)})")
                longest[variant] = max(longest.get(variant, 0), _longest(pattern))
    return {anchor: (re.compile("|".join(group), re.IGNORECASE | re.MULTILINE), longest[anchor])
            for anchor, group in branches.items()}


_BY_ANCHOR = _anchor_patterns()
_BY_ASCII_ANCHOR = {anchor: pattern for anchor, pattern in _BY_ANCHOR.items() if anchor.isascii()}  # for ASCII texts


class ResidueDetector:
    """Flags texts containing chat-assistant residue; `matches` names the phrase."""

    name = "residue"
    version = "1"
    feature_names = ("residue_match",)
    phrases = tuple(canonical for canonical, _, _ in _PHRASES)

    def matches(self, texts: Sequence[str]) -> list[str | None]:
        """The first matched phrase of each text, in canonical form; None without one."""
        return [_first_match(text) for text in texts]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return self.features_of(self.matches(texts))

    @staticmethod
    def features_of(matches: Sequence[str | None]) -> np.ndarray:
        """The feature column from `matches` output, for callers that need both."""
        flags = np.fromiter((m is not None for m in matches), dtype=np.float32, count=len(matches))
        return flags.reshape(-1, 1)


def _first_match(text: str) -> str | None:
    """The phrase of the leftmost match (the earlier phrase on a tie), found by trying each
    anchor's patterns only in the window around each place the anchor occurs that could
    hold a match."""
    probe = text.lower().replace("\n", " ")
    aligned = len(probe) == len(text)  # lowercasing can change lengths (U+0130): then search whole texts
    best: tuple[int, int] | None = None
    for anchor, (pattern, longest) in (_BY_ASCII_ANCHOR if text.isascii() else _BY_ANCHOR).items():
        at = probe.find(anchor)
        while at >= 0:
            # A match holding the anchor at `at` lies within [at + len(anchor) - longest, at + longest);
            # one starting after `at` holds a later occurrence, whose own window decides (in this
            # window its end could be cut short, and (?!\w) would pass at the cut).
            match = (pattern.search(text, max(0, at + len(anchor) - longest), at + longest + 1) if aligned
                     else pattern.search(text))
            if match is not None and (match.start() <= at or not aligned):
                found = (match.start(), int(match.lastgroup[1:]))
                best = found if best is None or found < best else best
                break
            at = probe.find(anchor, at + 1) if aligned else -1
    return None if best is None else _PHRASES[best[1]][0]
