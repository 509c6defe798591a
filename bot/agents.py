"""Example behaviours of the reference bot, chosen with ``run.py --agent NAME``.

- ``default``: backchannels are ignored, interruptions obeyed; after an interruption
  "go on" / "where were you" resumes the answer where it was cut.
- ``uninterruptible``: on connect the bot reads a long notice that nothing stops, not
  even "stop"; what the user says meanwhile becomes the next turn (the seed recipe
  "Uninterruptable Agent").
- ``interrupt-user``: when one user turn runs past three sentences the bot cuts in
  with "Sorry, can I pause you there?" and answers what it heard so far (the seed
  recipe "Interrupt User").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat_softack.user_cut_in import LongTurnCutInStrategy

GREETING = (
    "Hello! I'm a voice assistant that you can interrupt the way you would a person. "
    "Ask me about anything, say uh-huh or yeah while I talk and I'll keep going, "
    "or say wait, and I'll stop."
)
NOTICE = (
    "Before we start, please listen to this notice in full. This call may be recorded "
    "for quality and training purposes. The information I give is general and is not "
    "financial, legal or medical advice. By continuing you agree to the terms of "
    "service that were sent to you by email, including the privacy policy and the "
    "cookie policy, which explain how your data is stored, for how long, and how to "
    "ask for it to be deleted. Thank you for listening. How can I help you today?"
)


@dataclass(frozen=True)
class Agent:
    """One example behaviour.

    Attributes:
        name: The ``--agent`` value.
        greeting: What the bot says when the user connects.
        greeting_interruptible: False makes the greeting uninterruptible.
        system_hint: Added to the system prompt.
        stop_strategies: Factories of extra user turn stop strategies, run before
            the default one.
    """

    name: str
    greeting: str = GREETING
    greeting_interruptible: bool = True
    system_hint: str = ""
    stop_strategies: tuple = field(default_factory=tuple)


AGENTS = {
    "default": Agent("default"),
    "uninterruptible": Agent("uninterruptible", greeting=NOTICE, greeting_interruptible=False),
    "interrupt-user": Agent(
        "interrupt-user",
        greeting=GREETING + " Fair warning: if you talk for too long, I'll jump in.",
        system_hint=(
            "If you had to cut the user off, answer the main point of what they said "
            "in two sentences."
        ),
        stop_strategies=(LongTurnCutInStrategy,),
    ),
}
